"""SDP session descriptions (RFC 8866): the description as a whole, its parser and serializer.

:func:`parse` turns a body into frozen dataclasses and :meth:`SessionDescription.serialize` (or
``bytes()``) writes it back. Lines the code does not interpret (unknown attributes, unknown line
types) are kept in order, so a well-formed description serializes to the same text and a relay that
rewrites an address passes everything else through. Codecs, direction, ptime and rtcp are computed
from the a= lines on demand, never stored twice where the copies could disagree.

A malformed description raises :class:`~pbx.sip.errors.SipParseError` (status 400). The parser is
lenient where phones are sloppy (bare LF, trailing blanks, no s= or t= line) and strict where
meaning would be lost (a bad m=, c= or o= line, an unreadable rtpmap, two different directions).

The values of single lines (c=, o=, b=, t=, a= and the codecs of rtpmap/fmtp) live in
:mod:`pbx.sip.sdp_fields` and are re-exported here; the offer/answer rules (RFC 3264) that the
media server applies to descriptions are in :mod:`pbx.media.offer_answer`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from pbx.sip.sdp_fields import (
    CN,
    DIRECTION_NAMES,
    DTMF_EVENTS,
    G722,
    G729,
    GSM,
    PCMA,
    PCMU,
    STATIC_CODECS,
    TELEPHONE_EVENT,
    Attribute,
    Bandwidth,
    Codec,
    Connection,
    Direction,
    Origin,
    Rtcp,
    Timing,
    check_direction,
    check_rtp_attributes,
    codecs_of,
    excerpt,
    find_attribute,
    find_direction,
    parse_attribute,
    parse_bandwidth,
    parse_connection_line,
    parse_error,
    parse_origin,
    parse_payload_type,
    parse_ptime,
    parse_rtcp,
    parse_timing,
    set_attribute,
)

__all__ = [
    "CN",
    "DTMF_EVENTS",
    "G722",
    "G729",
    "GSM",
    "MAX_FORMATS",
    "MAX_MEDIA_SECTIONS",
    "MAX_SDP_LENGTH",
    "MAX_SDP_LINES",
    "PCMA",
    "PCMU",
    "RTP_AVP",
    "STATIC_CODECS",
    "TELEPHONE_EVENT",
    "Attribute",
    "Bandwidth",
    "Codec",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "Rtcp",
    "SessionDescription",
    "Timing",
    "parse",
]

# Named limits: a longer body, or one with more lines or m= sections, is refused before any work is
# done on it. A desk phone's offer is under 1 KB and 30 lines.
MAX_SDP_LENGTH = 65_536
MAX_SDP_LINES = 2_048
MAX_MEDIA_SECTIONS = 64
MAX_FORMATS = 128  # per m= line: RTP has 128 payload types

RTP_AVP = "RTP/AVP"

# RFC 8866 §5: <type>=<value>, the type one case-significant letter
_LINE_RE = re.compile(r"([a-z])=(.*)", re.DOTALL)
_TEXT_TYPES = frozenset("si")  # text fields where a trailing blank is content ("s= ")
_SESSION_TYPES = frozenset("vosiuepcbtrzka")
_MEDIA_TYPES = frozenset("icbka")
_PORT_RE = re.compile(r"([0-9]{1,5})(?:/([0-9]{1,5}))?")


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaDescription:
    """An m= section (RFC 8866 §5.14): ``m=<media> <port>[/<count>] <proto> <fmt> ...`` and its
    lines. Port 0 marks a rejected or disabled stream (RFC 3264 §6, §8.2)."""

    media_type: str
    port: int
    port_count: int | None = None
    proto: str = RTP_AVP
    formats: tuple[str, ...] = ()
    information: str | None = None
    connections: tuple[Connection, ...] = ()
    bandwidths: tuple[Bandwidth, ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    unknown_lines: tuple[str, ...] = ()
    _codecs: tuple[Codec, ...] | None = field(default=None, init=False, repr=False, compare=False)
    """`codecs`, worked out once: a call reads them a dozen times."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not 0-65535")

    # -- views of the attribute lines ----------------------------------------
    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=<name>`` line ("" for a flag), or None when absent."""
        return find_attribute(self.attributes, name)

    @property
    def is_rtp(self) -> bool:
        """RTP/AVP and its relatives (RTP/SAVP, RTP/AVPF, UDP/TLS/RTP/SAVPF): formats are PTs."""
        return "RTP/" in self.proto.upper()

    @property
    def codecs(self) -> tuple[Codec, ...]:
        """The RTP payload formats in m= line order, the sender's preference (RFC 3264 §5.1).

        A static payload type needs no rtpmap (RFC 3551 §6); a dynamic one without an rtpmap
        means nothing and is left out.
        """
        if self._codecs is None:
            codecs = codecs_of(self.formats, self.attributes) if self.is_rtp else ()
            object.__setattr__(self, "_codecs", codecs)  # frozen: a cache, not a change
            return codecs
        return self._codecs

    @property
    def direction_attribute(self) -> Direction | None:
        """This section's own direction; see :meth:`SessionDescription.direction_of`."""
        return find_direction(self.attributes)

    @property
    def connection(self) -> Connection | None:
        """This section's own (first) c= line; see :meth:`SessionDescription.connection_of`."""
        return self.connections[0] if self.connections else None

    @property
    def ptime(self) -> float | None:
        """Milliseconds of media per packet the author wants to receive (RFC 8866 §6.4)."""
        return parse_ptime(self.attribute("ptime"))

    @property
    def maxptime(self) -> float | None:
        """The most milliseconds per packet the author can receive (RFC 8866 §6.5)."""
        return parse_ptime(self.attribute("maxptime"))

    @property
    def rtcp(self) -> Rtcp | None:
        """Where RTCP goes when not to RTP port + 1 at the c= address (RFC 3605)."""
        value = self.attribute("rtcp")
        return None if value is None else parse_rtcp(value)

    # -- rewriting -----------------------------------------------------------
    def with_port(self, port: int, *, rtcp_port: int | None = None) -> MediaDescription:
        """A copy on ``port``. An rtcp attribute named the old endpoint's RTCP port: it is set to
        ``rtcp_port``, or dropped so RTCP goes to ``port`` + 1 (RFC 3550 §11)."""
        if rtcp_port is None:
            attributes = tuple(a for a in self.attributes if a.name.lower() != "rtcp")
        else:
            old = self.rtcp
            rtcp = Rtcp(port=rtcp_port, connection=None if old is None else old.connection)
            attributes = set_attribute(self.attributes, Attribute(name="rtcp", value=str(rtcp)))
        return replace(self, port=port, attributes=attributes)

    def with_connection_address(self, address: str) -> MediaDescription:
        """A copy whose c= line (and rtcp attribute address) say ``address``; a hold address
        (0.0.0.0) stays so that a held stream still reads as held (RFC 3264 §8.4)."""
        connection = self.connection
        if connection is None or not connection.is_hold:
            connection = Connection.for_address(address)
        return replace(self._with_rtcp_address(address), connections=(connection,))

    def with_direction(self, direction: Direction) -> MediaDescription:
        """A copy with one direction attribute, where the first one was (RFC 3264 §8.4: hold)."""
        new = Attribute(name=direction.value)
        return replace(self, attributes=set_attribute(self.attributes, new, DIRECTION_NAMES))

    def _with_rtcp_address(self, address: str) -> MediaDescription:
        rtcp = self.rtcp
        if rtcp is None or rtcp.connection is None or rtcp.connection.is_hold:
            return self
        moved = Rtcp(port=rtcp.port, connection=Connection.for_address(address))
        new = Attribute(name="rtcp", value=str(moved))
        return replace(self, attributes=set_attribute(self.attributes, new))


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionDescription:
    """A whole SDP body (RFC 8866 §5): the session lines, then one entry per m= section."""

    origin: Origin
    session_name: str = "-"
    information: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    timings: tuple[Timing, ...] = (Timing(),)
    time_zones: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    unknown_lines: tuple[str, ...] = ()
    media: tuple[MediaDescription, ...] = ()

    @classmethod
    def parse(cls, data: str | bytes) -> SessionDescription:
        return parse(data)

    def serialize(self) -> str:
        """The SDP text, CRLF line ends, lines in the RFC 8866 §5 order."""
        lines = ["v=0", f"o={self.origin}", f"s={self.session_name}"]
        _add(lines, "i", self.information)
        _add(lines, "u", self.uri)
        lines += [f"e={e}" for e in self.emails] + [f"p={p}" for p in self.phones]
        _add(lines, "c", self.connection)
        lines += [f"b={b}" for b in self.bandwidths]
        for timing in self.timings:
            lines.append(f"t={timing.start} {timing.stop}")
            lines += [f"r={r}" for r in timing.repeats]
        _add(lines, "z", self.time_zones)
        _add(lines, "k", self.key)
        lines += [f"a={a}" for a in self.attributes]
        lines += self.unknown_lines
        for media in self.media:
            lines += _media_lines(media)
        for line in lines:
            if "\r" in line or "\n" in line:  # a smuggled line would change the meaning
                raise ValueError(f"line break inside SDP line {line!r}")
        return "\r\n".join(lines) + "\r\n"

    def __bytes__(self) -> bytes:
        return self.serialize().encode("utf-8", "surrogateescape")

    @property
    def direction(self) -> Direction | None:
        """The session-level direction attribute, the default for every m= section."""
        return find_direction(self.attributes)

    def direction_of(self, media: MediaDescription) -> Direction:
        """The effective direction: media level, else session level, else sendrecv (RFC 8866
        §6.7). A hold address is not folded in here; see :attr:`Connection.is_hold`."""
        return media.direction_attribute or self.direction or Direction.SENDRECV

    def connection_of(self, media: MediaDescription) -> Connection | None:
        """The effective c= line: the media one overrides the session one (RFC 8866 §5.7)."""
        return media.connection or self.connection

    def connection_address_of(self, media: MediaDescription) -> str | None:
        connection = self.connection_of(media)
        return None if connection is None else connection.address

    def bump_version(self) -> SessionDescription:
        """The next version of this description: o= version + 1 (RFC 3264 §8)."""
        origin = replace(self.origin, session_version=self.origin.session_version + 1)
        return replace(self, origin=origin)

    def with_connection_address(self, address: str) -> SessionDescription:
        """A copy whose c= lines and rtcp attribute addresses say ``address`` (a media relay
        rewriting a description to itself). Hold addresses stay, as in
        :meth:`MediaDescription.with_connection_address`; o= is the author's identity and stays."""
        connection = self.connection
        if connection is not None and not connection.is_hold:
            connection = Connection.for_address(address)
        elif connection is None and not all(m.connections for m in self.media):
            connection = Connection.for_address(address)  # an m= section relied on none
        media = tuple(
            m.with_connection_address(address) if m.connections else m._with_rtcp_address(address)
            for m in self.media
        )
        return replace(self, connection=connection, media=media)

    def with_media_ports(self, ports: Sequence[int]) -> SessionDescription:
        """A copy with one new port per m= line (see :meth:`MediaDescription.with_port`); a
        rejected stream (port 0) stays rejected."""
        if len(ports) != len(self.media):
            raise ValueError(f"{len(ports)} ports for {len(self.media)} m= lines")
        media = tuple(
            m if m.port == 0 else m.with_port(port)
            for m, port in zip(self.media, ports, strict=True)
        )
        return replace(self, media=media)


