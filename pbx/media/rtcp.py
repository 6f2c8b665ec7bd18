"""RTCP compound packets (RFC 3550 §6): sender and receiver reports, source descriptions and
BYE as values; every other packet type (APP, feedback, XR...) kept opaque, byte for byte.

The relay passes RTCP through unchanged and never parses it on its hot path; this is for
statistics, call-quality records and tests. Pure: no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pbx.media.rtp import MAX_PACKET_SIZE, RTP_VERSION

SR = 200
RR = 201
SDES = 202
BYE = 203
APP = 204

MAX_REPORT_BLOCKS = 31
"""RFC 3550 §6.4.1: RC is five bits."""

# RFC 3550 §6.5: SDES item types.
CNAME, NAME, EMAIL, PHONE, LOC, TOOL, NOTE, PRIV = range(1, 9)

_HEADER = struct.Struct("!BBH")
_SENDER_INFO = struct.Struct("!IIIIII")  # SSRC, NTP msw, NTP lsw, RTP ts, packets, octets
_REPORT_BLOCK = struct.Struct("!IIIIII")
_WORD = struct.Struct("!I")


class RtcpError(ValueError):
    """Bytes that are not an RTCP compound packet (the one error :func:`parse_compound` raises)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBlock:
    """RFC 3550 §6.4.1: reception statistics about one source."""

    ssrc: int
    fraction_lost: int
    """Lost fraction since the last report, in 1/256ths."""
    cumulative_lost: int
    """24 bits, signed: duplicates can make it negative (RFC 3550 §6.4.1)."""
    highest_sequence: int
    """Extended highest sequence number received (cycles << 16 | sequence number)."""
    jitter: int
    last_sr: int
    delay_since_last_sr: int

    def __post_init__(self) -> None:
        _check32(self.ssrc, self.highest_sequence, self.jitter, self.last_sr)
        _check32(self.delay_since_last_sr)
        if not 0 <= self.fraction_lost <= 255:
            raise ValueError("fraction lost is 8 bits")
        if not -(1 << 23) <= self.cumulative_lost < 1 << 23:
            raise ValueError("cumulative lost is 24 bits, signed")

    def to_bytes(self) -> bytes:
        lost = self.fraction_lost << 24 | (self.cumulative_lost & 0xFFFFFF)
        return _REPORT_BLOCK.pack(
            self.ssrc,
            lost,
            self.highest_sequence,
            self.jitter,
            self.last_sr,
            self.delay_since_last_sr,
        )

    @classmethod
    def from_bytes(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 1 << 24
        return cls(
            ssrc=ssrc,
            fraction_lost=lost >> 24,
            cumulative_lost=cumulative,
            highest_sequence=highest,
            jitter=jitter,
            last_sr=lsr,
            delay_since_last_sr=dlsr,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderReport:
    """RFC 3550 §6.4.1 (PT 200)."""

    ssrc: int
    ntp_timestamp: int
    """64-bit NTP time: seconds since 1900 in the high 32 bits, the fraction in the low."""
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    """Profile-specific extension (whole 32-bit words), kept as is."""

    def __post_init__(self) -> None:
        _check32(self.ssrc, self.rtp_timestamp, self.packet_count, self.octet_count)
        if not 0 <= self.ntp_timestamp < 1 << 64:
            raise ValueError("NTP timestamp is 64 bits")
        _check_reports(self.reports, self.extension)

    def to_bytes(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc,
            self.ntp_timestamp >> 32,
            self.ntp_timestamp & 0xFFFFFFFF,
            self.rtp_timestamp,
            self.packet_count,
            self.octet_count,
        )
        body += b"".join(r.to_bytes() for r in self.reports) + self.extension
        return _packet(SR, len(self.reports), body)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverReport:
    """RFC 3550 §6.4.2 (PT 201)."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""

    def __post_init__(self) -> None:
        _check32(self.ssrc)
        _check_reports(self.reports, self.extension)

    def to_bytes(self) -> bytes:
        body = _WORD.pack(self.ssrc) + b"".join(r.to_bytes() for r in self.reports)
        return _packet(RR, len(self.reports), body + self.extension)


@dataclass(frozen=True, slots=True, kw_only=True)
class SdesChunk:
    """RFC 3550 §6.5: one source and its items, as (type, value) in order."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        _check32(self.ssrc)
        for kind, value in self.items:
            if not 1 <= kind <= 255 or len(value) > 255:
                raise ValueError("an SDES item has a type 1-255 and at most 255 octets")

    def to_bytes(self) -> bytes:
        body = _WORD.pack(self.ssrc)
        body += b"".join(bytes((kind, len(value))) + value for kind, value in self.items)
        # §6.5: "The list of items in each chunk MUST be terminated by one or more null
        # octets ... followed by as many null octets as needed to reach a 32-bit boundary"
        return body + bytes(4 - len(body) % 4)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDescription:
    """RFC 3550 §6.5 (PT 202)."""

    chunks: tuple[SdesChunk, ...] = ()

    def __post_init__(self) -> None:
        if len(self.chunks) > 31:
            raise ValueError("at most 31 SDES chunks")

    def to_bytes(self) -> bytes:
        return _packet(SDES, len(self.chunks), b"".join(c.to_bytes() for c in self.chunks))


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    """RFC 3550 §6.6 (PT 203): these sources leave, with an optional reason."""

    ssrcs: tuple[int, ...] = ()
    reason: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.ssrcs) > 31:
            raise ValueError("at most 31 sources in a BYE")
        _check32(*self.ssrcs)
        if self.reason is not None and len(self.reason) > 255:
            raise ValueError("a BYE reason has at most 255 octets")

    def to_bytes(self) -> bytes:
        body = b"".join(_WORD.pack(s) for s in self.ssrcs)
        if self.reason is not None:
            reason = bytes((len(self.reason),)) + self.reason
            body += reason + bytes(-len(reason) % 4)
        return _packet(BYE, len(self.ssrcs), body)


@dataclass(frozen=True, slots=True, kw_only=True)
class OpaqueRtcp:
    """Any other packet type (APP, RTPFB, PSFB, XR...): header fields and body as received."""

    packet_type: int
    count: int
    """The 5-bit field after P (RC, SC or FMT, depending on the type)."""
    body: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.packet_type <= 255 or not 0 <= self.count <= 31:
            raise ValueError("packet type is 8 bits, count 5")
        if len(self.body) % 4:
            raise ValueError("an RTCP body is whole 32-bit words")

    def to_bytes(self) -> bytes:
        return _packet(self.packet_type, self.count, self.body)


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | OpaqueRtcp


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpCompound:
    """RFC 3550 §6.1: packets stacked in one datagram. ``padding`` belongs to the last one
    (§6.4.1: "padding should only be applied ... to the last packet")."""

    packets: tuple[RtcpPacket, ...]
    padding: int = 0

    def __post_init__(self) -> None:
        if not self.packets:
            raise ValueError("a compound packet holds at least one packet")
        if self.padding and (self.padding % 4 or self.padding > 252):
            raise ValueError("RTCP padding is whole words, counted in one octet")

    def __bytes__(self) -> bytes:
        parts = [p.to_bytes() for p in self.packets]
        if self.padding:
            last = bytearray(parts[-1])
            last[0] |= 0x20
            last += bytes(self.padding - 1) + bytes((self.padding,))
            _HEADER.pack_into(last, 0, last[0], last[1], len(last) // 4 - 1)
            parts[-1] = bytes(last)
        return b"".join(parts)


def parse_compound(data: bytes | bytearray | memoryview) -> RtcpCompound:
    """The packets in one RTCP datagram, or :class:`RtcpError`; any bytes give one or the
    other (RFC 3550 Appendix A.2's checks, except that the first packet need not be a report:
    RFC 5506 allows reduced-size RTCP)."""
    data = bytes(data)
    size = len(data)
    if size > MAX_PACKET_SIZE:
        raise RtcpError(f"{size} bytes is longer than any UDP payload")
    if size < 4:
        raise RtcpError("shorter than an RTCP header")
    packets: list[RtcpPacket] = []
    padding = 0
    offset = 0
    while offset < size:
        if size - offset < 4:
            raise RtcpError("trailing bytes after the last RTCP packet")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != RTP_VERSION:
            raise RtcpError(f"RTCP version {first >> 6}, expected 2")
        # §6.4.1: "length: The length of this RTCP packet in 32-bit words minus one,
        # including the header and any padding."
        end = offset + 4 * (words + 1)
        if end > size:
            raise RtcpError(f"packet type {packet_type} claims {4 * (words + 1)} bytes")
        body_end = end
        if first & 0x20:
            if end != size:
                raise RtcpError("padding on a packet that is not the last (RFC 3550 §6.4.1)")
            padding = data[end - 1]
            if padding == 0 or padding > end - offset - 4:
                raise RtcpError(f"padding count {padding} does not fit the packet")
            body_end = end - padding
        packets.append(_parse_one(packet_type, first & 0x1F, data[offset + 4 : body_end]))
        offset = end
    try:
        return RtcpCompound(packets=tuple(packets), padding=padding)
    except ValueError as error:
        raise RtcpError(str(error)) from None


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    try:
        if packet_type == SR:
            return _parse_sender_report(count, body)
        if packet_type == RR:
            return _parse_receiver_report(count, body)
        if packet_type == SDES:
            return _parse_sdes(count, body)
        if packet_type == BYE:
            return _parse_bye(count, body)
        return OpaqueRtcp(packet_type=packet_type, count=count, body=body)
    except (ValueError, struct.error) as error:
        raise RtcpError(f"packet type {packet_type}: {error}") from None


def _parse_sender_report(count: int, body: bytes) -> SenderReport:
    reports_end = _SENDER_INFO.size + _REPORT_BLOCK.size * count
    if len(body) < reports_end or len(body) % 4:
        raise RtcpError(f"SR with {count} report blocks does not fit {len(body)} bytes")
    ssrc, msw, lsw, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
    return SenderReport(
        ssrc=ssrc,
        ntp_timestamp=msw << 32 | lsw,
        rtp_timestamp=rtp_ts,
        packet_count=packets,
        octet_count=octets,
        reports=_report_blocks(body, _SENDER_INFO.size, count),
        extension=body[reports_end:],
    )


def _parse_receiver_report(count: int, body: bytes) -> ReceiverReport:
    reports_end = 4 + _REPORT_BLOCK.size * count
    if len(body) < reports_end or len(body) % 4:
        raise RtcpError(f"RR with {count} report blocks does not fit {len(body)} bytes")
    return ReceiverReport(
        ssrc=_WORD.unpack_from(body)[0],
        reports=_report_blocks(body, 4, count),
        extension=body[reports_end:],
    )


def _report_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    return tuple(
        ReportBlock.from_bytes(body, offset + i * _REPORT_BLOCK.size) for i in range(count)
    )


def _parse_sdes(count: int, body: bytes) -> SourceDescription:
    chunks: list[SdesChunk] = []
    offset = 0
    for _ in range(count):
        if len(body) - offset < 4:
            raise RtcpError("SDES chunk without its SSRC")
        ssrc = _WORD.unpack_from(body, offset)[0]
        offset += 4
        items: list[tuple[int, bytes]] = []
        while True:
            if offset >= len(body):
                raise RtcpError("SDES chunk without its null terminator")
            kind = body[offset]
            if kind == 0:  # the end of the item list, then pad to a 32-bit boundary
                offset += 1
                offset += -offset % 4
                break
            if offset + 2 > len(body) or offset + 2 + body[offset + 1] > len(body):
                raise RtcpError(f"SDES item {kind} runs past the packet")
            length = body[offset + 1]
            items.append((kind, body[offset + 2 : offset + 2 + length]))
            offset += 2 + length
        chunks.append(SdesChunk(ssrc=ssrc, items=tuple(items)))
    if offset > len(body) or any(body[offset:]):
        raise RtcpError("bytes after the last SDES chunk")
    return SourceDescription(chunks=tuple(chunks))


def _parse_bye(count: int, body: bytes) -> Bye:
    if len(body) < 4 * count:
        raise RtcpError(f"BYE with {count} sources does not fit {len(body)} bytes")
    ssrcs = struct.unpack_from(f"!{count}I", body)
    rest = body[4 * count :]
    reason = None
    if rest:
        # §6.6: "an optional length field followed by that many octets of text"
        if 1 + rest[0] > len(rest):
            raise RtcpError("BYE reason runs past the packet")
        reason = rest[1 : 1 + rest[0]]
        if any(rest[1 + rest[0] :]):
            raise RtcpError("bytes after the BYE reason")
    return Bye(ssrcs=tuple(ssrcs), reason=reason)


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    if len(body) % 4:
        raise ValueError("an RTCP body is whole 32-bit words")
    return _HEADER.pack(RTP_VERSION << 6 | count, packet_type, len(body) // 4) + body


def _check32(*values: int) -> None:
    if not all(0 <= v <= 0xFFFFFFFF for v in values):
        raise ValueError("a 32-bit field is out of range")


def _check_reports(reports: tuple[ReportBlock, ...], extension: bytes) -> None:
    if len(reports) > MAX_REPORT_BLOCKS:
        raise ValueError("at most 31 report blocks")
    if len(extension) % 4:
        raise ValueError("a report extension is whole 32-bit words")
