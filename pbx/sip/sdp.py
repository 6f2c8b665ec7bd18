"""SDP session descriptions (RFC 8866) and the offer/answer rules (RFC 3264) the media server needs.

:func:`parse` turns a body into frozen dataclasses and :meth:`SessionDescription.serialize` (or
``bytes()``) writes it back. Lines the code does not interpret (unknown attributes, unknown line
types) are kept in order, so a well-formed description serializes to the same text and a relay that
rewrites an address passes everything else through. Codecs, direction, ptime and rtcp are computed
from the a= lines on demand, never stored twice where the copies could disagree.

A malformed description raises :class:`~pbx.sip.errors.SipParseError` (status 400). The parser is
lenient where phones are sloppy (bare LF, trailing blanks, no s= or t= line) and strict where
meaning would be lost (a bad m=, c= or o= line, an unreadable rtpmap, two different directions).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from pbx.sip.errors import SipError, SipParseError

# Named limits: a longer body, or one with more lines or m= sections, is refused before any work is
# done on it. A desk phone's offer is under 1 KB and 30 lines.
MAX_SDP_LENGTH = 65_536
MAX_SDP_LINES = 2_048
MAX_MEDIA_SECTIONS = 64
MAX_FORMATS = 128  # per m= line: RTP has 128 payload types
_ERROR_EXCERPT = 60

RTP_AVP = "RTP/AVP"
# RFC 4733 §3.2: events 0-15 are the DTMF digits 0-9 * # A-D, 16 is flash.
DTMF_EVENTS = "0-16"
# RFC 4733 §7.1.1: a telephone-event without an events parameter means 0-15.
_DEFAULT_EVENTS = "0-15"

# RFC 8866 §5: <type>=<value>, the type one case-significant letter
_LINE_RE = re.compile(r"([a-z])=(.*)", re.DOTALL)
_TEXT_TYPES = frozenset("si")  # text fields where a trailing blank is content ("s= ")
_SESSION_TYPES = frozenset("vosiuepcbtrzka")
_MEDIA_TYPES = frozenset("icbka")
_PORT_RE = re.compile(r"([0-9]{1,5})(?:/([0-9]{1,5}))?")
_PAYLOAD_TYPE_RE = re.compile(r"[0-9]{1,3}")
_NUMBER_RE = re.compile(r"[0-9]{1,20}")
_SMALL_NUMBER_RE = re.compile(r"[0-9]{1,5}")
_VERSION_RE = re.compile(r"[0-9]{1,32}")
_BANDWIDTH_RE = re.compile(r"([^:\s]+):([0-9]{1,12})")
# a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]  (RFC 8866 §6.6)
_RTPMAP_RE = re.compile(r"\s*([0-9]{1,3})\s+([^\s/]+)/([0-9]{1,9})(?:/([0-9]{1,3}))?")
_ENCODING_NAME_RE = re.compile(r"[^\s/]+")
# a=fmtp:<format> <format specific parameters>  (RFC 8866 §6.15)
_FMTP_RE = re.compile(r"\s*([0-9]{1,3})(?:\s+(.*))?", re.DOTALL)
# a=ptime:<packet time>, a=maxptime:<maximum packet time>, in ms (RFC 8866 §6.4, §6.5)
_PTIME_RE = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
_EVENT_RANGE_RE = re.compile(r"([0-9]{1,3})(?:-([0-9]{1,3}))?")
_HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})


def _error(reason: str) -> SipParseError:
    return SipParseError(f"SDP: {reason}")


def _excerpt(line: str) -> str:
    """A line as an error reason quotes it: short and printable (the reason goes on the wire)."""
    if len(line) > _ERROR_EXCERPT:
        line = line[: _ERROR_EXCERPT - 3] + "..."
    return "'" + "".join(c if c.isprintable() else "?" for c in line) + "'"


class Direction(StrEnum):
    """The direction attributes (RFC 8866 §6.7), from the point of view of the SDP's author."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @classmethod
    def of(cls, *, sends: bool, receives: bool) -> Direction:
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    def mirrored(self) -> Direction:
        """What the peer must say: sendonly answers recvonly and back (RFC 3264 §6.1)."""
        return Direction.of(sends=self.receives, receives=self.sends)


