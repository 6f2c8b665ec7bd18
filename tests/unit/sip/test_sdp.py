"""SDP parse/serialize (RFC 8866): desk phone and softphone bodies, hold and resume, IPv6,
rewriting for the relay, malformed input, and property tests."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.sip import sdp, sdp_fields
from pbx.sip.errors import SipParseError
from pbx.sip.sdp import (
    MAX_FORMATS,
    MAX_MEDIA_SECTIONS,
    MAX_SDP_LENGTH,
    MAX_SDP_LINES,
    PCMU,
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


# -- properties ------------------------------------------------------------------------------
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(session_descriptions())
def test_property_serialize_parse_round_trip(description: SessionDescription) -> None:
    text = description.serialize()
    assert parse(text) == description
    assert parse(bytes(description)).serialize() == text


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_property_never_crashes_on_text(text: str) -> None:
    parses_or_refuses(text)
    parses_or_refuses("v=0\r\no=- 1 1 IN IP4 h\r\n" + text)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_property_never_crashes_on_bytes(data: bytes) -> None:
    parses_or_refuses(data)


def test_module_has_no_mutable_globals() -> None:
    mutable = (list, dict, set, bytearray)
    for module in (sdp, sdp_fields):
        assert not [
            n for n, v in vars(module).items() if isinstance(v, mutable) and not n.startswith("__")
        ]