# -- serializing helpers -------------------------------------------------------
def _add(lines: list[str], kind: str, value: object) -> None:
    if value is not None:
        lines.append(f"{kind}={value}")


def _media_lines(media: MediaDescription) -> list[str]:
    count = "" if media.port_count is None else f"/{media.port_count}"
    fmt = "".join(f" {f}" for f in media.formats)
    lines = [f"m={media.media_type} {media.port}{count} {media.proto}{fmt}"]
    _add(lines, "i", media.information)
    lines += [f"c={c}" for c in media.connections] + [f"b={b}" for b in media.bandwidths]
    _add(lines, "k", media.key)
    return lines + [f"a={a}" for a in media.attributes] + list(media.unknown_lines)


# -- parsing -----------------------------------------------------------------------
def parse(data: str | bytes) -> SessionDescription:
    """Parse an SDP body; :class:`SipParseError` (400) for anything malformed, never another
    exception. Bytes are read as UTF-8, the default charset (RFC 8866 §6.10); bytes that are not
    UTF-8 pass through unchanged (surrogateescape)."""
    if len(data) > MAX_SDP_LENGTH:
        raise parse_error(f"longer than {MAX_SDP_LENGTH} bytes")
    if isinstance(data, bytes):
        text = data.decode("utf-8", "surrogateescape")
    else:
        try:
            data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise parse_error("not UTF-8 text") from None
        text = data
    if text.count("\n") >= MAX_SDP_LINES:
        raise parse_error(f"more than {MAX_SDP_LINES} lines")
    lines = _lines_of(text)
    if not lines or lines[0][0] != "v":
        raise parse_error("missing v= line")
    if lines[0][1] != "0":  # RFC 8866 §5.1: there is no other version
        raise parse_error(f"unsupported version {excerpt('v=' + lines[0][1])}")
    starts = [i for i, (kind, _) in enumerate(lines) if kind == "m"]
    if len(starts) > MAX_MEDIA_SECTIONS:
        raise parse_error(f"more than {MAX_MEDIA_SECTIONS} m= sections")
    ends = [*starts[1:], len(lines)][: len(starts)]
    media = tuple(_parse_media(lines[start:end]) for start, end in zip(starts, ends, strict=True))
    session = _parse_session(lines[1 : starts[0] if starts else len(lines)], media)
    for m in media:  # RFC 8866 §5.7: a c= line at session level or in every m= section
        if m.port != 0 and session.connection_of(m) is None:
            raise parse_error(f"no c= line for {excerpt(_media_lines(m)[0])}")
    return session