_DIRECTION_NAMES = frozenset(d.value for d in Direction)


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    """An a= line: ``a=<name>`` (a flag) or ``a=<name>:<value>`` (RFC 8866 §5.13)."""

    name: str
    value: str | None = None

    def __str__(self) -> str:
        return self.name if self.value is None else f"{self.name}:{self.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Connection:
    """A c= line (RFC 8866 §5.7): ``IN IP4 192.0.2.10``; multicast adds ``/ttl`` and ``/count``."""

    network_type: str = "IN"
    address_type: str = "IP4"
    address: str
    ttl: int | None = None  # IP4 multicast only
    address_count: int | None = None

    def __post_init__(self) -> None:
        kind = self.address_type.upper()
        if not self.address or (kind in ("IP4", "IP6") and "/" in self.address):
            raise ValueError(f"bad connection address {self.address!r}")
        if (kind == "IP6" and self.ttl is not None) or (
            kind == "IP4" and self.address_count is not None and self.ttl is None
        ):
            raise ValueError("IP4 multicast is address/ttl[/count], IP6 is address[/count]")

    @classmethod
    def for_address(cls, address: str) -> Connection:
        """``IN IP6`` for an IPv6 literal, ``IN IP4`` for anything else (IPv4 or a host name)."""
        address = address.removeprefix("[").removesuffix("]")
        return cls(address_type="IP6" if ":" in address else "IP4", address=address)

    @property
    def is_hold(self) -> bool:
        """The RFC 2543 way to put a call on hold, still sent by old phones (RFC 3264 §8.4)."""
        return self.address in _HOLD_ADDRESSES

    def __str__(self) -> str:
        suffix = "".join(f"/{n}" for n in (self.ttl, self.address_count) if n is not None)
        return f"{self.network_type} {self.address_type} {self.address}{suffix}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """The o= line (RFC 8866 §5.2): who made the description, and which version of it this is."""

    username: str = "-"
    session_id: str
    session_version: int
    network_type: str = "IN"
    address_type: str = "IP4"
    address: str

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.network_type} {self.address_type} {self.address}"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Bandwidth:
    """A b= line (RFC 8866 §5.8): ``AS:64`` is 64 kbit/s for the application."""

    bandwidth_type: str
    bandwidth: int

    def __str__(self) -> str:
        return f"{self.bandwidth_type}:{self.bandwidth}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Timing:
    """A t= line and its r= lines (RFC 8866 §5.9, §5.10); calls use ``t=0 0`` (unbounded)."""

    start: int = 0
    stop: int = 0
    repeats: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Rtcp:
    """The rtcp attribute (RFC 3605 §2.1): RTCP is not at RTP port + 1, or not at the c= address."""

    port: int
    connection: Connection | None = None

    def __str__(self) -> str:
        return str(self.port) if self.connection is None else f"{self.port} {self.connection}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Codec:
    """An RTP payload format: payload type, rtpmap and fmtp (RFC 8866 §6.6, §6.15)."""

    payload_type: int
    encoding_name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} is not 0-127")
        if self.clock_rate <= 0 or self.channels <= 0:
            raise ValueError("clock rate and channels must be positive")
        if not _ENCODING_NAME_RE.fullmatch(self.encoding_name):
            raise ValueError(f"bad encoding name {self.encoding_name!r}")

    @property
    def rtpmap(self) -> str:
        """The rtpmap value: ``101 telephone-event/8000``, ``96 opus/48000/2``."""
        channels = "" if self.channels == 1 else f"/{self.channels}"
        return f"{self.payload_type} {self.encoding_name}/{self.clock_rate}{channels}"

    @property
    def is_telephone_event(self) -> bool:
        return self.encoding_name.lower() == "telephone-event"

    def same_format(self, other: Codec) -> bool:
        """Same encoding whatever the payload type number (encoding names ignore case)."""
        return (self.encoding_name.lower(), self.clock_rate, self.channels) == (
            other.encoding_name.lower(),
            other.clock_rate,
            other.channels,
        )


def _static(pt: int, name: str, rate: int, channels: int = 1) -> Codec:
    return Codec(payload_type=pt, encoding_name=name, clock_rate=rate, channels=channels)


PCMU = _static(0, "PCMU", 8000)
GSM = _static(3, "GSM", 8000)
PCMA = _static(8, "PCMA", 8000)
# G.722 samples at 16 kHz, but its RTP clock rate is 8000 (RFC 3551 §4.5.2 keeps RFC 1890's error)
G722 = _static(9, "G722", 8000)
CN = _static(13, "CN", 8000)
G729 = _static(18, "G729", 8000)
TELEPHONE_EVENT = Codec(
    payload_type=101, encoding_name="telephone-event", clock_rate=8000, fmtp=DTMF_EVENTS
)

# RFC 3551 §6, tables 4 and 5: payload types whose meaning needs no rtpmap line.
STATIC_CODECS: Mapping[int, Codec] = MappingProxyType(
    {
        c.payload_type: c
        for c in (
            PCMU,
            GSM,
            _static(4, "G723", 8000),
            _static(5, "DVI4", 8000),
            _static(6, "DVI4", 16000),
            _static(7, "LPC", 8000),
            PCMA,
            G722,
            _static(10, "L16", 44100, 2),
            _static(11, "L16", 44100),
            _static(12, "QCELP", 8000),
            CN,
            _static(14, "MPA", 90000),
            _static(15, "G728", 8000),
            _static(16, "DVI4", 11025),
            _static(17, "DVI4", 22050),
            G729,
            _static(25, "CelB", 90000),
            _static(26, "JPEG", 90000),
            _static(28, "nv", 90000),
            _static(31, "H261", 90000),
            _static(32, "MPV", 90000),
            _static(33, "MP2T", 90000),
            _static(34, "H263", 90000),
        )
    }
)


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

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not 0-65535")

    # -- views of the attribute lines ----------------------------------------
    def attribute(self, name: str) -> str | None:
        """The value of the first ``a=<name>`` line ("" for a flag), or None when absent."""
        return _attribute(self.attributes, name)

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
        if not self.is_rtp:
            return ()
        rtpmaps: dict[int, Codec] = {}
        fmtps: dict[int, str] = {}
        for attr in self.attributes:
            name = attr.name.lower()
            if name == "rtpmap" and attr.value is not None:
                codec = _parse_rtpmap(attr.value)
                if codec is not None:
                    rtpmaps.setdefault(codec.payload_type, codec)
            elif name == "fmtp" and attr.value is not None:
                match = _FMTP_RE.fullmatch(attr.value)
                if match and match[2] and match[2].strip():
                    fmtps.setdefault(int(match[1]), match[2].strip())
        result: list[Codec] = []
        for fmt in dict.fromkeys(self.formats):
            pt = _payload_type(fmt)
            base = None if pt is None else rtpmaps.get(pt) or STATIC_CODECS.get(pt)
            if pt is not None and base is not None:
                result.append(replace(base, payload_type=pt, fmtp=fmtps.get(pt)))
        return tuple(result)

    @property
    def direction_attribute(self) -> Direction | None:
        """This section's own direction; see :meth:`SessionDescription.direction_of`."""
        return _direction(self.attributes)

    @property
    def connection(self) -> Connection | None:
        """This section's own (first) c= line; see :meth:`SessionDescription.connection_of`."""
        return self.connections[0] if self.connections else None

    @property
    def ptime(self) -> float | None:
        """Milliseconds of media per packet the author wants to receive (RFC 8866 §6.4)."""
        return _parse_ptime(self.attribute("ptime"))

    @property
    def maxptime(self) -> float | None:
        """The most milliseconds per packet the author can receive (RFC 8866 §6.5)."""
        return _parse_ptime(self.attribute("maxptime"))

    @property
    def rtcp(self) -> Rtcp | None:
        """Where RTCP goes when not to RTP port + 1 at the c= address (RFC 3605)."""
        value = self.attribute("rtcp")
        return None if value is None else _parse_rtcp(value)

    # -- rewriting -----------------------------------------------------------
    def with_port(self, port: int, *, rtcp_port: int | None = None) -> MediaDescription:
        """A copy on ``port``. An rtcp attribute named the old endpoint's RTCP port: it is set to
        ``rtcp_port``, or dropped so RTCP goes to ``port`` + 1 (RFC 3550 §11)."""
        if rtcp_port is None:
            attributes = tuple(a for a in self.attributes if a.name.lower() != "rtcp")
        else:
            old = self.rtcp
            rtcp = Rtcp(port=rtcp_port, connection=None if old is None else old.connection)
            attributes = _set_attribute(self.attributes, Attribute(name="rtcp", value=str(rtcp)))
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
        return replace(self, attributes=_set_attribute(self.attributes, new, _DIRECTION_NAMES))

    def _with_rtcp_address(self, address: str) -> MediaDescription:
        rtcp = self.rtcp
        if rtcp is None or rtcp.connection is None or rtcp.connection.is_hold:
            return self
        moved = Rtcp(port=rtcp.port, connection=Connection.for_address(address))
        new = Attribute(name="rtcp", value=str(moved))
        return replace(self, attributes=_set_attribute(self.attributes, new))


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
        return _direction(self.attributes)

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


