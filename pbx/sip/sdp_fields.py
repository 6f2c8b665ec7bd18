"""The values of SDP lines (RFC 8866 §5, §6): one frozen dataclass per kind of line, the
attributes the switch reads (direction, rtpmap, fmtp, ptime, maxptime, rtcp) and the RTP payload
formats they describe, with the static ones of RFC 3551.

Each ``parse_*`` reads one line's value; the description as a whole (which lines go where, how many
of each) is parsed in :mod:`pbx.sip.sdp`, which re-exports every public value type of this module.
A malformed value raises :class:`~pbx.sip.errors.SipParseError` (status 400) or, for the readers
that views call on demand, gives None.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from pbx.sip.errors import SipParseError

_ERROR_EXCERPT = 60

# RFC 4733 §3.2: events 0-15 are the DTMF digits 0-9 * # A-D, 16 is flash.
DTMF_EVENTS = "0-16"

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
_HOLD_ADDRESSES = frozenset({"0.0.0.0", "::"})


def parse_error(reason: str) -> SipParseError:
    return SipParseError(f"SDP: {reason}")


def excerpt(line: str) -> str:
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


DIRECTION_NAMES = frozenset(d.value for d in Direction)


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


# -- reading attribute lines ----------------------------------------------------------
def find_attribute(attributes: Iterable[Attribute], name: str) -> str | None:
    lname = name.lower()
    for attr in attributes:
        if attr.name.lower() == lname:
            return "" if attr.value is None else attr.value
    return None


def set_attribute(
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


def find_direction(attributes: Iterable[Attribute]) -> Direction | None:
    for attr in attributes:
        if attr.name.lower() in DIRECTION_NAMES:
            return Direction(attr.name.lower())
    return None


def codecs_of(formats: Iterable[str], attributes: Iterable[Attribute]) -> tuple[Codec, ...]:
    """The RTP payload formats of an m= line's ``formats``, in that order, read from its rtpmap
    and fmtp lines; see :attr:`pbx.sip.sdp.MediaDescription.codecs`."""
    rtpmaps: dict[int, Codec] = {}
    fmtps: dict[int, str] = {}
    for attr in attributes:
        name = attr.name.lower()
        if name == "rtpmap" and attr.value is not None:
            codec = parse_rtpmap(attr.value)
            if codec is not None:
                rtpmaps.setdefault(codec.payload_type, codec)
        elif name == "fmtp" and attr.value is not None:
            match = _FMTP_RE.fullmatch(attr.value)
            if match and match[2] and match[2].strip():
                fmtps.setdefault(int(match[1]), match[2].strip())
    result: list[Codec] = []
    for fmt in dict.fromkeys(formats):
        pt = parse_payload_type(fmt)
        base = None if pt is None else rtpmaps.get(pt) or STATIC_CODECS.get(pt)
        if pt is not None and base is not None:
            result.append(replace(base, payload_type=pt, fmtp=fmtps.get(pt)))
    return tuple(result)


# -- parsing one line's value -----------------------------------------------------------
def parse_origin(value: str) -> Origin:
    # o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
    parts = value.split()
    if len(parts) != 6 or not _VERSION_RE.fullmatch(parts[2]):
        raise parse_error(f"bad o= line {excerpt('o=' + value)}")
    username, session_id, version, network_type, address_type, address = parts
    return Origin(
        username=username,
        session_id=session_id,
        session_version=int(version),
        network_type=network_type,
        address_type=address_type,
        address=address,
    )


def parse_connection_line(value: str) -> Connection:
    connection = parse_connection(value)
    if connection is None:
        raise parse_error(f"bad c= line {excerpt('c=' + value)}")
    return connection


def parse_connection(value: str) -> Connection | None:
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


def parse_bandwidth(value: str) -> Bandwidth:
    match = _BANDWIDTH_RE.fullmatch(value)
    if match is None:
        raise parse_error(f"bad b= line {excerpt('b=' + value)}")
    return Bandwidth(bandwidth_type=match[1], bandwidth=int(match[2]))


def parse_timing(value: str) -> Timing:
    parts = value.split()
    if len(parts) != 2 or not all(_NUMBER_RE.fullmatch(p) for p in parts):
        raise parse_error(f"bad t= line {excerpt('t=' + value)}")
    return Timing(start=int(parts[0]), stop=int(parts[1]))


def parse_attribute(value: str) -> Attribute:
    name, colon, rest = value.partition(":")
    if not name:
        raise parse_error(f"bad a= line {excerpt('a=' + value)}")
    return Attribute(name=name, value=rest if colon else None)


def check_direction(attributes: list[Attribute]) -> None:
    found = {a.name.lower() for a in attributes if a.name.lower() in DIRECTION_NAMES}
    if len(found) > 1:
        raise parse_error(f"conflicting direction attributes {', '.join(sorted(found))}")


def check_rtp_attributes(attributes: list[Attribute]) -> None:
    """Refuse the attributes whose loss would change what media flows."""
    rtpmaps: dict[int, Codec] = {}
    for attr in attributes:
        name, value = attr.name.lower(), attr.value or ""
        # (The excerpt is made only for an error: valid SDP is the hot path.)
        if name == "rtpmap":
            codec = parse_rtpmap(value)
            if codec is None:
                raise parse_error(f"bad rtpmap {excerpt(f'a={attr}')}")
            if rtpmaps.setdefault(codec.payload_type, codec) != codec:
                raise parse_error(f"two rtpmaps for payload type {codec.payload_type}")
        elif name in ("ptime", "maxptime") and parse_ptime(value) is None:
            raise parse_error(f"bad {name} {excerpt(f'a={attr}')}")
        elif name == "rtcp" and parse_rtcp(value) is None:
            raise parse_error(f"bad rtcp attribute {excerpt(f'a={attr}')}")


def parse_payload_type(fmt: str) -> int | None:
    if _PAYLOAD_TYPE_RE.fullmatch(fmt) and int(fmt) <= 127:
        return int(fmt)
    return None


def parse_rtpmap(value: str) -> Codec | None:
    match = _RTPMAP_RE.fullmatch(value)
    if match is None:
        return None
    pt, rate, channels = int(match[1]), int(match[3]), int(match[4] or 1)
    if pt > 127 or rate == 0 or channels == 0:
        return None
    return Codec(payload_type=pt, encoding_name=match[2], clock_rate=rate, channels=channels)


def parse_ptime(value: str | None) -> float | None:
    if value is None or not _PTIME_RE.fullmatch(value):
        return None
    return float(value)


def parse_rtcp(value: str) -> Rtcp | None:
    # rtcp-attribute = "a=rtcp:" port [nettype space addrtype space connection-address]
    port, *address = value.split(None, 1) or [""]
    if not _SMALL_NUMBER_RE.fullmatch(port) or int(port) > 65535:
        return None
    connection = parse_connection(address[0]) if address else None
    if address and connection is None:
        return None
    return Rtcp(port=int(port), connection=connection)