def _lines_of(text: str) -> list[tuple[str, str]]:
    """(type, value) pairs; bare LF and trailing blanks are tolerated, blank lines skipped."""
    result: list[tuple[str, str]] = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        match = _LINE_RE.fullmatch(line)
        if match is None:
            raise parse_error(f"bad line {excerpt(line)}")
        kind, value = match[1], match[2]
        if kind not in _TEXT_TYPES:
            value = value.rstrip(" \t")
        if "\r" in value:
            raise parse_error(f"bare CR in line {excerpt(line)}")
        result.append((kind, value))
    return result


class _Once:
    """Collects lines that may appear at most once in a section."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, kind: str, value: str) -> None:
        if kind in self.values:
            raise parse_error(f"more than one {kind}= line")
        self.values[kind] = value


def _parse_session(
    lines: list[tuple[str, str]], media: tuple[MediaDescription, ...]
) -> SessionDescription:
    once = _Once()
    emails: list[str] = []
    phones: list[str] = []
    bandwidths: list[Bandwidth] = []
    timings: list[Timing] = []
    attributes: list[Attribute] = []
    unknown: list[str] = []
    for kind, value in lines:
        if kind in "vosiuczk":
            once.set(kind, value)
        elif kind == "e":
            emails.append(value)
        elif kind == "p":
            phones.append(value)
        elif kind == "b":
            bandwidths.append(parse_bandwidth(value))
        elif kind == "t":
            timings.append(parse_timing(value))
        elif kind == "r":
            if not timings:  # RFC 8866 §5.10: repeat times belong to the t= line above
                raise parse_error("r= line without a t= line")
            timings[-1] = replace(timings[-1], repeats=(*timings[-1].repeats, value))
        elif kind == "a":
            attributes.append(parse_attribute(value))
        else:
            unknown.append(f"{kind}={value}")
    found = once.values
    if "v" in found:
        raise parse_error("more than one v= line")
    if "o" not in found:
        raise parse_error("missing o= line")
    check_direction(attributes)
    connection = found.get("c")
    return SessionDescription(
        origin=parse_origin(found["o"]),
        session_name=found.get("s", "-"),  # lenient: some phones leave s= out
        information=found.get("i"),
        uri=found.get("u"),
        emails=tuple(emails),
        phones=tuple(phones),
        connection=None if connection is None else parse_connection_line(connection),
        bandwidths=tuple(bandwidths),
        timings=tuple(timings) or (Timing(),),  # lenient: some phones leave t= out
        time_zones=found.get("z"),
        key=found.get("k"),
        attributes=tuple(attributes),
        unknown_lines=tuple(unknown),
        media=media,
    )


def _parse_media(lines: list[tuple[str, str]]) -> MediaDescription:
    m_line = f"m={lines[0][1]}"
    parts = lines[0][1].split()
    port = _PORT_RE.fullmatch(parts[1]) if len(parts) >= 3 else None
    if port is None or int(port[1]) > 65535 or (port[2] is not None and int(port[2]) == 0):
        raise parse_error(f"bad m= line {excerpt(m_line)}")
    media_type, proto, formats = parts[0], parts[2], tuple(parts[3:])
    if len(formats) > MAX_FORMATS:
        raise parse_error(f"more than {MAX_FORMATS} formats in {excerpt(m_line)}")
    if "RTP/" in proto.upper() and any(parse_payload_type(f) is None for f in formats):
        raise parse_error(f"bad m= line {excerpt(m_line)}")
    once = _Once()
    connections: list[Connection] = []
    bandwidths: list[Bandwidth] = []
    attributes: list[Attribute] = []
    unknown: list[str] = []
    for kind, value in lines[1:]:
        if kind in "ik":
            once.set(kind, value)
        elif kind == "c":
            connections.append(parse_connection_line(value))
        elif kind == "b":
            bandwidths.append(parse_bandwidth(value))
        elif kind == "a":
            attributes.append(parse_attribute(value))
        elif kind in _SESSION_TYPES:
            raise parse_error(f"{kind}= line inside {excerpt(m_line)}")
        else:
            unknown.append(f"{kind}={value}")
    check_direction(attributes)
    if "RTP/" in proto.upper():
        check_rtp_attributes(attributes)
    return MediaDescription(
        media_type=media_type,
        port=int(port[1]),
        port_count=None if port[2] is None else int(port[2]),
        proto=proto,
        formats=formats,
        information=once.values.get("i"),
        connections=tuple(connections),
        bandwidths=tuple(bandwidths),
        key=once.values.get("k"),
        attributes=tuple(attributes),
        unknown_lines=tuple(unknown),
    )