def _attribute(attributes: Iterable[Attribute], name: str) -> str | None:
    lname = name.lower()
    for attr in attributes:
        if attr.name.lower() == lname:
            return "" if attr.value is None else attr.value
    return None


def _set_attribute(
    attributes: tuple[Attribute, ...], new: Attribute, names: Iterable[str] = ()
) -> tuple[Attribute, ...]:
    """``new`` in place of the first attribute of its name (or one of ``names``), the others of
    those names dropped; appended when there was none."""
    replaced = frozenset(names) | {new.name.lower()}
    result: list[Attribute] = []
    placed = False
    for attr in attributes:
        if attr.name.lower() not in replaced:
            result.append(attr)
        elif not placed:
            result.append(new)
            placed = True
    if not placed:
        result.append(new)
    return tuple(result)


# -- parsing -----------------------------------------------------------------------
def parse(data: str | bytes) -> SessionDescription:
    """Parse an SDP body; :class:`SipParseError` (400) for anything malformed, never another
    exception. Bytes are read as UTF-8, the default charset (RFC 8866 §6.10); bytes that are not
    UTF-8 pass through unchanged (surrogateescape)."""
    if len(data) > MAX_SDP_LENGTH:
        raise _error(f"longer than {MAX_SDP_LENGTH} bytes")
    if isinstance(data, bytes):
        text = data.decode("utf-8", "surrogateescape")
    else:
        try:
            data.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise _error("not UTF-8 text") from None
        text = data
    if text.count("\n") >= MAX_SDP_LINES:
        raise _error(f"more than {MAX_SDP_LINES} lines")
    lines = _lines_of(text)
    if not lines or lines[0][0] != "v":
        raise _error("missing v= line")
    if lines[0][1] != "0":  # RFC 8866 §5.1: there is no other version
        raise _error(f"unsupported version {_excerpt('v=' + lines[0][1])}")
    starts = [i for i, (kind, _) in enumerate(lines) if kind == "m"]
    if len(starts) > MAX_MEDIA_SECTIONS:
        raise _error(f"more than {MAX_MEDIA_SECTIONS} m= sections")
    ends = [*starts[1:], len(lines)][: len(starts)]
    media = tuple(_parse_media(lines[start:end]) for start, end in zip(starts, ends, strict=True))
    session = _parse_session(lines[1 : starts[0] if starts else len(lines)], media)
    for m in media:  # RFC 8866 §5.7: a c= line at session level or in every m= section
        if m.port != 0 and session.connection_of(m) is None:
            raise _error(f"no c= line for {_excerpt(_media_lines(m)[0])}")
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
            raise _error(f"bad line {_excerpt(line)}")
        kind, value = match[1], match[2]
        if kind not in _TEXT_TYPES:
            value = value.rstrip(" \t")
        if "\r" in value:
            raise _error(f"bare CR in line {_excerpt(line)}")
        result.append((kind, value))
    return result


