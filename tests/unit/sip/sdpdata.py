"""SDP fixtures of ``tests/data/sdp`` (real phones' bodies, CRLF exact), text helpers and
hypothesis strategies for descriptions, shared by the SDP and offer/answer tests."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import strategies as st

from pbx.sip.errors import SipParseError
from pbx.sip.sdp import (
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

DATA = Path(__file__).resolve().parents[2] / "data" / "sdp"
FIXTURES = sorted(p.name for p in DATA.glob("*.sdp"))


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def crlf(text: str) -> str:
    return text.replace("\n", "\r\n")


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


def parses_or_refuses(data: str | bytes) -> SessionDescription | None:
    try:
        return parse(data)
    except SipParseError as exc:
        assert exc.status == 400 and exc.reason.startswith("SDP: ")
        return None
