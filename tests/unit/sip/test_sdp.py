"""SDP parse/serialize (RFC 8866) and offer/answer (RFC 3264): desk phone and softphone bodies,
hold and resume, IPv6, rejected streams, malformed input, and property tests."""

from __future__ import annotations

import string
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.sip import sdp
from pbx.sip.errors import SipError, SipParseError
from pbx.sip.sdp import (
    CN,
    G722,
    G729,
    MAX_FORMATS,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_LENGTH,
    MAX_SDP_LINES,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    Rtcp,
    SessionDescription,
    Timing,
    answer_for,
    make_offer,
    negotiated_codecs,
    parse,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "sdp"
FIXTURES = sorted(p.name for p in DATA.glob("*.sdp"))
LOCAL = "192.168.1.2"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


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


def names(codecs: tuple[Codec, ...]) -> list[str]:
    return [f"{c.payload_type} {c.encoding_name}/{c.clock_rate}" for c in codecs]


MINIMAL = crlf(
    """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0
"""
)


def with_media_lines(*lines: str, session: tuple[str, ...] = ()) -> str:
    """MINIMAL with extra session lines (before m=) and media lines (after m=)."""
    head, media = MINIMAL.split("m=")
    return (
        head
        + "".join(f"{s}\r\n" for s in session)
        + "m="
        + media
        + "".join(f"{line}\r\n" for line in lines)
    )


# -- fixtures: real phones' bodies, byte for byte ----------------------------------------------
def test_there_are_fixtures() -> None:
    assert len(FIXTURES) >= 10


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_round_trips_byte_for_byte(name: str) -> None:
    data = load(name)
    assert data.count(b"\n") == data.count(b"\r\n") and data.endswith(b"\r\n")
    description = parse(data)
    assert bytes(description) == data
    assert parse(data.decode()).serialize() == data.decode()
    assert SessionDescription.parse(data) == description


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_with_bare_lf_parses_the_same(name: str) -> None:
    data = load(name)
    assert parse(data.replace(b"\r\n", b"\n")) == parse(data)


def test_baresip_offer() -> None:
    offer = parse(load("baresip_offer.sdp"))
    assert offer.origin == Origin(
        session_id="1391247392", session_version=2783112516, address="192.168.1.23"
    )
    assert offer.attributes == (Attribute(name="tool", value="baresip 3.10.1"),)
    (audio,) = offer.media
    assert (audio.media_type, audio.port, audio.proto) == ("audio", 10630, "RTP/AVP")
    assert audio.bandwidths == (Bandwidth(bandwidth_type="AS", bandwidth=128),)
    assert names(audio.codecs) == [
        "96 opus/48000",
        "9 G722/8000",
        "0 PCMU/8000",
        "8 PCMA/8000",
        "101 telephone-event/8000",
    ]
    opus = audio.codecs[0]
    assert (opus.channels, opus.fmtp) == (2, "stereo=1;sprop-stereo=1")
    assert audio.codecs[-1].fmtp == "0-15" and audio.codecs[-1].is_telephone_event
    assert audio.ptime == 20.0 and audio.maxptime is None
    assert offer.direction_of(audio) is Direction.SENDRECV
    assert audio.attribute("rtcp-rsize") == "" and audio.attribute("rtcp-mux") is None
    assert audio.attribute("SSRC") == "3917592632 cname:0f4c59c0-9d0a-4f5e-b8d6-4e1c2a7e3b11"


def test_linphone_static_payload_types_need_no_rtpmap() -> None:
    offer = parse(load("linphone_audio_video_offer.sdp"))
    audio, video = offer.media
    assert names(audio.codecs) == [
        "96 opus/48000",
        "97 speex/16000",
        "98 speex/8000",
        "0 PCMU/8000",
        "8 PCMA/8000",
        "18 G729/8000",
        "101 telephone-event/48000",
        "99 telephone-event/16000",
        "100 telephone-event/8000",
    ]
    assert audio.codecs[5].fmtp == "annexb=yes"
    assert audio.rtcp == Rtcp(port=7079)
    assert names(video.codecs) == ["96 VP8/90000", "97 H264/90000"]
    assert video.codecs[1].fmtp == "profile-level-id=42801F"
    assert offer.connection_address_of(video) == "192.168.1.40"
    assert [a.name for a in offer.attributes] == ["rtcp-xr", "record"]


def test_grandstream_media_connection_and_interleaved_attributes() -> None:
    offer = parse(load("grandstream_offer.sdp"))
    (audio,) = offer.media
    assert audio.connection == Connection(address="192.168.1.60")
    assert [c.encoding_name for c in audio.codecs] == [
        "PCMU",
        "PCMA",
        "G723",
        "G729",
        "G722",
        "telephone-event",
    ]
    assert audio.ptime == 20.0 and audio.direction_attribute is Direction.SENDRECV


def test_asterisk_answer_maxptime() -> None:
    description = parse(load("asterisk_answer.sdp"))
    (audio,) = description.media
    assert (audio.ptime, audio.maxptime) == (20.0, 150.0)
    assert names(audio.codecs) == ["0 PCMU/8000", "101 telephone-event/8000"]


def test_yealink_hold_is_a_new_version_with_sendonly() -> None:
    offer = parse(load("yealink_offer.sdp"))
    hold = parse(load("yealink_hold_sendonly.sdp"))
    assert hold.origin.session_version == offer.origin.session_version + 1
    assert hold.origin.session_id == offer.origin.session_id
    assert hold.direction_of(hold.media[0]) is Direction.SENDONLY
    # resuming: the phone sends sendrecv again
    resume = offer.bump_version().bump_version()
    assert resume.origin.session_version == 20047
    assert resume.direction_of(resume.media[0]) is Direction.SENDRECV


def test_legacy_hold_address() -> None:
    offer = parse(load("legacy_hold_zero_address.sdp"))
    (audio,) = offer.media
    connection = offer.connection_of(audio)
    assert connection is not None and connection.is_hold
    assert offer.direction_of(audio) is Direction.SENDRECV  # the attribute view stays literal
    assert not Connection(address="192.0.2.1").is_hold
    assert Connection(address_type="IP6", address="::").is_hold


def test_ipv6_media_connection_overrides_session() -> None:
    offer = parse(load("ipv6_media_connection_offer.sdp"))
    (audio,) = offer.media
    assert offer.connection == Connection(address_type="IP6", address="2001:db8:10::23")
    assert offer.connection_address_of(audio) == "2001:db8:10::99"
    assert offer.origin.address_type == "IP6"
    assert audio.rtcp == Rtcp(
        port=20001, connection=Connection(address_type="IP6", address="2001:db8:10::99")
    )
    assert names(audio.codecs) == ["8 PCMA/8000", "96 telephone-event/8000"]


def test_non_rtp_media_has_no_codecs() -> None:
    fax = parse(load("asterisk_t38_reinvite.sdp"))
    (image,) = fax.media
    assert (image.media_type, image.proto, image.formats) == ("image", "udptl", ("t38",))
    assert not image.is_rtp and image.codecs == ()
    assert image.attribute("T38MaxBitRate") == "14400"


# -- parsing details ----------------------------------------------------------------------------
def test_sloppy_phone_bare_lf_trailing_blanks_no_s_or_t() -> None:
    text = "v=0\no=- 7 7 IN IP4 10.1.1.1 \nc=IN IP4 10.1.1.1\t\n\nm=audio 3456 RTP/AVP 0 8  \n"
    text += "a=sendonly \n"
    description = parse(text)
    assert description.session_name == "-" and description.timings == (Timing(),)
    (audio,) = description.media
    assert audio.formats == ("0", "8")
    assert description.direction_of(audio) is Direction.SENDONLY
    assert description.serialize() == crlf(
        """v=0
o=- 7 7 IN IP4 10.1.1.1
s=-
c=IN IP4 10.1.1.1
t=0 0
m=audio 3456 RTP/AVP 0 8
a=sendonly
"""
    )


def test_text_fields_keep_their_blanks() -> None:
    text = MINIMAL.replace("s=-", "s= \r\ni=Sales call ")
    description = parse(text)
    assert description.session_name == " " and description.information == "Sales call "
    assert description.serialize() == text


def test_all_session_lines_in_rfc_order_round_trip() -> None:
    text = crlf(
        """v=0
o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5
s=SDP Seminar
i=A Seminar on the session description protocol
u=http://www.example.com/seminars/sdp.pdf
e=j.doe@example.com (Jane Doe)
p=+1 617 555-6011
c=IN IP4 224.2.17.12/127
b=CT:1000
t=2873397496 2873404696
r=604800 3600 0 90000
t=3034423619 3042462419
z=2882844526 -1h 2898848070 0
k=prompt
a=recvonly
m=audio 49170 RTP/AVP 0
i=the talk
c=IN IP4 224.2.17.12/127/3
b=AS:64
k=clear:secret
m=video 51372/2 RTP/AVP 99
a=rtpmap:99 h263-1998/90000
"""
    )
    description = parse(text)
    assert description.serialize() == text
    assert description.connection == Connection(address="224.2.17.12", ttl=127)
    assert description.timings[0].repeats == ("604800 3600 0 90000",)
    assert len(description.timings) == 2
    audio, video = description.media
    assert audio.connection == Connection(address="224.2.17.12", ttl=127, address_count=3)
    assert (audio.information, audio.key) == ("the talk", "clear:secret")
    assert video.port_count == 2
    assert description.direction_of(audio) is Direction.RECVONLY


def test_ipv6_multicast_count() -> None:
    description = parse(with_media_lines("c=IN IP6 ff15::101/3"))
    assert description.media[0].connection == Connection(
        address_type="IP6", address="ff15::101", address_count=3
    )


def test_unknown_lines_and_attributes_kept_in_order() -> None:
    text = with_media_lines(
        "a=x-custom:1",
        "a=rtcp-mux",
        "a=x-custom:2",
        "y=0100000001",
        "f=v/2/25",
        session=("a=group:BUNDLE 0", "w=whatever"),
    )
    description = parse(text)
    assert description.serialize() == text
    assert description.unknown_lines == ("w=whatever",)
    (audio,) = description.media
    assert audio.unknown_lines == ("y=0100000001", "f=v/2/25")
    assert [str(a) for a in audio.attributes] == ["x-custom:1", "rtcp-mux", "x-custom:2"]


def test_session_direction_is_the_default_media_overrides() -> None:
    text = MINIMAL.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n") + "m=audio 4002 RTP/AVP 8\r\n"
    text += "a=inactive\r\n"
    description = parse(text)
    first, second = description.media
    assert description.direction is Direction.SENDONLY
    assert first.direction_attribute is None
    assert description.direction_of(first) is Direction.SENDONLY
    assert description.direction_of(second) is Direction.INACTIVE
    assert parse(MINIMAL).direction_of(parse(MINIMAL).media[0]) is Direction.SENDRECV


def test_codec_views() -> None:
    description = parse(
        with_media_lines(
            "a=rtpmap:0 pcmu/8000",  # an rtpmap for a static type wins (case kept)
            "a=fmtp:0 ",
            "a=rtpmap:97 L16/16000/2",
            "a=fmtp:97 a=b",
            "a=fmtp:97 c=d",
        ).replace("RTP/AVP 0", "RTP/AVP 0 97 96 0 13")
    )
    (audio,) = description.media
    # 96 has no rtpmap and is not static: it means nothing and is left out; 0 is listed once
    assert names(audio.codecs) == ["0 pcmu/8000", "97 L16/16000", "13 CN/8000"]
    assert audio.codecs[0].fmtp is None and audio.codecs[0].same_format(PCMU)
    assert audio.codecs[1].channels == 2 and audio.codecs[1].fmtp == "a=b"


def test_port_zero_rejected_stream_parses_without_connection() -> None:
    text = MINIMAL.replace("c=IN IP4 192.0.2.1\r\n", "") + "a=rtpmap:0 PCMU/8000\r\n"
    text = text.replace("m=audio 4000", "m=audio 0")
    description = parse(text)
    assert (
        description.media[0].port == 0 and description.connection_of(description.media[0]) is None
    )
    assert description.serialize() == text


def test_non_utf8_bytes_pass_through() -> None:
    data = MINIMAL.replace("s=-", "s=Caf\xe9").encode("latin-1")
    description = parse(data)
    assert bytes(description) == data


# -- malformed input -------------------------------------------------------------------------
BAD = [
    ("", "SDP: missing v= line"),
    ("\r\n\r\n", "SDP: missing v= line"),
    (MINIMAL.replace("v=0\r\n", ""), "SDP: missing v= line"),
    (MINIMAL.replace("v=0", "v=1"), "SDP: unsupported version 'v=1'"),
    (MINIMAL.replace("v=0", "V=0"), "SDP: bad line 'V=0'"),
    (MINIMAL.replace("o=- 1 1 IN IP4 192.0.2.1\r\n", ""), "SDP: missing o= line"),
    (MINIMAL.replace("IN IP4 192.0.2.1\r\ns", "IN IP4\r\ns"), "SDP: bad o= line 'o=- 1 1 IN IP4'"),
    (MINIMAL.replace("o=- 1 1", "o=- 1 x"), "SDP: bad o= line"),
    (MINIMAL.replace("4000 RTP/AVP 0", "x RTP/AVP 0"), "SDP: bad m= line 'm=audio x RTP/AVP 0'"),
    (MINIMAL.replace("4000 RTP/AVP 0", "70000 RTP/AVP 0"), "SDP: bad m= line"),
    (MINIMAL.replace("4000 RTP/AVP 0", "4000/0 RTP/AVP 0"), "SDP: bad m= line"),
    (MINIMAL.replace("4000 RTP/AVP 0", "4000"), "SDP: bad m= line 'm=audio 4000'"),
    (MINIMAL.replace("RTP/AVP 0", "RTP/AVP 0 pcmu"), "SDP: bad m= line"),
    (MINIMAL.replace("RTP/AVP 0", "RTP/AVP 128"), "SDP: bad m= line"),
    (MINIMAL.replace("c=IN IP4 192.0.2.1", "c=IN IP4"), "SDP: bad c= line 'c=IN IP4'"),
    (MINIMAL.replace("192.0.2.1\r\nt", "192.0.2.1/x\r\nt"), "SDP: bad c= line"),
    (MINIMAL.replace("c=IN IP4 192.0.2.1", "c=IN IP6 ff15::1/3/2"), "SDP: bad c= line"),
    (MINIMAL.replace("c=IN IP4 192.0.2.1", "c=IN IP4 224.2.1.1/300"), "SDP: bad c= line"),
    (MINIMAL.replace("c=IN IP4 192.0.2.1\r\n", ""), "SDP: no c= line for 'm=audio 4000"),
    (MINIMAL.replace("t=0 0", "t=now"), "SDP: bad t= line 't=now'"),
    (MINIMAL.replace("t=0 0", "r=7d 1h 0"), "SDP: r= line without a t= line"),
    (with_media_lines("b=AS"), "SDP: bad b= line 'b=AS'"),
    (with_media_lines(session=("s=again",)), "SDP: more than one s= line"),
    (with_media_lines(session=("o=- 2 2 IN IP4 192.0.2.1",)), "SDP: more than one o= line"),
    (with_media_lines(session=("c=IN IP4 192.0.2.2",)), "SDP: more than one c= line"),
    (with_media_lines(session=("v=0",)), "SDP: more than one v= line"),
    (with_media_lines("i=a", "i=b"), "SDP: more than one i= line"),
    (with_media_lines("t=0 0"), "SDP: t= line inside 'm=audio 4000 RTP/AVP 0'"),
    (with_media_lines("a=sendonly", "a=recvonly"), "SDP: conflicting direction attributes"),
    (with_media_lines(session=("a=inactive", "a=sendrecv")), "SDP: conflicting direction"),
    (with_media_lines("a=rtpmap:96"), "SDP: bad rtpmap 'a=rtpmap:96'"),
    (with_media_lines("a=rtpmap:200 foo/8000"), "SDP: bad rtpmap"),
    (with_media_lines("a=rtpmap:0 PCMU/0"), "SDP: bad rtpmap"),
    (with_media_lines("a=rtpmap:0 PCMU/8000", "a=rtpmap:0 PCMA/8000"), "SDP: two rtpmaps"),
    (with_media_lines("a=ptime:twenty"), "SDP: bad ptime 'a=ptime:twenty'"),
    (with_media_lines("a=maxptime"), "SDP: bad maxptime"),
    (with_media_lines("a=rtcp:x"), "SDP: bad rtcp attribute 'a=rtcp:x'"),
    (with_media_lines("a=rtcp"), "SDP: bad rtcp attribute"),
    (with_media_lines("a=rtcp:5001 IN IP4"), "SDP: bad rtcp attribute"),
    (with_media_lines("a=:x"), "SDP: bad a= line 'a=:x'"),
    (with_media_lines("hello"), "SDP: bad line 'hello'"),
    (with_media_lines("a=x\ry"), "SDP: bare CR in line 'a=x?y'"),
    ("v=0\r\n" + "x" * 500, "SDP: bad line 'xxxxxxxxx"),
    ("x" * (MAX_SDP_LENGTH + 1), f"SDP: longer than {MAX_SDP_LENGTH} bytes"),
    ("\n" * MAX_SDP_LINES, f"SDP: more than {MAX_SDP_LINES} lines"),
    (MINIMAL + "m=audio 0 RTP/AVP 0\r\n" * MAX_MEDIA_SECTIONS, "SDP: more than 64 m= sections"),
    (MINIMAL.replace("RTP/AVP 0", "RTP/AVP" + " 0" * (MAX_FORMATS + 1)), "SDP: more than 128"),
    ("v=0\r\ns=\ud800\r\n", "SDP: not UTF-8 text"),
]


@pytest.mark.parametrize(("text", "reason"), BAD, ids=[reason for _, reason in BAD])
def test_malformed_sdp_is_a_400_with_a_clear_reason(text: str, reason: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse(text)
    assert caught.value.status == 400
    assert caught.value.reason.startswith(reason), caught.value.reason
    assert caught.value.reason.isprintable() and len(caught.value.reason) < 120


def test_malformed_bytes_too() -> None:
    with pytest.raises(SipParseError, match="^SDP: bad line '\\?\\?'$"):
        parse(b"\xff\xfe")


# -- rewriting for the media relay -------------------------------------------------------------
def test_relay_rewrites_address_and_port_and_nothing_else() -> None:
    original = load("grandstream_offer.sdp").decode()
    rewritten = parse(original).with_connection_address("10.9.9.9").with_media_ports([30000])
    expected = original.replace("IN IP4 192.168.1.60\r\nt", "IN IP4 10.9.9.9\r\nt")
    expected = expected.replace("c=IN IP4 192.168.1.60\r\na", "c=IN IP4 10.9.9.9\r\na")
    expected = expected.replace("m=audio 5004", "m=audio 30000")
    assert rewritten.serialize() == expected
    assert rewritten.origin.address == "192.168.1.60"  # o= is the author's identity


def test_relay_rewrite_to_ipv6_and_rtcp_attribute() -> None:
    offer = parse(load("ipv6_media_connection_offer.sdp"))
    moved = offer.with_connection_address("2001:db8::1")
    (audio,) = moved.media
    assert moved.connection == Connection(address_type="IP6", address="2001:db8::1")
    assert audio.connection == moved.connection
    assert audio.rtcp == Rtcp(port=20001, connection=moved.connection)
    assert [a.name for a in audio.attributes] == [a.name for a in offer.media[0].attributes]
    # a new port: the rtcp attribute named the phone's RTCP port, so it goes (RTP port + 1)
    relayed = moved.with_media_ports([40000]).media[0]
    assert relayed.port == 40000 and relayed.rtcp is None
    kept = audio.with_port(40000, rtcp_port=40005)
    assert kept.rtcp == Rtcp(port=40005, connection=moved.connection)
    assert [a.name for a in kept.attributes] == [a.name for a in audio.attributes]
    assert parse(moved.with_connection_address("192.0.2.7").serialize()).connection == Connection(
        address="192.0.2.7"
    )


def test_relay_rewrite_keeps_a_hold_address() -> None:
    offer = parse(load("legacy_hold_zero_address.sdp"))
    assert offer.with_connection_address("10.9.9.9").connection == offer.connection
    media = MediaDescription(
        media_type="audio", port=1, connections=(Connection(address="0.0.0.0"),)
    )
    assert media.with_connection_address("10.9.9.9").connection == Connection(address="0.0.0.0")


def test_relay_rewrite_without_session_connection() -> None:
    text = MINIMAL.replace("c=IN IP4 192.0.2.1\r\n", "") + "c=IN IP4 192.0.2.1\r\n"
    moved = parse(text).with_connection_address("10.0.0.1")
    assert moved.connection is None
    assert moved.media[0].connections == (Connection(address="10.0.0.1"),)
    assert moved.media[0].with_port(5000, rtcp_port=5003).rtcp == Rtcp(port=5003)


def test_media_ports_keep_rejected_streams_rejected() -> None:
    offer = parse(load("linphone_audio_video_offer.sdp"))
    video_off = answer(offer)  # video rejected
    relayed = video_off.with_media_ports([30000, 30002])
    assert [m.port for m in relayed.media] == [30000, 0]
    with pytest.raises(ValueError, match="1 ports for 2 m= lines"):
        offer.with_media_ports([1])


def test_with_direction_replaces_in_place() -> None:
    (audio,) = parse(load("yealink_offer.sdp")).media
    held = audio.with_direction(Direction.SENDONLY)
    assert [str(a) for a in held.attributes][5:7] == ["ptime:20", "sendonly"]
    assert len(held.attributes) == len(audio.attributes)
    bare = MediaDescription(media_type="audio", port=4000)
    assert bare.with_direction(Direction.INACTIVE).attributes == (Attribute(name="inactive"),)


def test_bump_version() -> None:
    offer = parse(load("baresip_offer.sdp"))
    bumped = offer.bump_version()
    assert bumped.origin.session_version == 2783112517
    assert bumped.serialize() == offer.serialize().replace(" 2783112516 ", " 2783112517 ")


def test_connection_for_address() -> None:
    assert str(Connection.for_address("192.0.2.5")) == "IN IP4 192.0.2.5"
    assert str(Connection.for_address("[2001:db8::5]")) == "IN IP6 2001:db8::5"
    assert str(Connection.for_address("pbx.example.com")) == "IN IP4 pbx.example.com"
    assert str(Connection(address="224.2.1.1", ttl=16, address_count=2)) == "IN IP4 224.2.1.1/16/2"


def test_invalid_values_are_refused_on_creation() -> None:
    with pytest.raises(ValueError):
        Codec(payload_type=128, encoding_name="PCMU", clock_rate=8000)
    with pytest.raises(ValueError):
        Codec(payload_type=96, encoding_name="opus/2", clock_rate=48000)
    with pytest.raises(ValueError):
        MediaDescription(media_type="audio", port=65536)
    with pytest.raises(ValueError):
        Connection(address="224.2.1.1", address_count=2)  # IP4 count needs a ttl
    with pytest.raises(ValueError):
        Connection(address_type="IP6", address="ff15::1", ttl=3)


def test_serialize_refuses_a_smuggled_line() -> None:
    description = parse(MINIMAL)
    evil = MediaDescription(
        media_type="audio", port=4000, attributes=(Attribute(name="x", value="1\r\nm=video"),)
    )
    with pytest.raises(ValueError, match="line break"):
        replace(description, media=(evil,)).serialize()


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
TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-._+*", min_size=1, max_size=8)
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=16)
VALUE = TEXT.map(lambda v: v.rstrip(" \t"))
RESERVED = {"rtpmap", "fmtp", "ptime", "maxptime", "rtcp", *(d.value for d in Direction)}
UNKNOWN_KINDS = sorted(set(string.ascii_lowercase) - set("vosiuepcbtrzkam"))


@st.composite
def connections(draw: st.DrawFn) -> Connection:
    kind = draw(st.sampled_from(["IP4", "IP6", "other"]))
    if kind == "IP4":
        ttl = draw(st.none() | st.integers(0, 255))
        count = draw(st.none() | st.integers(1, 99)) if ttl is not None else None
        address = str(draw(st.ip_addresses(v=4)))
        return Connection(address=address, ttl=ttl, address_count=count)
    if kind == "IP6":
        address = str(draw(st.ip_addresses(v=6)))
        count = draw(st.none() | st.integers(1, 99))
        return Connection(address_type="IP6", address=address, address_count=count)
    address_type = draw(TOKEN.filter(lambda t: t.upper() not in ("IP4", "IP6")))
    return Connection(network_type=draw(TOKEN), address_type=address_type, address=draw(TOKEN))


def generic_attributes() -> st.SearchStrategy[list[Attribute]]:
    name = TOKEN.filter(lambda n: n.lower() not in RESERVED)
    return st.lists(st.builds(Attribute, name=name, value=st.none() | VALUE), max_size=4)


def directions() -> st.SearchStrategy[list[Attribute]]:
    return st.lists(st.sampled_from(list(Direction)), max_size=1).map(
        lambda ds: [Attribute(name=d.value) for d in ds]
    )


def unknown_lines() -> st.SearchStrategy[list[str]]:
    line = st.tuples(st.sampled_from(UNKNOWN_KINDS), VALUE).map(lambda kv: f"{kv[0]}={kv[1]}")
    return st.lists(line, max_size=2)


BANDWIDTHS = st.lists(
    st.builds(Bandwidth, bandwidth_type=TOKEN, bandwidth=st.integers(0, 10**12 - 1)), max_size=2
)


@st.composite
def media_descriptions(draw: st.DrawFn, *, needs_connection: bool) -> MediaDescription:
    proto = draw(st.sampled_from(["RTP/AVP", "RTP/SAVP", "udptl", "TCP/MSRP"]))
    port = draw(st.integers(0, 65535))
    attributes = draw(generic_attributes()) + draw(directions())
    if "RTP" in proto:
        pts = draw(st.lists(st.integers(0, 127), unique=True, max_size=6))
        formats = [str(pt) for pt in pts]
        for pt in draw(st.lists(st.sampled_from(pts), unique=True)) if pts else []:
            codec = Codec(
                payload_type=pt,
                encoding_name=draw(TOKEN),
                clock_rate=draw(st.integers(1, 10**6)),
                channels=draw(st.integers(1, 8)),
            )
            attributes.append(Attribute(name="rtpmap", value=codec.rtpmap))
            if draw(st.booleans()):
                attributes.append(Attribute(name="fmtp", value=f"{pt} {draw(TOKEN)}"))
        if draw(st.booleans()):
            ptime = draw(st.sampled_from(["20", "30", "10.5", "60"]))
            attributes.append(
                Attribute(name=draw(st.sampled_from(["ptime", "maxptime"])), value=ptime)
            )
        if draw(st.booleans()):
            rtcp = Rtcp(
                port=draw(st.integers(0, 65535)), connection=draw(st.none() | connections())
            )
            attributes.append(Attribute(name="rtcp", value=str(rtcp)))
    else:
        formats = draw(st.lists(TOKEN, max_size=3))
    min_connections = 1 if needs_connection and port else 0
    return MediaDescription(
        media_type=draw(TOKEN),
        port=port,
        port_count=draw(st.none() | st.integers(1, 65535)),
        proto=proto,
        formats=tuple(formats),
        information=draw(st.none() | TEXT),
        connections=tuple(draw(st.lists(connections(), min_size=min_connections, max_size=2))),
        bandwidths=tuple(draw(BANDWIDTHS)),
        key=draw(st.none() | VALUE),
        attributes=tuple(attributes),
        unknown_lines=tuple(draw(unknown_lines())),
    )


@st.composite
def session_descriptions(draw: st.DrawFn) -> SessionDescription:
    connection = draw(st.none() | connections())
    where = draw(connections())
    origin = Origin(
        username=draw(TOKEN),
        session_id=draw(TOKEN),
        session_version=draw(st.integers(0, 2**64)),
        network_type=where.network_type,
        address_type=where.address_type,
        address=where.address,
    )
    timing = st.builds(
        Timing,
        start=st.integers(0, 2**40),
        stop=st.integers(0, 2**40),
        repeats=st.lists(VALUE, max_size=2).map(tuple),
    )
    media = st.lists(media_descriptions(needs_connection=connection is None), max_size=3)
    return SessionDescription(
        origin=origin,
        session_name=draw(TEXT),
        information=draw(st.none() | TEXT),
        uri=draw(st.none() | VALUE),
        emails=tuple(draw(st.lists(VALUE, max_size=2))),
        phones=tuple(draw(st.lists(VALUE, max_size=2))),
        connection=connection,
        bandwidths=tuple(draw(BANDWIDTHS)),
        timings=tuple(draw(st.lists(timing, min_size=1, max_size=2))),
        time_zones=draw(st.none() | VALUE),
        key=draw(st.none() | VALUE),
        attributes=tuple(draw(generic_attributes()) + draw(directions())),
        unknown_lines=tuple(draw(unknown_lines())),
        media=tuple(draw(media)),
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(session_descriptions())
def test_property_serialize_parse_round_trip(description: SessionDescription) -> None:
    text = description.serialize()
    assert parse(text) == description
    assert parse(bytes(description)).serialize() == text


def parses_or_refuses(data: str | bytes) -> SessionDescription | None:
    try:
        return parse(data)
    except SipParseError as exc:
        assert exc.status == 400 and exc.reason.startswith("SDP: ")
        return None


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_property_never_crashes_on_text(text: str) -> None:
    parses_or_refuses(text)
    parses_or_refuses("v=0\r\no=- 1 1 IN IP4 h\r\n" + text)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_property_never_crashes_on_bytes(data: bytes) -> None:
    parses_or_refuses(data)


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
        n for n, v in vars(sdp).items() if isinstance(v, mutable) and not n.startswith("__")
    ]