class _Once:
    """Collects lines that may appear at most once in a section."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def set(self, kind: str, value: str) -> None:
        if kind in self.values:
            raise _error(f"more than one {kind}= line")
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
            bandwidths.append(_parse_bandwidth(value))
        elif kind == "t":
            timings.append(_parse_timing(value))
        elif kind == "r":
            if not timings:  # RFC 8866 §5.10: repeat times belong to the t= line above
                raise _error("r= line without a t= line")
            timings[-1] = replace(timings[-1], repeats=(*timings[-1].repeats, value))
        elif kind == "a":
            attributes.append(_parse_attribute(value))
        else:
            unknown.append(f"{kind}={value}")
    found = once.values
    if "v" in found:
        raise _error("more than one v= line")
    if "o" not in found:
        raise _error("missing o= line")
    _check_direction(attributes)
    connection = found.get("c")
    return SessionDescription(
        origin=_parse_origin(found["o"]),
        session_name=found.get("s", "-"),  # lenient: some phones leave s= out
        information=found.get("i"),
        uri=found.get("u"),
        emails=tuple(emails),
        phones=tuple(phones),
        connection=None if connection is None else _parse_connection_line(connection),
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
        raise _error(f"bad m= line {_excerpt(m_line)}")
    media_type, proto, formats = parts[0], parts[2], tuple(parts[3:])
    if len(formats) > MAX_FORMATS:
        raise _error(f"more than {MAX_FORMATS} formats in {_excerpt(m_line)}")
    if "RTP/" in proto.upper() and any(_payload_type(f) is None for f in formats):
        raise _error(f"bad m= line {_excerpt(m_line)}")
    once = _Once()
    connections: list[Connection] = []
    bandwidths: list[Bandwidth] = []
    attributes: list[Attribute] = []
    unknown: list[str] = []
    for kind, value in lines[1:]:
        if kind in "ik":
            once.set(kind, value)
        elif kind == "c":
            connections.append(_parse_connection_line(value))
        elif kind == "b":
            bandwidths.append(_parse_bandwidth(value))
        elif kind == "a":
            attributes.append(_parse_attribute(value))
        elif kind in _SESSION_TYPES:
            raise _error(f"{kind}= line inside {_excerpt(m_line)}")
        else:
            unknown.append(f"{kind}={value}")
    _check_direction(attributes)
    if "RTP/" in proto.upper():
        _check_rtp_attributes(attributes)
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


def _parse_origin(value: str) -> Origin:
    # o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
    parts = value.split()
    if len(parts) != 6 or not _VERSION_RE.fullmatch(parts[2]):
        raise _error(f"bad o= line {_excerpt('o=' + value)}")
    username, session_id, version, network_type, address_type, address = parts
    return Origin(
        username=username,
        session_id=session_id,
        session_version=int(version),
        network_type=network_type,
        address_type=address_type,
        address=address,
    )


def _parse_connection_line(value: str) -> Connection:
    connection = _parse_connection(value)
    if connection is None:
        raise _error(f"bad c= line {_excerpt('c=' + value)}")
    return connection


def _parse_connection(value: str) -> Connection | None:
    # c=<nettype> <addrtype> <connection-address>; IP4 multicast <base>/<ttl>[/<count>], IP6
    # multicast <base>[/<count>] (RFC 8866 §5.7); other address types are kept as written.
    parts = value.split()
    if len(parts) != 3:
        return None
    network_type, address_type, address = parts
    kind = address_type.upper()
    ttl = count = None
    if kind in ("IP4", "IP6"):
        address, *suffix = address.split("/")
        if not address or not all(_SMALL_NUMBER_RE.fullmatch(s) for s in suffix):
            return None
        numbers = [int(s) for s in suffix]
        if kind == "IP4" and len(numbers) in (1, 2) and numbers[0] <= 255:
            ttl = numbers[0]
            count = numbers[1] if len(numbers) == 2 else None
        elif kind == "IP6" and len(numbers) == 1:
            count = numbers[0]
        elif numbers:
            return None
    if count == 0:
        return None
    return Connection(
        network_type=network_type,
        address_type=address_type,
        address=address,
        ttl=ttl,
        address_count=count,
    )


def _parse_bandwidth(value: str) -> Bandwidth:
    match = _BANDWIDTH_RE.fullmatch(value)
    if match is None:
        raise _error(f"bad b= line {_excerpt('b=' + value)}")
    return Bandwidth(bandwidth_type=match[1], bandwidth=int(match[2]))


def _parse_timing(value: str) -> Timing:
    parts = value.split()
    if len(parts) != 2 or not all(_NUMBER_RE.fullmatch(p) for p in parts):
        raise _error(f"bad t= line {_excerpt('t=' + value)}")
    return Timing(start=int(parts[0]), stop=int(parts[1]))


def _parse_attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name:
        raise _error(f"bad a= line {_excerpt('a=' + value)}")
    return Attribute(name=name, value=rest if colon else None)


def _direction(attributes: Iterable[Attribute]) -> Direction | None:
    for attr in attributes:
        if attr.name.lower() in _DIRECTION_NAMES:
            return Direction(attr.name.lower())
    return None


def _check_direction(attributes: list[Attribute]) -> None:
    found = {a.name.lower() for a in attributes if a.name.lower() in _DIRECTION_NAMES}
    if len(found) > 1:
        raise _error(f"conflicting direction attributes {', '.join(sorted(found))}")


def _check_rtp_attributes(attributes: list[Attribute]) -> None:
    """Refuse the attributes whose loss would change what media flows."""
    rtpmaps: dict[int, Codec] = {}
    for attr in attributes:
        name, value = attr.name.lower(), attr.value or ""
        line = _excerpt(f"a={attr}")
        if name == "rtpmap":
            codec = _parse_rtpmap(value)
            if codec is None:
                raise _error(f"bad rtpmap {line}")
            if rtpmaps.setdefault(codec.payload_type, codec) != codec:
                raise _error(f"two rtpmaps for payload type {codec.payload_type}")
        elif name in ("ptime", "maxptime") and _parse_ptime(value) is None:
            raise _error(f"bad {name} {line}")
        elif name == "rtcp" and _parse_rtcp(value) is None:
            raise _error(f"bad rtcp attribute {line}")


def _payload_type(fmt: str) -> int | None:
    if _PAYLOAD_TYPE_RE.fullmatch(fmt) and int(fmt) <= 127:
        return int(fmt)
    return None


def _parse_rtpmap(value: str) -> Codec | None:
    match = _RTPMAP_RE.fullmatch(value)
    if match is None:
        return None
    pt, rate, channels = int(match[1]), int(match[3]), int(match[4] or 1)
    if pt > 127 or rate == 0 or channels == 0:
        return None
    return Codec(payload_type=pt, encoding_name=match[2], clock_rate=rate, channels=channels)


def _parse_ptime(value: str | None) -> float | None:
    if value is None or not _PTIME_RE.fullmatch(value):
        return None
    return float(value)


def _parse_rtcp(value: str) -> Rtcp | None:
    # rtcp-attribute = "a=rtcp:" port [nettype space addrtype space connection-address]
    port, *address = value.split(None, 1) or [""]
    if not _SMALL_NUMBER_RE.fullmatch(port) or int(port) > 65535:
        return None
    connection = _parse_connection(address[0]) if address else None
    if address and connection is None:
        return None
    return Rtcp(port=int(port), connection=connection)


# -- offer/answer (RFC 3264) ---------------------------------------------------------
def make_offer(
    *,
    codecs: Sequence[Codec],
    address: str,
    port: int,
    session_id: str,
    session_version: int,
    telephone_event: Codec | None = TELEPHONE_EVENT,
    ptime: int | None = 20,
    direction: Direction = Direction.SENDRECV,
    username: str = "-",
) -> SessionDescription:
    """An offer of one audio stream, ``codecs`` in preference order (RFC 3264 §5.1), each with
    an rtpmap (required for dynamic types, recommended for static ones)."""
    offered = [*codecs, telephone_event] if telephone_event else list(codecs)
    if not codecs or len({c.payload_type for c in offered}) != len(offered):
        raise ValueError("an offer needs codecs with distinct payload types")
    attributes = [Attribute(name=d, value=v) for c in offered for d, v in _codec_lines(c)]
    if ptime is not None:
        attributes.append(Attribute(name="ptime", value=str(ptime)))
    attributes.append(Attribute(name=direction.value))
    media = MediaDescription(
        media_type="audio",
        port=port,
        formats=tuple(str(c.payload_type) for c in offered),
        attributes=tuple(attributes),
    )
    return _description(address, session_id, session_version, username, (media,))


def answer_for(
    offer: SessionDescription,
    *,
    supported: Sequence[Codec],
    telephone_event: bool,
    address: str,
    ports: Sequence[int],
    session_id: str,
    session_version: int,
    username: str = "-",
) -> SessionDescription:
    """The answer to ``offer`` (RFC 3264 §6): one m= line per offered one, in the same order.

    ``ports`` has one entry per offered m= line (0 refuses that stream). ``supported`` are the
    codecs the media server handles, matched by encoding name, clock rate and channels (its
    telephone-event entries are ignored: ``telephone_event`` decides). An accepted stream lists
    the offer's supported codecs in the offer's order with the offer's payload types and fmtp,
    plus telephone-event at a clock rate in use. Every port 0 means nothing was acceptable: answer
    the INVITE with 488 instead (RFC 3261 §13.3.1.1).
    """
    if len(ports) != len(offer.media):
        raise ValueError(f"{len(ports)} ports for {len(offer.media)} m= lines")
    media = tuple(
        _answer_media(offer, offered, port, supported, telephone_event)
        for offered, port in zip(offer.media, ports, strict=True)
    )
    return _description(address, session_id, session_version, username, media)


def negotiated_codecs(
    offer: SessionDescription, answer: SessionDescription
) -> tuple[tuple[Codec, ...], ...]:
    """Per m= line, the answer's codecs that the offer also listed: what may flow (RFC 3264 §7).

    Payload types are the answer's; () for a rejected stream. An answer with a different number
    of m= lines breaks RFC 3264 §6 and raises :class:`SipError`.
    """
    if len(answer.media) != len(offer.media):
        raise SipError(
            f"SDP: answer has {len(answer.media)} m= lines, offer has {len(offer.media)}"
        )
    result: list[tuple[Codec, ...]] = []
    for offered, answered in zip(offer.media, answer.media, strict=True):
        offered_codecs = offered.codecs if offered.port and answered.port else ()
        result.append(
            tuple(c for c in answered.codecs if any(c.same_format(o) for o in offered_codecs))
        )
    return tuple(result)


def _description(
    address: str,
    session_id: str,
    session_version: int,
    username: str,
    media: tuple[MediaDescription, ...],
) -> SessionDescription:
    connection = Connection.for_address(address)
    origin = Origin(
        username=username,
        session_id=session_id,
        session_version=session_version,
        address_type=connection.address_type,
        address=connection.address,
    )
    return SessionDescription(origin=origin, connection=connection, media=media)


def _codec_lines(codec: Codec) -> list[tuple[str, str]]:
    lines = [("rtpmap", codec.rtpmap)]
    if codec.fmtp is not None:
        lines.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    return lines


def _is_voice(codec: Codec) -> bool:
    """A codec that carries the call's audio, not only digits or comfort noise (RFC 3389)."""
    return codec.encoding_name.lower() not in ("telephone-event", "cn")


