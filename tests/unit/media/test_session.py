"""The relay session's rules (pbx/media/session.py docstring), one by one, with a fake clock:
latching and NAT, drops before a destination, PCMU <-> PCMA transcoding with known sample
values, telephone-event payload types, one continuous stream across SSRC changes, RTCP."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pbx.media import g711
from pbx.media.rfc4733 import TelephoneEvent
from pbx.media.rtp import HeaderExtension, RtpPacket
from pbx.media.session import Address, Forward, Leg, RelaySession

PHONE_A: Address = ("192.168.1.41", 4000)
PHONE_B: Address = ("192.168.1.42", 5000)
SSRC_A = 0x1A2B3C4D


def rtp(
    *,
    pt: int = 0,
    seq: int = 1,
    ts: int = 160,
    ssrc: int = SSRC_A,
    payload: bytes = bytes(range(160)),
    marker: bool = False,
    **fields: object,
) -> bytes:
    packet = RtpPacket(
        payload_type=pt,
        sequence_number=seq,
        timestamp=ts,
        ssrc=ssrc,
        marker=marker,
        payload=payload,
        **fields,  # type: ignore[arg-type]
    )
    return bytes(packet)


def call(
    a: tuple[str, int, int | None] = ("PCMU", 0, 101),
    b: tuple[str, int, int | None] = ("PCMU", 0, 101),
    *,
    remote_a: Address | None = PHONE_A,
    remote_b: Address | None = PHONE_B,
) -> RelaySession:
    session = RelaySession(a_port=10000, b_port=10002)
    session.update("a", remote_a, a[1], a[0], a[2])
    session.update("b", remote_b, b[1], b[0], b[2])
    return session


def one(forwards: list[Forward]) -> Forward:
    assert len(forwards) == 1, forwards
    return forwards[0]


def parsed(forward: Forward) -> RtpPacket:
    return RtpPacket.parse(forward.data)


# --- forwarding and latching --------------------------------------------------------------------


def test_same_codec_is_forwarded_unchanged_to_the_far_phone() -> None:
    session = call()
    data = rtp(marker=True)
    forward = one(session.receive("a", data, PHONE_A, now=0.0))
    assert forward == Forward(leg="b", data=data, destination=PHONE_B)
    forward = one(session.receive("b", data, PHONE_B, now=0.0))
    assert forward == Forward(leg="a", data=data, destination=PHONE_A)


def test_first_packet_latches_the_leg() -> None:
    session = call()
    source = ("192.168.1.41", 4444)  # the phone sends from another port than its SDP says
    session.receive("a", rtp(), source, now=0.0)
    assert one(session.receive("b", rtp(), PHONE_B, now=0.01)).destination == source
    assert session.stats()["a"].latched == source


def test_phone_behind_nat_is_reached_where_its_packets_come_from() -> None:
    sdp_address = ("10.0.0.5", 4000)
    nat_address = ("203.0.113.9", 61000)
    session = call(remote_a=sdp_address)
    # Before A sends anything, B's packets go where A's SDP says (and get lost in the NAT).
    assert one(session.receive("b", rtp(), PHONE_B, now=0.0)).destination == sdp_address
    assert one(session.receive("a", rtp(), nat_address, now=0.1)).destination == PHONE_B
    assert one(session.receive("b", rtp(seq=2), PHONE_B, now=0.12)).destination == nat_address
    stats = session.stats()["a"]
    assert stats.remote == sdp_address and stats.latched == nat_address


def test_another_source_is_dropped_while_the_latched_one_talks() -> None:
    session = call()
    intruder = ("198.51.100.7", 30000)
    session.receive("a", rtp(seq=1), PHONE_A, now=0.0)
    session.receive("a", rtp(seq=2), PHONE_A, now=1.0)
    assert session.receive("a", rtp(seq=3, ssrc=99), intruder, now=2.99) == []
    assert session.stats()["a"].latched == PHONE_A
    assert session.stats()["a"].dropped == 1
    assert one(session.receive("b", rtp(), PHONE_B, now=3.0)).destination == PHONE_A


def test_after_two_seconds_of_silence_another_source_takes_over() -> None:
    session = call()
    moved = ("192.168.1.77", 4000)  # the phone changed address (Wi-Fi roaming, NAT rebinding)
    session.receive("a", rtp(seq=1), PHONE_A, now=10.0)
    assert session.receive("a", rtp(seq=2), moved, now=11.999) == []
    assert len(session.receive("a", rtp(seq=3), moved, now=12.0)) == 1
    assert session.stats()["a"].latched == moved
    assert one(session.receive("b", rtp(), PHONE_B, now=12.01)).destination == moved
    # ... and now the old address is the foreign one.
    assert session.receive("a", rtp(seq=4), PHONE_A, now=12.5) == []


def test_a_new_sdp_address_latches_again_the_same_one_keeps_the_latch() -> None:
    session = call()
    nat_address = ("203.0.113.9", 61000)
    session.receive("a", rtp(seq=1), nat_address, now=0.0)
    # Hold: a re-INVITE with the same address (direction is the signalling's business).
    session.update("a", PHONE_A, 0, "PCMU", 101)
    assert session.stats()["a"].latched == nat_address
    assert session.receive("a", rtp(seq=2), ("198.51.100.7", 1), now=0.5) == []
    # A re-INVITE moving the media: the SDP address holds until the next packet latches.
    new_sdp = ("192.168.1.99", 6000)
    session.update("a", new_sdp, 0, "PCMU", 101)
    assert session.stats()["a"].latched is None
    assert one(session.receive("b", rtp(), PHONE_B, now=0.6)).destination == new_sdp
    assert len(session.receive("a", rtp(seq=3), ("192.168.1.99", 6001), now=0.7)) == 1
    assert one(session.receive("b", rtp(), PHONE_B, now=0.8)).destination == (
        "192.168.1.99",
        6001,
    )


def test_hold_with_an_unspecified_address_keeps_what_the_leg_had() -> None:
    nat_address = ("203.0.113.9", 61000)
    session = call(remote_a=("10.0.0.5", 4000))
    session.receive("a", rtp(seq=1), nat_address, now=0.0)
    session.update("a", ("0.0.0.0", 4000), 0, "PCMU", 101)  # RFC 2543 hold: c=0.0.0.0
    session.update("a", None, 0, "PCMU", 101)
    stats = session.stats()["a"]
    assert stats.remote == ("10.0.0.5", 4000) and stats.latched == nat_address
    assert one(session.receive("b", rtp(), PHONE_B, now=0.1)).destination == nat_address
    # Resuming with the address of before: still latched.
    session.update("a", ("10.0.0.5", 4000), 0, "PCMU", 101)
    assert session.stats()["a"].latched == nat_address


def test_packets_before_the_far_leg_has_a_destination_are_counted_and_dropped() -> None:
    session = RelaySession(a_port=10000, b_port=10002)
    session.update("a", PHONE_A, 0, "PCMU", 101)  # the callee has not answered yet
    assert session.receive("a", rtp(seq=1), PHONE_A, now=0.0) == []
    assert session.receive("a", rtp(seq=2), PHONE_A, now=0.02) == []
    stats = session.stats()
    assert (stats["a"].packets_in, stats["a"].dropped, stats["b"].packets_out) == (2, 2, 0)
    assert stats["a"].latched == PHONE_A  # the caller is latched all the same
    session.update("b", PHONE_B, 0, "PCMU", 101)
    assert one(session.receive("a", rtp(seq=3), PHONE_A, now=0.04)).destination == PHONE_B


def test_a_leg_without_sdp_address_is_reached_once_it_sends() -> None:
    session = call(remote_b=None)
    assert session.receive("a", rtp(), PHONE_A, now=0.0) == []
    session.receive("b", rtp(), ("192.168.1.42", 5002), now=0.1)
    assert one(session.receive("a", rtp(seq=2), PHONE_A, now=0.2)).destination == (
        "192.168.1.42",
        5002,
    )


def test_unspecified_addresses_and_port_zero_are_not_destinations() -> None:
    for remote in (("0.0.0.0", 5000), ("::", 5000), ("192.168.1.42", 0)):
        session = call(remote_b=remote)
        assert session.receive("a", rtp(), PHONE_A, now=0.0) == []
        assert session.stats()["b"].remote is None


def test_malformed_datagrams_are_dropped_and_do_not_latch() -> None:
    session = call()
    stun = bytes.fromhex("000100002112a442") + bytes(12)
    for junk in (b"", b"\x80\x00", stun, rtp()[:11]):
        assert session.receive("a", junk, ("198.51.100.7", 1), now=0.0) == []
    stats = session.stats()["a"]
    assert stats.latched is None and stats.dropped == 4 and stats.packets_in == 4
    assert stats.bytes_in == sum(map(len, (b"", b"\x80\x00", stun, rtp()[:11])))


# --- payload types and transcoding --------------------------------------------------------------

# Known sample values: u-law 0xFF is +0, 0x80 is +32124 (full scale), 0x00 is -32124, 0xCF
# is +924; their A-law counterparts by G.711 Table 3: +8, +32256, -32256 and +944 (not the
# nearer +912: the Table's choice, which keeps A-u-A double conversion transparent there).
ULAW_CODES = bytes([0xFF, 0x80, 0x00, 0xCF]) * 40
ALAW_CODES = bytes([0xD5, 0xAA, 0x2A, 0xF8]) * 40


def test_known_values_of_the_tables() -> None:
    assert [g711.ULAW_DECODE[c] for c in ULAW_CODES[:4]] == [0, 32124, -32124, 924]
    assert [g711.ALAW_DECODE[c] for c in ALAW_CODES[:4]] == [8, 32256, -32256, 944]


def test_pcmu_to_pcma_is_transcoded_and_relabelled() -> None:
    session = call(b=("PCMA", 8, 101))
    forward = one(session.receive("a", rtp(pt=0, payload=ULAW_CODES, marker=True), PHONE_A, 0))
    packet = parsed(forward)
    assert packet.payload_type == 8 and packet.marker
    assert packet.payload == ALAW_CODES
    assert (packet.sequence_number, packet.timestamp, packet.ssrc) == (1, 160, SSRC_A)
    back = parsed(one(session.receive("b", rtp(pt=8, payload=ALAW_CODES), PHONE_B, 0)))
    assert back.payload_type == 0
    # A-law has no zero: +8 goes to u-law +8 (Table 4), the rest back to where it came from.
    assert [g711.ULAW_DECODE[c] for c in back.payload[:4]] == [8, 32124, -32124, 924]
    stats = session.stats()
    assert stats["a"].transcoded == 1 and stats["b"].transcoded == 1


def test_g722_is_carried_untouched_and_only_renumbered() -> None:
    session = call(a=("G722", 9, 101), b=("G722", 9, 101))
    data = rtp(pt=9, payload=bytes(range(160)), marker=True)
    assert one(session.receive("a", data, PHONE_A, 0)).data == data  # no table for G.722
    dynamic = call(a=("G722", 9, None), b=("G722", 109, None))  # a phone may name it otherwise
    packet = parsed(one(dynamic.receive("a", data, PHONE_A, 0)))
    assert packet.payload_type == 109 and packet.payload == bytes(range(160))
    assert session.stats()["a"].transcoded == 0


def test_g711_on_a_g722_leg_is_dropped_not_mislabelled() -> None:
    """The SDP never pairs G.722 with G.711 (there is no transcoding between them); a phone
    that sends PCMU anyway must not reach the far phone labelled as G.722."""
    session = call(a=("PCMU", 0, None), b=("G722", 9, None))
    assert session.receive("a", rtp(pt=0), PHONE_A, 0) == []
    assert session.stats()["a"].dropped == 1


def test_transcoding_leaves_csrc_extension_and_padding_alone() -> None:
    session = call(b=("PCMA", 8, 101))
    extension = HeaderExtension(profile=0xBEDE, data=bytes.fromhex("10850000"))
    data = rtp(payload=ULAW_CODES, csrc=(7, 8), extension=extension, padding=4)
    packet = parsed(one(session.receive("a", data, PHONE_A, now=0.0)))
    assert packet.payload == ALAW_CODES
    assert (packet.csrc, packet.extension, packet.padding) == ((7, 8), extension, 4)


def test_transcoding_drops_a_packet_whose_header_does_not_fit() -> None:
    session = call(b=("PCMA", 8, 101))
    broken = bytearray(rtp())
    broken[0] |= 0x0F  # 15 CSRCs claimed in a 172-byte packet: fine; now claim padding too
    broken[0] |= 0x20
    broken[-1] = 200
    assert session.receive("a", bytes(broken), PHONE_A, now=0.0) == []
    assert session.stats()["a"].dropped == 1


def test_static_g711_types_are_understood_whatever_was_negotiated() -> None:
    # Leg a negotiated PCMU but sends PCMA (PT 8) anyway: b still gets PCMU.
    session = call()
    packet = parsed(one(session.receive("a", rtp(pt=8, payload=ALAW_CODES), PHONE_A, 0.0)))
    assert packet.payload_type == 0 and packet.payload == ALAW_CODES.translate(g711.ALAW_TO_ULAW)


def test_dynamic_audio_payload_type_is_rewritten() -> None:
    session = call(a=("PCMU", 96, 101))
    packet = parsed(one(session.receive("a", rtp(pt=96, payload=ULAW_CODES), PHONE_A, 0.0)))
    assert packet.payload_type == 0 and packet.payload == ULAW_CODES


def test_telephone_events_get_the_far_legs_payload_type() -> None:
    session = call(a=("PCMU", 0, 101), b=("PCMA", 8, 96))
    event = bytes(TelephoneEvent(event=5, end=True, volume=10, duration=1280))
    forward = one(session.receive("a", rtp(pt=101, payload=event), PHONE_A, now=0.0))
    assert parsed(forward).payload_type == 96 and parsed(forward).payload == event
    forward = one(session.receive("b", rtp(pt=96, payload=event), PHONE_B, now=0.0))
    assert parsed(forward).payload_type == 101 and parsed(forward).payload == event
    assert session.stats()["a"].transcoded == 0


def test_telephone_events_are_dropped_when_the_far_leg_has_none() -> None:
    session = call(b=("PCMU", 0, None))
    event = bytes(TelephoneEvent(event=1))
    assert session.receive("a", rtp(pt=101, payload=event), PHONE_A, now=0.0) == []
    assert session.stats()["a"].dropped == 1
    assert len(session.receive("a", rtp(seq=2), PHONE_A, now=0.02)) == 1


def test_comfort_noise_and_unknown_types_pass_unchanged() -> None:
    session = call(b=("PCMA", 8, 101))
    for pt in (13, 18, 127):
        data = rtp(pt=pt, payload=b"\x40")
        assert one(session.receive("a", data, PHONE_A, now=0.0)).data == data


def test_a_re_invite_changing_the_codec_changes_the_plan() -> None:
    session = call()
    assert one(session.receive("a", rtp(payload=ULAW_CODES), PHONE_A, 0.0)).data[12:] == (
        ULAW_CODES
    )
    session.update("b", PHONE_B, 8, "PCMA", 101)
    packet = parsed(one(session.receive("a", rtp(seq=2, payload=ULAW_CODES), PHONE_A, 0.02)))
    assert packet.payload_type == 8 and packet.payload == ALAW_CODES


# --- one continuous stream across SSRC changes ---------------------------------------------------


def test_a_restarted_stream_continues_the_old_one_for_the_far_end() -> None:
    session = call()
    for i in range(5):  # SSRC A: seq 1000-1004, ts 8000 + 160 i, every 20 ms
        data = rtp(seq=1000 + i, ts=8000 + 160 * i)
        assert one(session.receive("a", data, PHONE_A, now=i * 0.02)).data == data
    # Hold and resume: 0.5 s later the phone starts again with a new SSRC and counters.
    restart = rtp(seq=7, ts=123456, ssrc=0x5EED, marker=True)
    packet = parsed(one(session.receive("a", restart, PHONE_A, now=0.08 + 0.5)))
    assert packet.ssrc == SSRC_A
    assert packet.sequence_number == 1005
    assert packet.timestamp == 8000 + 160 * 4 + 4000  # 0.5 s at 8 kHz after the last one
    assert packet.marker and packet.payload == bytes(range(160))
    packet = parsed(one(session.receive("a", rtp(seq=8, ts=123616, ssrc=0x5EED), PHONE_A, 0.6)))
    assert (packet.ssrc, packet.sequence_number, packet.timestamp) == (SSRC_A, 1006, 12800)
    assert session.stats()["a"].ssrc_changes == 1


def test_late_packets_of_the_old_stream_are_dropped() -> None:
    session = call()
    session.receive("a", rtp(seq=1, ts=160), PHONE_A, now=0.0)
    session.receive("a", rtp(seq=50, ts=9000, ssrc=0x5EED), PHONE_A, now=0.02)
    assert session.receive("a", rtp(seq=2, ts=320), PHONE_A, now=0.5) == []
    assert session.stats()["a"].dropped == 1
    # Much later the old SSRC is a stream again (a second restart), still continuous.
    packet = parsed(one(session.receive("a", rtp(seq=3, ts=480), PHONE_A, now=2.02)))
    assert (packet.ssrc, packet.sequence_number) == (SSRC_A, 3)
    assert session.stats()["a"].ssrc_changes == 2


def test_sequence_numbers_and_timestamps_wrap_across_a_restart() -> None:
    session = call(b=("PCMA", 8, 101))
    session.receive("a", rtp(seq=65535, ts=0xFFFFFFF0), PHONE_A, now=0.0)
    packet = parsed(one(session.receive("a", rtp(seq=9, ts=5, ssrc=2), PHONE_A, now=0.02)))
    assert (packet.sequence_number, packet.timestamp) == (0, 0x90)  # + 160 ticks, wrapped
    assert packet.payload_type == 8 and packet.payload == bytes(range(160)).translate(
        g711.ULAW_TO_ALAW
    )


segments = st.lists(
    st.tuples(
        st.integers(0, 0xFFFFFFFF),  # SSRC of this stretch
        st.integers(0, 0xFFFF),  # its first sequence number
        st.integers(0, 0xFFFFFFFF),  # its first timestamp
        st.integers(1, 8),  # packets
        st.floats(0.02, 5.0),  # pause before it
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda stretch: stretch[0],  # a restart brings a new SSRC (RFC 3550 §8.1)
)


@given(segments)
def test_the_far_end_always_sees_one_monotonic_stream(
    stretches: list[tuple[int, int, int, int, float]],
) -> None:
    session = call()
    now = 0.0
    seen: list[RtpPacket] = []
    for ssrc, seq, ts, count, pause in stretches:
        now += pause
        for i in range(count):
            data = rtp(seq=(seq + i) & 0xFFFF, ts=(ts + 160 * i) & 0xFFFFFFFF, ssrc=ssrc)
            forwards = session.receive("a", data, PHONE_A, now)
            seen += [parsed(f) for f in forwards]
            now += 0.02
    assert seen and {p.ssrc for p in seen} == {seen[0].ssrc}
    for before, after in zip(seen, seen[1:], strict=False):
        assert after.sequence_number == (before.sequence_number + 1) & 0xFFFF
        assert 0 < (after.timestamp - before.timestamp) & 0xFFFFFFFF < 1 << 31


# --- RTCP ---------------------------------------------------------------------------------------

RTCP_RR = bytes.fromhex("80c9000101020304")


def test_rtcp_goes_unchanged_to_the_latched_address_plus_one() -> None:
    session = call(remote_b=("10.0.0.5", 4000))
    session.receive("b", rtp(), ("203.0.113.9", 61000), now=0.0)
    forward = one(session.receive("a", RTCP_RR, ("192.168.1.41", 4001), now=0.1, rtcp=True))
    assert forward == Forward(leg="b", data=RTCP_RR, destination=("203.0.113.9", 61001), rtcp=True)


def test_rtcp_latches_on_its_own_source() -> None:
    session = call()
    session.receive("b", RTCP_RR, ("203.0.113.9", 50123), now=0.0, rtcp=True)
    forward = one(session.receive("a", RTCP_RR, PHONE_A, now=0.1, rtcp=True))
    assert forward.destination == ("203.0.113.9", 50123)
    assert session.stats()["b"].rtcp_latched == ("203.0.113.9", 50123)
    # Another RTCP source is ignored until the latched one has been silent for 25 s.
    assert session.receive("b", RTCP_RR, ("198.51.100.7", 9), now=20.0, rtcp=True) == []
    assert len(session.receive("b", RTCP_RR, ("198.51.100.7", 9), now=25.0, rtcp=True)) == 1


def test_rtcp_uses_the_sdp_rtcp_address_before_anything_is_latched() -> None:
    session = call()
    session.update("b", PHONE_B, 0, "PCMU", 101, rtcp_remote=("192.168.1.42", 7777))
    forward = one(session.receive("a", RTCP_RR, PHONE_A, now=0.0, rtcp=True))
    assert forward.destination == ("192.168.1.42", 7777)
    session = call()
    assert one(session.receive("a", RTCP_RR, PHONE_A, 0.0, rtcp=True)).destination == (
        "192.168.1.42",
        5001,
    )


def test_rtcp_keeps_the_sdp_rtcp_address_when_rtp_latched_where_the_sdp_said() -> None:
    session = call()
    session.update("b", PHONE_B, 0, "PCMU", 101, rtcp_remote=("192.168.1.42", 7777))
    session.receive("b", rtp(), PHONE_B, now=0.0)  # no NAT: latched == SDP address
    forward = one(session.receive("a", RTCP_RR, PHONE_A, now=0.1, rtcp=True))
    assert forward.destination == ("192.168.1.42", 7777)


def test_rtcp_without_destination_or_malformed_is_dropped() -> None:
    session = call(remote_b=None)
    assert session.receive("a", RTCP_RR, PHONE_A, now=0.0, rtcp=True) == []
    assert session.receive("a", b"\x80\xc9", PHONE_A, now=0.0, rtcp=True) == []
    stats = session.stats()
    assert (stats["a"].rtcp_in, stats["a"].rtcp_dropped, stats["b"].rtcp_out) == (2, 2, 0)


# --- counters, surface, totality -----------------------------------------------------------------


def test_counters_add_up() -> None:
    session = call(b=("PCMA", 8, None))
    event = bytes(TelephoneEvent(event=1))
    session.receive("a", rtp(seq=1), PHONE_A, now=0.0)
    session.receive("a", rtp(seq=2, pt=101, payload=event), PHONE_A, now=0.02)  # dropped
    session.receive("a", rtp(seq=3), ("198.51.100.7", 1), now=0.03)  # foreign: dropped
    session.receive("b", rtp(pt=8), PHONE_B, now=0.04)
    a, b = session.stats()["a"], session.stats()["b"]
    assert (a.packets_in, a.dropped, a.transcoded, b.packets_out) == (3, 2, 1, 1)
    assert a.bytes_in == 172 + 16 + 172 and b.bytes_out == 172
    assert (b.packets_in, b.transcoded, a.packets_out, a.bytes_out) == (1, 1, 1, 172)
    assert a.last_received == 0.02 and b.last_received == 0.04
    assert a.local_port == 10000 and b.local_port == 10002


def test_the_fast_path_is_receive_without_objects() -> None:
    session = call(b=("PCMA", 8, 101))
    relay = session.relay_function("a")
    out = relay(rtp(payload=ULAW_CODES), PHONE_A, 0.0)
    assert out is not None and bytes(out[0])[12:] == ALAW_CODES and out[1] == PHONE_B
    rtcp = session.relay_function("b", rtcp=True)
    assert rtcp(RTCP_RR, PHONE_B, 0.0) == (RTCP_RR, ("192.168.1.41", 4001))
    assert session.handle_timer(5.0) == [] and session.next_deadline() is None


def test_bad_updates_are_refused() -> None:
    session = RelaySession(a_port=10000, b_port=10002)
    bad: list[tuple[str, Address | None, int, str, int | None]] = [
        ("c", PHONE_A, 0, "PCMU", None),
        ("a", PHONE_A, 128, "PCMU", None),
        ("a", PHONE_A, 0, "OPUS", None),
        ("a", PHONE_A, 0, "PCMU", 0),
        ("a", PHONE_A, 0, "PCMU", 200),
    ]
    for leg, remote, pt, encoding, dtmf in bad:
        try:
            session.update(leg, remote, pt, encoding, dtmf)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"accepted {leg, remote, pt, encoding, dtmf}")
    try:
        session.receive("x", rtp(), PHONE_A, 0.0)  # type: ignore[arg-type]
    except ValueError as error:
        assert "legs 'a' and 'b'" in str(error)
    else:
        raise AssertionError("unknown leg accepted")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.binary(max_size=40)
            | st.builds(lambda h, p: h + p, st.just(rtp()[:12]), st.binary()),
            st.sampled_from([PHONE_A, PHONE_B, ("198.51.100.7", 1)]),
            st.booleans(),
        ),
        max_size=30,
    )
)
def test_any_datagrams_give_forwards_or_drops_and_the_counts_add_up(
    datagrams: list[tuple[Leg, bytes, Address, bool]],
) -> None:
    session = call(b=("PCMA", 8, None))
    now = 0.0
    for leg, data, source, is_rtcp in datagrams:
        now += 0.5
        for forward in session.receive(leg, data, source, now, rtcp=is_rtcp):
            assert forward.leg != leg and forward.rtcp == is_rtcp
    stats = session.stats()
    for leg, other in (("a", "b"), ("b", "a")):
        assert stats[leg].packets_in == stats[other].packets_out + stats[leg].dropped
        assert stats[leg].rtcp_in == stats[other].rtcp_out + stats[leg].rtcp_dropped
