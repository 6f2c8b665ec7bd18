"""RTP packets (RFC 3550 §5.1): fixtures byte for byte, every header field and flag, the parser
on random bytes, the relay's fast-path helpers, and serial-number arithmetic (RFC 1982)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.media import rtp
from pbx.media.rtp import HeaderExtension, RtpError, RtpPacket

DATA = Path(__file__).resolve().parents[2] / "data" / "rtp"


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_first_packet_of_a_pcmu_stream() -> None:
    data = fixture("pcmu_tone_first_packet.bin")
    # V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 24910 | ts 0xCAFEBABE | SSRC 0x1A2B3C4D
    assert data[:12] == bytes.fromhex("8080614ecafebabe1a2b3c4d")
    packet = RtpPacket.parse(data)
    assert packet.payload_type == 0
    assert packet.marker is True
    assert packet.sequence_number == 24910
    assert packet.timestamp == 0xCAFEBABE
    assert packet.ssrc == 0x1A2B3C4D
    assert packet.csrc == () and packet.extension is None and packet.padding == 0
    assert packet.payload == data[12:] and len(packet.payload) == 160
    assert bytes(packet) == data


def test_csrc_list_and_header_extension() -> None:
    data = fixture("pcma_csrc_extension.bin")
    packet = RtpPacket.parse(data)
    assert packet.payload_type == 8 and not packet.marker
    assert packet.sequence_number == 65535 and packet.timestamp == 4294967136
    assert packet.csrc == (0x11111111, 0x22222222)
    # RFC 8285 one-byte header: profile 0xBEDE, one word: ID 1, length 0 (one byte), padding
    assert packet.extension == HeaderExtension(profile=0xBEDE, data=bytes.fromhex("10850000"))
    assert packet.payload == data[12 + 8 + 8 :]
    assert rtp.payload_bounds(data) == (28, len(data))
    assert bytes(packet) == data


def test_padding_is_left_out_of_the_payload() -> None:
    data = fixture("pcmu_padding.bin")
    assert data[0] == 0xA0 and data[-4:] == b"\x00\x00\x00\x04"
    packet = RtpPacket.parse(data)
    assert packet.padding == 4
    assert len(packet.payload) == 160
    assert rtp.payload_bounds(data) == (12, len(data) - 4)
    assert bytes(packet) == data


def test_telephone_event_packet() -> None:
    packet = RtpPacket.parse(fixture("telephone_event_5_end.bin"))
    assert packet.payload_type == 101
    assert packet.payload == bytes.fromhex("058a0500")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "shorter than the 12-byte"),
        (bytes.fromhex("8000000100000001000000"), "shorter than the 12-byte"),
        (bytes.fromhex("400000010000000100000001"), "version 1"),
        (bytes.fromhex("830000010000000100000001") + bytes(8), "3 CSRCs do not fit"),
        (bytes.fromhex("900000010000000100000001") + b"\xbe", "extension header is missing"),
        (bytes.fromhex("900000010000000100000001bede0002") + bytes(4), "2-word"),
        (bytes.fromhex("a00000010000000100000001") + b"\x00", "padding count 0"),
        (bytes.fromhex("a00000010000000100000001") + b"\x00\x09", "padding count 9"),
        (bytes(rtp.MAX_PACKET_SIZE + 1), "longer than any UDP payload"),
    ],
)
def test_malformed_packets_raise_the_one_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtpError, match=reason):
        RtpPacket.parse(data)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payload_type", 128),
        ("sequence_number", 65536),
        ("timestamp", -1),
        ("ssrc", 1 << 32),
        ("csrc", tuple(range(16))),
        ("padding", 256),
    ],
)
def test_values_out_of_range_are_refused_on_creation(field: str, value: object) -> None:
    fields: dict[str, object] = {
        "payload_type": 0,
        "sequence_number": 0,
        "timestamp": 0,
        "ssrc": 0,
        field: value,
    }
    with pytest.raises(ValueError):
        RtpPacket(**fields)  # type: ignore[arg-type]


def test_header_extension_is_whole_words() -> None:
    with pytest.raises(ValueError):
        HeaderExtension(profile=0xBEDE, data=b"\x01")
    with pytest.raises(ValueError):
        HeaderExtension(profile=0x10000)


@given(st.binary(max_size=300))
def test_parse_is_total_on_random_bytes(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        return
    again = RtpPacket.parse(bytes(packet))
    assert again == packet


@given(st.binary(min_size=12, max_size=300))
def test_parse_is_total_on_version_2_packets(data: bytes) -> None:
    # Random bytes are mostly not version 2; force it so the CSRC/extension/padding paths run.
    data = bytes((0x80 | (data[0] & 0x3F),)) + data[1:]
    try:
        packet = RtpPacket.parse(data)
    except RtpError:
        with pytest.raises(RtpError):
            rtp.payload_bounds(data)
        return
    start, end = rtp.payload_bounds(data)
    assert data[start:end] == packet.payload


packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    marker=st.booleans(),
    csrc=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        HeaderExtension,
        profile=st.integers(0, 0xFFFF),
        data=st.integers(0, 8).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
    ),
    payload=st.binary(max_size=200),
    padding=st.integers(0, 255),
)


@given(packets)
def test_generated_packets_round_trip(packet: RtpPacket) -> None:
    data = bytes(packet)
    assert RtpPacket.parse(data) == packet
    assert bytes(RtpPacket.parse(data)) == data
    assert rtp.is_rtp(data)
    assert rtp.payload_type_of(data) == packet.payload_type
    assert rtp.fields_of(data) == (packet.sequence_number, packet.timestamp, packet.ssrc)
    assert rtp.ssrc_of(data) == packet.ssrc
    start, end = rtp.payload_bounds(data)
    assert data[start:end] == packet.payload


@given(packets, st.integers(0, 127), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF))
def test_fast_path_patches_only_its_fields(
    packet: RtpPacket, payload_type: int, seq: int, ts: int
) -> None:
    buffer = bytearray(bytes(packet))
    rtp.set_payload_type(buffer, payload_type)
    rtp.set_fields(buffer, seq, ts, 0x0BADCAFE)
    patched = RtpPacket.parse(buffer)
    assert patched.payload_type == payload_type and patched.marker == packet.marker
    assert (patched.sequence_number, patched.timestamp, patched.ssrc) == (seq, ts, 0x0BADCAFE)
    assert (patched.csrc, patched.extension, patched.payload, patched.padding) == (
        packet.csrc,
        packet.extension,
        packet.payload,
        packet.padding,
    )


def test_is_rtp_is_a_cheap_version_check() -> None:
    assert rtp.is_rtp(fixture("pcmu_tone_first_packet.bin"))
    assert not rtp.is_rtp(bytes(11))
    assert not rtp.is_rtp(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + bytes(12))  # STUN


# --- serial-number arithmetic ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "diff"),
    [(1, 0, 1), (0, 1, -1), (0, 65535, 1), (65535, 0, -1), (100, 65000, 636), (32768, 0, -32768)],
)
def test_sequence_numbers_wrap(a: int, b: int, diff: int) -> None:
    assert rtp.seq_diff(a, b) == diff


def test_serial_order_follows_rfc_1982() -> None:
    assert rtp.seq_lt(65535, 0) and not rtp.seq_lt(0, 65535)
    assert rtp.seq_lt(0, 32767) and not rtp.seq_lt(32767, 0)
    # Exactly half the circle apart: undefined in RFC 1982, "not less" both ways here.
    assert not rtp.seq_lt(0, 32768) and not rtp.seq_lt(32768, 0)
    assert rtp.ts_lt(0xFFFFFF00, 0x100) and not rtp.ts_lt(0x100, 0xFFFFFF00)
    assert rtp.seq_add(65535, 2) == 1 and rtp.ts_add(0xFFFFFFFF, 161) == 160
    assert rtp.ts_diff(160, 0xFFFFFF60) == 320


@given(st.integers(0, 0xFFFF), st.integers(-32767, 32767))
def test_sequence_distance_inverts_addition(a: int, n: int) -> None:
    assert rtp.seq_diff(rtp.seq_add(a, n), a) == n
    assert rtp.seq_lt(a, rtp.seq_add(a, n)) == (n > 0)


@given(st.integers(0, 0xFFFFFFFF), st.integers(-(1 << 31) + 1, (1 << 31) - 1))
def test_timestamp_distance_inverts_addition(a: int, n: int) -> None:
    assert rtp.ts_diff(rtp.ts_add(a, n), a) == n
    assert rtp.ts_lt(a, rtp.ts_add(a, n)) == (n > 0)