def _answer_media(
    offer: SessionDescription,
    offered: MediaDescription,
    port: int,
    supported: Sequence[Codec],
    telephone_event: bool,
) -> MediaDescription:
    codecs: list[Codec] = []
    # Only plain RTP audio: video, T.38 (udptl), SRTP and AVPF are refused (RFC 3264 §6).
    if (
        port
        and offered.port
        and offered.media_type.lower() == "audio"
        and offered.proto.upper() == RTP_AVP
    ):
        local = [s for s in supported if not s.is_telephone_event]
        # RFC 3264 §6.1: keep the offer's order and payload type numbers, so both directions
        # use the same codec; the fmtp that configures a codec is echoed as offered.
        codecs = [c for c in offered.codecs if any(c.same_format(s) for s in local)]
        if telephone_event:
            codecs += _telephone_events(offered.codecs, {c.clock_rate for c in codecs})
    if not any(_is_voice(c) for c in codecs):
        # RFC 3264 §6: a rejected stream keeps its m= line, with port 0
        return MediaDescription(
            media_type=offered.media_type, port=0, proto=offered.proto, formats=offered.formats
        )
    attributes = [Attribute(name=n, value=v) for c in codecs for n, v in _codec_lines(c)]
    ptime = offered.attribute("ptime")
    if ptime is not None:
        attributes.append(Attribute(name="ptime", value=ptime))
    direction = offer.direction_of(offered)
    connection = offer.connection_of(offered)
    if connection is not None and connection.is_hold:  # RFC 3264 §8.4: it receives nothing
        direction = Direction.of(sends=direction.sends, receives=False)
    attributes.append(Attribute(name=direction.mirrored().value))
    return MediaDescription(
        media_type=offered.media_type,
        port=port,
        proto=offered.proto,
        formats=tuple(str(c.payload_type) for c in codecs),
        attributes=tuple(attributes),
    )


