"""Offer/answer (RFC 3264) on real phones' offers: codec choice, direction and hold, rejected
streams, telephone-event, our own offers, what was negotiated, and property tests."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.media import offer_answer
from pbx.media.offer_answer import answer_for, make_offer, negotiated_codecs
from pbx.sip.errors import SipError
from pbx.sip.sdp import (
    CN,
    G722,
    G729,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Connection,
    Direction,
    SessionDescription,
    parse,
)
from tests.unit.sip.sdpdata import (
    FIXTURES,
    MINIMAL,
    crlf,
    load,
    names,
    parses_or_refuses,
    session_descriptions,
    with_media_lines,
)

LOCAL = "192.168.1.2"


def answer(offer: SessionDescription, **kwargs: object) -> SessionDescription:
    options: dict[str, object] = {
        "supported": [PCMU, PCMA, G722],
        "telephone_event": True,
        "address": LOCAL,
        "ports": [10000 + 2 * i for i in range(len(offer.media))],
        "session_id": "4242",
        "session_version": 1,
    }
    options.update(kwargs)
    return answer_for(offer, **options)  # type: ignore[arg-type]


def test_media_ports_keep_rejected_streams_rejected() -> None:
    offer = parse(load("linphone_audio_video_offer.sdp"))
    video_off = answer(offer)  # video rejected
    relayed = video_off.with_media_ports([30000, 30002])
    assert [m.port for m in relayed.media] == [30000, 0]
    with pytest.raises(ValueError, match="1 ports for 2 m= lines"):
        offer.with_media_ports([1])


# -- offer/answer ------------------------------------------------------------------------------
def test_answer_to_a_yealink_offer() -> None:
    offer = parse(load("yealink_offer.sdp"))
    result = answer(offer, supported=[PCMA, PCMU])
    assert result.serialize() == crlf(
        """v=0
