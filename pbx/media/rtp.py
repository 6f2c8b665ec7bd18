"""RTP data packets (RFC 3550 §5.1) and the serial-number arithmetic of their counters.

Two ways in. :class:`RtpPacket` is the whole packet as a value (``parse``/``bytes``) for tests,
recordings and anything that is not in a hurry. The relay's hot path must not build an object
per packet, so the functions below read and patch the fixed header of a ``bytes``/``bytearray``
in place with :mod:`struct`.

Pure: no I/O, clock or randomness.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

RTP_VERSION = 2
FIXED_HEADER_SIZE = 12
"""RFC 3550 §5.1: V, P, X, CC, M, PT, sequence number, timestamp and SSRC."""
MAX_CSRC = 15
"""RFC 3550 §5.1: CC is four bits."""
MAX_PACKET_SIZE = 65535
"""A UDP payload cannot be longer; nothing larger is an RTP packet we could have received."""
SEQUENCE_MODULUS = 1 << 16
TIMESTAMP_MODULUS = 1 << 32

_FIXED = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")
_EXTENSION_HEADER = struct.Struct("!HH")
_WORD = struct.Struct("!I")


class RtpError(ValueError):
    """Bytes that are not an RTP packet (the one error :func:`RtpPacket.parse` raises)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HeaderExtension:
    """RFC 3550 §5.3.1: a 16-bit profile-defined value and data in whole 32-bit words."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile {self.profile} is not 16 bits")
        if len(self.data) % 4 or len(self.data) > 4 * 0xFFFF:
            raise ValueError("extension data must be whole 32-bit words (at most 65535)")


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP data packet. ``padding`` counts the padding octets including the final count
    octet (RFC 3550 §5.1, P bit); serializing writes zeros before that count."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    payload: bytes = b""
    padding: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} is not 7 bits")
        if not 0 <= self.sequence_number < SEQUENCE_MODULUS:
            raise ValueError(f"sequence number {self.sequence_number} is not 16 bits")
        if not 0 <= self.timestamp < TIMESTAMP_MODULUS:
            raise ValueError(f"timestamp {self.timestamp} is not 32 bits")
        if not 0 <= self.ssrc < TIMESTAMP_MODULUS:
            raise ValueError(f"SSRC {self.ssrc} is not 32 bits")
        if len(self.csrc) > MAX_CSRC or not all(0 <= c < TIMESTAMP_MODULUS for c in self.csrc):
            raise ValueError("at most 15 CSRCs of 32 bits each")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding {self.padding} does not fit its count octet")

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> RtpPacket:
        """The packet in ``data``, or :class:`RtpError`; any bytes give one or the other."""
        data = bytes(data)
        size = len(data)
        if size > MAX_PACKET_SIZE:
            raise RtpError(f"{size} bytes is longer than any UDP payload")
        if size < FIXED_HEADER_SIZE:
            raise RtpError(f"{size} bytes is shorter than the 12-byte RTP header")
        first, second, sequence_number, timestamp, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected 2")
        offset = FIXED_HEADER_SIZE
        # §5.1: "CC: The CSRC count contains the number of CSRC identifiers that follow
        # the fixed header."
        csrc_count = first & 0x0F
        if size < offset + 4 * csrc_count:
            raise RtpError(f"{csrc_count} CSRCs do not fit in {size} bytes")
        csrc = struct.unpack_from(f"!{csrc_count}I", data, offset)
        offset += 4 * csrc_count
        extension = None
        if first & 0x10:
            # §5.3.1: "a 16-bit length field that counts the number of 32-bit words in the
            # extension, excluding the four-octet extension header"
            if size < offset + 4:
                raise RtpError("the X bit is set but the extension header is missing")
            profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
            offset += 4
            if size < offset + 4 * words:
                raise RtpError(f"a {words}-word header extension does not fit")
            extension = HeaderExtension(profile=profile, data=data[offset : offset + 4 * words])
            offset += 4 * words
        end = size
        padding = 0
        if first & 0x20:
            # §5.1: "The last octet of the padding contains a count of how many padding
            # octets should be ignored, including itself."
            padding = data[-1]
            if padding == 0 or offset + padding > size:
                raise RtpError(f"padding count {padding} does not fit the packet")
            end -= padding
        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            marker=bool(second & 0x80),
            csrc=tuple(csrc),
            extension=extension,
            payload=data[offset:end],
            padding=padding,
        )

    def __bytes__(self) -> bytes:
        first = RTP_VERSION << 6 | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        parts = [
            _FIXED.pack(
                first,
                self.payload_type | (0x80 if self.marker else 0),
                self.sequence_number,
                self.timestamp,
                self.ssrc,
            ),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension is not None:
            words = len(self.extension.data) // 4
            parts += [_EXTENSION_HEADER.pack(self.extension.profile, words), self.extension.data]
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)


# --- the relay's fast path: fields of a packet in a buffer, no objects -----------------------


def is_rtp(data: bytes | bytearray) -> bool:
    """Cheap RFC 3550 §5.1 check: at least a fixed header, and version 2."""
    return len(data) >= FIXED_HEADER_SIZE and data[0] >> 6 == RTP_VERSION


def payload_type_of(data: bytes | bytearray) -> int:
    return data[1] & 0x7F


def fields_of(data: bytes | bytearray) -> tuple[int, int, int]:
    """(sequence number, timestamp, SSRC) of a packet with at least a fixed header."""
    sequence_number, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
    return sequence_number, timestamp, ssrc


def ssrc_of(data: bytes | bytearray) -> int:
    ssrc: int = _WORD.unpack_from(data, 8)[0]
    return ssrc


def set_fields(buffer: bytearray, sequence_number: int, timestamp: int, ssrc: int) -> None:
    """Overwrite sequence number, timestamp and SSRC in place (values already in range)."""
    _SEQ_TS_SSRC.pack_into(buffer, 2, sequence_number, timestamp, ssrc)


def set_payload_type(buffer: bytearray, payload_type: int) -> None:
    """Overwrite PT in place, keeping the marker bit."""
    buffer[1] = (buffer[1] & 0x80) | payload_type


def payload_bounds(data: bytes | bytearray) -> tuple[int, int]:
    """(start, end) of the payload: after CSRCs and the extension, before any padding.

    Raises :class:`RtpError` when the header's counts do not fit the packet.
    """
    size = len(data)
    if size < FIXED_HEADER_SIZE or data[0] >> 6 != RTP_VERSION:
        raise RtpError("not an RTP version 2 packet")
    first = data[0]
    if first & 0x3F == 0:  # no padding, no extension, no CSRC: the usual case
        return FIXED_HEADER_SIZE, size
    start = FIXED_HEADER_SIZE + 4 * (first & 0x0F)
    if first & 0x10:
        if size < start + 4:
            raise RtpError("the X bit is set but the extension header is missing")
        start += 4 + 4 * _EXTENSION_HEADER.unpack_from(data, start)[1]
    end = size
    if first & 0x20:
        padding = data[-1]
        if padding == 0:
            raise RtpError("padding count 0")
        end -= padding
    if start > end:
        raise RtpError("the header counts do not fit the packet")
    return start, end


# --- serial-number arithmetic (RFC 1982 §3) ---------------------------------------------------


def serial_diff(a: int, b: int, bits: int) -> int:
    """``a - b`` as the shortest signed distance on a ``bits``-bit circle, in
    [-2^(bits-1), 2^(bits-1)): how far ``a`` is ahead of ``b`` (negative: behind)."""
    half = 1 << (bits - 1)
    return ((a - b + half) & ((1 << bits) - 1)) - half


def serial_lt(a: int, b: int, bits: int) -> bool:
    """RFC 1982 §3.2: i1 < i2 if (i1 < i2 and i2 - i1 < 2^(SERIAL_BITS - 1)) or
    (i1 > i2 and i1 - i2 > 2^(SERIAL_BITS - 1)). Exactly half a circle apart is undefined
    there; here it counts as "not less" in both directions."""
    return -(1 << (bits - 1)) < serial_diff(a, b, bits) < 0


def seq_diff(a: int, b: int) -> int:
    """How many packets sequence number ``a`` is ahead of ``b`` (16 bits, wrapping)."""
    return serial_diff(a, b, 16)


def seq_lt(a: int, b: int) -> bool:
    return serial_lt(a, b, 16)


def seq_add(a: int, n: int) -> int:
    return (a + n) & 0xFFFF


def ts_diff(a: int, b: int) -> int:
    """How many clock ticks timestamp ``a`` is ahead of ``b`` (32 bits, wrapping)."""
    return serial_diff(a, b, 32)


def ts_lt(a: int, b: int) -> bool:
    return serial_lt(a, b, 32)


def ts_add(a: int, n: int) -> int:
    return (a + n) & 0xFFFFFFFF