def _telephone_events(offered: Iterable[Codec], clock_rates: set[int]) -> list[Codec]:
    """One telephone-event per clock rate in use (RFC 4733 §2.1 ties it to the audio clock),
    listing the DTMF events both sides handle."""
    result: list[Codec] = []
    for codec in offered:
        if codec.is_telephone_event and codec.clock_rate in clock_rates:
            offered_events = _events(codec.fmtp or _DEFAULT_EVENTS)
            common = sorted(offered_events & _events(DTMF_EVENTS))
            if common:
                result.append(replace(codec, fmtp=_event_ranges(common)))
                clock_rates = clock_rates - {codec.clock_rate}
    return result


def _events(text: str) -> set[int]:
    """The events of an RFC 4733 events list (``0-15,66,70``); nothing for a malformed one."""
    events: set[int] = set()
    for item in text.replace(" ", "").split(","):
        match = _EVENT_RANGE_RE.fullmatch(item)
        if match is None:
            return set()
        first, last = int(match[1]), int(match[2] or match[1])
        events.update(range(first, min(last, 255) + 1))
    return events


def _event_ranges(events: list[int]) -> str:
    ranges: list[list[int]] = []
    for event in events:
        if ranges and ranges[-1][1] == event - 1:
            ranges[-1][1] = event
        else:
            ranges.append([event, event])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
