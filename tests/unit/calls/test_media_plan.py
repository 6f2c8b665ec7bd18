"""How SDP is rewritten so a call's media goes through the relay (RFC 3264 offer/answer)."""

from __future__ import annotations

import pytest

from pbx.calls.media_plan import (
    LegMedia,
    NoCommonMedia,
    answer_to_caller,
    audio_of,
    late_caller_leg,
    offer_to_callee,
    offer_to_late_caller,
    switch_offer,
)
from pbx.sip.sdp import Direction, SessionDescription


def sdp(
    address: str, port: int, formats: str, *rtpmaps: str, direction: str = "sendrecv"
) -> SessionDescription:
    lines = [
        "v=0", f"o=- 1 1 IN IP4 {address}", "s=-", f"c=IN IP4 {address}", "t=0 0",
        f"m=audio {port} RTP/AVP {formats}", *[f"a=rtpmap:{m}" for m in rtpmaps], f"a={direction}",
    ]  # fmt: skip
    return SessionDescription.parse("\r\n".join(lines) + "\r\n")


ALICE = sdp("10.0.0.5", 4000, "0 8 101", "0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000")


def test_the_callee_is_offered_the_relay_address_and_both_laws() -> None:
    offer = offer_to_callee(ALICE, address="192.0.2.1", port=30002, session_id="7", version=1)
    audio = audio_of(offer)
    assert offer.connection_address_of(audio) == "192.0.2.1" and audio.port == 30002
    names = [c.encoding_name for c in audio.codecs]
    assert names[:2] == ["PCMU", "PCMA"] and "telephone-event" in names


def test_a_pcmu_only_caller_still_lets_a_pcma_callee_answer() -> None:
    pcmu_only = sdp("10.0.0.5", 4000, "0", "0 PCMU/8000")
    offer = offer_to_callee(pcmu_only, address="192.0.2.1", port=30002, session_id="7", version=1)
    assert [c.encoding_name for c in audio_of(offer).codecs if not c.is_telephone_event] == [
        "PCMU",
        "PCMA",
    ]
    pcma_answer = sdp("10.0.0.9", 5000, "8", "8 PCMA/8000")
    answer, leg_a, leg_b = answer_to_caller(
        pcmu_only, pcma_answer, address="192.0.2.1", port=30000, session_id="7", version=1
    )
    assert (leg_a.encoding, leg_b.encoding) == ("PCMU", "PCMA")  # the relay transcodes
    assert [c.encoding_name for c in audio_of(answer).codecs] == ["PCMU"]
    assert leg_a.remote == ("10.0.0.5", 4000) and leg_b.remote == ("10.0.0.9", 5000)


def test_the_caller_answer_names_the_relay_and_keeps_dtmf_when_both_have_it() -> None:
    bob = sdp("10.0.0.9", 5000, "0 101", "0 PCMU/8000", "101 telephone-event/8000")
    answer, leg_a, leg_b = answer_to_caller(
        ALICE, bob, address="192.0.2.1", port=30000, session_id="7", version=2
    )
    audio = audio_of(answer)
    assert answer.connection_address_of(audio) == "192.0.2.1" and audio.port == 30000
    assert (leg_a.audio_pt, leg_b.audio_pt) == (0, 0)
    assert (leg_a.dtmf_pt, leg_b.dtmf_pt) == (101, 101)


def test_hold_is_carried_as_a_direction() -> None:
    held = sdp("10.0.0.5", 4000, "0", "0 PCMU/8000", direction="sendonly")
    offer = offer_to_callee(held, address="192.0.2.1", port=30002, session_id="7", version=3)
    assert offer.direction_of(audio_of(offer)) is Direction.SENDONLY
    old_style = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    offer = offer_to_callee(old_style, address="192.0.2.1", port=30002, session_id="7", version=3)
    assert not offer.direction_of(audio_of(offer)).sends  # RFC 3264 §8.4: c=0.0.0.0 is hold


def test_no_g711_means_488() -> None:
    opus_only = sdp("10.0.0.5", 4000, "96", "96 opus/48000/2")
    with pytest.raises(NoCommonMedia) as raised:
        offer_to_callee(opus_only, address="192.0.2.1", port=30002, session_id="7", version=1)
    assert raised.value.status == 488