o=- 4242 1 IN IP4 192.168.1.2
s=-
c=IN IP4 192.168.1.2
t=0 0
m=audio 10000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
"""
    )
    (common,) = negotiated_codecs(offer, result)
    assert names(common) == ["0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000"]


def test_answer_keeps_offer_order_payload_types_and_fmtp() -> None:
    offer = parse(load("yealink_offer.sdp"))
    result = answer(offer, supported=[G729, G722])
    (audio,) = result.media
    assert audio.formats == ("9", "18", "101")  # the offer's order, not ours (RFC 3264 §6.1)
    assert audio.codecs[1].fmtp == "annexb=no"


def test_answer_to_linphone_rejects_video_and_picks_the_8k_telephone_event() -> None:
    offer = parse(load("linphone_audio_video_offer.sdp"))
    result = answer(offer)
    audio, video = result.media
    assert audio.formats == ("0", "8", "100")
    assert audio.codecs[-1] == Codec(
        payload_type=100, encoding_name="telephone-event", clock_rate=8000, fmtp="0-15"
    )
    assert (video.media_type, video.port, video.proto, video.formats) == (
        "video",
        0,
        "RTP/AVP",
        ("96", "97"),
    )
    assert video.attributes == ()
    assert parse(result.serialize()) == result
    assert negotiated_codecs(offer, result)[1] == ()


def test_answer_keeps_a_dynamic_telephone_event_payload_type() -> None:
    offer = parse(load("ipv6_media_connection_offer.sdp"))
    result = answer(offer, address="2001:db8::1")
    (audio,) = result.media
    assert audio.formats == ("8", "96")
    assert audio.codecs[1].fmtp == "0-16"
    assert result.connection == Connection(address_type="IP6", address="2001:db8::1")
    assert result.origin.address_type == "IP6"


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
        (None, "sendrecv"),
    ],
)
def test_answer_mirrors_the_direction(offered: str | None, answered: str) -> None:
    text = with_media_lines(f"a={offered}") if offered else MINIMAL
    (audio,) = answer(parse(text)).media
    assert audio.direction_attribute == Direction(answered)
    session_level = MINIMAL.replace("t=0 0\r\n", f"t=0 0\r\na={offered}\r\n") if offered else text
    (audio,) = answer(parse(session_level)).media
    assert audio.direction_attribute == Direction(answered)


def test_answer_to_hold_and_resume() -> None:
    hold = parse(load("yealink_hold_sendonly.sdp"))
    assert answer(hold).media[0].direction_attribute is Direction.RECVONLY
    legacy = parse(load("legacy_hold_zero_address.sdp"))
    assert answer(legacy).media[0].direction_attribute is Direction.RECVONLY
    inactive = legacy.media[0].with_direction(Direction.RECVONLY)
    both = replace(legacy, media=(inactive,))
    assert answer(both).media[0].direction_attribute is Direction.INACTIVE
    resume = parse(load("yealink_offer.sdp"))
    assert answer(resume).media[0].direction_attribute is Direction.SENDRECV


def test_answer_carries_ptime_only_when_offered() -> None:
    assert answer(parse(with_media_lines("a=ptime:30"))).media[0].ptime == 30.0
    assert answer(parse(MINIMAL)).media[0].attribute("ptime") is None


@pytest.mark.parametrize(
    ("fixture", "ports", "supported"),
    [
        ("asterisk_t38_reinvite.sdp", [10000], [PCMU]),  # not audio
        ("zoiper_srtp_offer.sdp", [10000], [PCMU, PCMA, G722]),  # RTP/SAVP
        (
            "yealink_offer.sdp",
            [10000],
            [Codec(payload_type=3, encoding_name="GSM", clock_rate=8000)],
        ),
        ("yealink_offer.sdp", [0], [PCMU]),  # the caller refuses it
        ("yealink_offer.sdp", [10000], []),
    ],
)
def test_rejected_streams_get_port_zero(
    fixture: str, ports: list[int], supported: list[Codec]
) -> None:
    offer = parse(load(fixture))
    result = answer(offer, ports=ports, supported=supported)
    (media,) = result.media
    assert media.port == 0
    assert (media.media_type, media.proto, media.formats) == (
        offer.media[0].media_type,
        offer.media[0].proto,
        offer.media[0].formats,
    )
    assert negotiated_codecs(offer, result) == ((),)
    assert parse(bytes(result)) == result


def test_offered_port_zero_stays_zero() -> None:
    offer = parse(MINIMAL.replace("m=audio 4000", "m=audio 0"))
    assert answer(offer).media[0].port == 0


def test_comfort_noise_alone_is_not_a_common_codec() -> None:
    offer = parse(MINIMAL.replace("RTP/AVP 0", "RTP/AVP 8 13"))
    assert answer(offer, supported=[PCMU, CN]).media[0].port == 0
    assert answer(offer, supported=[PCMA, CN]).media[0].formats == ("8", "13")


@pytest.mark.parametrize(
    ("fmtp", "events"),
    [
        ("0-15", "0-15"),
        ("0-16", "0-16"),
        ("0-16,32-40", "0-16"),
        ("0-9,11", "0-9,11"),
        (None, "0-15"),  # RFC 4733 §7.1.1: no events parameter means 0-15
        ("32-40", None),
        ("garbage", None),
    ],
)
def test_answer_telephone_event_lists_common_events(fmtp: str | None, events: str | None) -> None:
    lines = ["a=rtpmap:101 telephone-event/8000"] + ([f"a=fmtp:101 {fmtp}"] if fmtp else [])
    offer = parse(with_media_lines(*lines).replace("RTP/AVP 0", "RTP/AVP 0 101"))
    (audio,) = answer(offer).media
    dtmf = [c for c in audio.codecs if c.is_telephone_event]
    assert [c.fmtp for c in dtmf] == ([events] if events else [])


def test_answer_telephone_event_needs_a_matching_clock_and_consent() -> None:
    offer = parse(
        with_media_lines("a=rtpmap:101 telephone-event/48000").replace("RTP/AVP 0", "RTP/AVP 0 101")
    )
    assert answer(offer).media[0].formats == ("0",)
    yealink = parse(load("yealink_offer.sdp"))
    assert answer(yealink, telephone_event=False).media[0].formats == ("9", "0", "8")
    # a telephone-event in ``supported`` does not add one when telephone_event is False
    supported = [PCMU, TELEPHONE_EVENT]
    assert answer(yealink, telephone_event=False, supported=supported).media[0].formats == ("0",)


def test_answer_needs_one_port_per_m_line() -> None:
    with pytest.raises(ValueError, match="2 ports for 1 m= lines"):
        answer(parse(MINIMAL), ports=[1, 2])


def test_make_offer() -> None:
    offer = make_offer(
        codecs=[PCMA, PCMU, G722], address=LOCAL, port=12000, session_id="77", session_version=0
    )
    assert offer.serialize() == crlf(
        """v=0