def test_a_late_offer_caller_is_offered_the_callees_law_first_and_answers_in_the_ack() -> None:
    own = switch_offer(address="192.0.2.1", port=30002, session_id="7", version=1)
    assert [c.encoding_name for c in audio_of(own).codecs] == ["PCMU", "PCMA", "telephone-event"]
    bob = sdp("10.0.0.9", 5000, "8", "8 PCMA/8000")  # no telephone-event
    offer, leg_a, leg_b = offer_to_late_caller(
        bob, address="192.0.2.1", port=30000, session_id="7", version=1
    )
    audio = audio_of(offer)
    assert offer.connection_address_of(audio) == "192.0.2.1" and audio.port == 30000
    assert [c.encoding_name for c in audio.codecs] == ["PCMA", "PCMU", "telephone-event"]
    assert leg_b == LegMedia(remote=("10.0.0.9", 5000), audio_pt=8, encoding="PCMA", dtmf_pt=None)
    assert (leg_a.remote, leg_a.encoding) == (None, "PCMA")  # until the ACK: latch, callee's law
    # Alice answers with the other law: the relay transcodes; her DTMF type is hers.
    alice = sdp("10.0.0.5", 4000, "0 101", "0 PCMU/8000", "101 telephone-event/8000")
    late = late_caller_leg(offer, alice)
    assert late == LegMedia(remote=("10.0.0.5", 4000), audio_pt=0, encoding="PCMU", dtmf_pt=101)


def test_a_late_answer_with_nothing_we_offered_is_refused() -> None:
    offer, _, _ = offer_to_late_caller(
        sdp("10.0.0.9", 5000, "0", "0 PCMU/8000"),
        address="192.0.2.1", port=30000, session_id="7", version=1,
    )  # fmt: skip
    with pytest.raises(NoCommonMedia):
        late_caller_leg(offer, sdp("10.0.0.5", 4000, "9", "9 G722/8000"))
    with pytest.raises(NoCommonMedia):
        offer_to_late_caller(
            sdp("10.0.0.9", 5000, "9", "9 G722/8000"),
            address="192.0.2.1", port=30000, session_id="7", version=1,
        )  # fmt: skip


HD = sdp("10.0.0.5", 4000, "9 0 8 101", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000",
         "101 telephone-event/8000")  # fmt: skip


def test_g722_is_offered_on_in_the_callers_order_and_carried_when_both_take_it() -> None:
    offer = offer_to_callee(HD, address="192.0.2.1", port=30002, session_id="7", version=1)
    names = [c.encoding_name for c in audio_of(offer).codecs]
    assert names == ["G722", "PCMU", "PCMA", "telephone-event"]
    bob = sdp("10.0.0.9", 5000, "9 101", "9 G722/8000", "101 telephone-event/8000")
    answer, leg_a, leg_b = answer_to_caller(
        HD, bob, address="192.0.2.1", port=30000, session_id="7", version=1
    )
    assert [c.encoding_name for c in audio_of(answer).codecs] == ["G722", "telephone-event"]
    assert (leg_a.encoding, leg_a.audio_pt, leg_b.encoding, leg_b.audio_pt) == (
        "G722", 9, "G722", 9,
    )  # fmt: skip


def test_a_narrowband_callee_gets_the_call_in_g711_and_g722_is_never_transcoded() -> None:
    bob = sdp("10.0.0.9", 5000, "8", "8 PCMA/8000")
    answer, leg_a, leg_b = answer_to_caller(
        HD, bob, address="192.0.2.1", port=30000, session_id="7", version=1
    )
    assert (leg_a.encoding, leg_b.encoding) == ("PCMA", "PCMA")
    assert [c.encoding_name for c in audio_of(answer).codecs] == ["PCMA"]
    # A caller that only has G.722: offered G.722 alone (no law to transcode to), and a
    # callee answering G.711 anyway cannot be served.
    hd_only = sdp("10.0.0.5", 4000, "9", "9 G722/8000")
    offer = offer_to_callee(hd_only, address="192.0.2.1", port=30002, session_id="7", version=1)
    assert [c.encoding_name for c in audio_of(offer).codecs] == ["G722", "telephone-event"]
    with pytest.raises(NoCommonMedia):
        answer_to_caller(hd_only, bob, address="192.0.2.1", port=30000, session_id="7",
                         version=1)  # fmt: skip