o=- 77 0 IN IP4 192.168.1.2
s=-
c=IN IP4 192.168.1.2
t=0 0
m=audio 12000 RTP/AVP 8 0 9 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:9 G722/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""
    )
    assert parse(bytes(offer)) == offer


def test_make_offer_options() -> None:
    opus = Codec(payload_type=96, encoding_name="opus", clock_rate=48000, channels=2, fmtp="x=1")
    offer = make_offer(
        codecs=[opus],
        address="2001:db8::2",
        port=5000,
        session_id="1",
        session_version=3,
        telephone_event=None,
        ptime=None,
        direction=Direction.SENDONLY,
        username="switchboard",
    )
    assert [str(a) for a in offer.media[0].attributes] == [
        "rtpmap:96 opus/48000/2",
        "fmtp:96 x=1",
        "sendonly",
    ]
    assert str(offer.origin) == "switchboard 1 3 IN IP6 2001:db8::2"
    with pytest.raises(ValueError):
        make_offer(codecs=[], address=LOCAL, port=1, session_id="1", session_version=1)
    clash = Codec(payload_type=101, encoding_name="iLBC", clock_rate=8000)
    with pytest.raises(ValueError):
        make_offer(codecs=[clash], address=LOCAL, port=1, session_id="1", session_version=1)


def test_offer_answer_between_two_switchboards() -> None:
    offer = make_offer(
        codecs=[G722, PCMA], address="10.0.0.1", port=10000, session_id="1", session_version=1
    )
    result = answer(offer, supported=[PCMA])
    assert names(negotiated_codecs(offer, result)[0]) == [
        "8 PCMA/8000",
        "101 telephone-event/8000",
    ]


def test_negotiated_codecs_use_the_answers_payload_types() -> None:
    offer = parse(load("baresip_offer.sdp"))
    reply = parse(load("asterisk_answer.sdp"))
    assert names(negotiated_codecs(offer, reply)[0]) == [
        "0 PCMU/8000",
        "101 telephone-event/8000",
    ]
    renumbered = parse(load("asterisk_answer.sdp").replace(b"101", b"96"))
    assert [c.payload_type for c in negotiated_codecs(offer, renumbered)[0]] == [0, 96]


def test_negotiated_codecs_needs_matching_m_lines() -> None:
    offer = parse(load("linphone_audio_video_offer.sdp"))
    with pytest.raises(SipError, match="answer has 1 m= lines, offer has 2"):
        negotiated_codecs(offer, parse(load("asterisk_answer.sdp")))


# -- properties ------------------------------------------------------------------------------
@settings(max_examples=500)
@given(
    st.sampled_from(FIXTURES),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 8), st.text(max_size=6)), max_size=4),
)
def test_property_edited_phone_bodies_parse_or_refuse_and_serialize_stably(
    name: str, edits: list[tuple[int, int, str]]
) -> None:
    text = load(name).decode()
    for at, cut, insert in edits:
        at %= len(text) + 1
        text = text[:at] + insert + text[at + cut :]
    description = parses_or_refuses(text)
    if description is not None:
        once = description.serialize()
        assert parse(once).serialize() == once  # normalized output is a fixed point
        result = answer(description)
        assert len(result.media) == len(description.media)
        assert parse(bytes(result)) == result
        negotiated_codecs(description, result)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(session_descriptions(), st.booleans())
def test_property_answer_has_one_m_line_per_offer_and_common_codecs(
    offer: SessionDescription, telephone_event: bool
) -> None:
    result = answer(offer, telephone_event=telephone_event)
    assert [m.media_type for m in result.media] == [m.media_type for m in offer.media]
    for offered, answered, common in zip(
        offer.media, result.media, negotiated_codecs(offer, result), strict=True
    ):
        if answered.port:
            assert offered.port and answered.codecs == common
            assert all(str(c.payload_type) in offered.formats for c in common)
        else:
            assert common == ()
    assert parse(bytes(result)) == result


def test_module_has_no_mutable_globals() -> None:
    mutable = (list, dict, set, bytearray)
    assert not [
        n
        for n, v in vars(offer_answer).items()
        if isinstance(v, mutable) and not n.startswith("__")
    ]
