"""G.711 (ITU-T, 11/88): u-law and A-law, and direct u-law <-> A-law transcoding.

``audioop`` left the standard library in Python 3.13, so the tables are ours, computed at
import from the Recommendation's rules. Linear samples are 16-bit signed; G.711 itself works on
14-bit (u-law) and 13-bit (A-law) magnitudes, so encoding drops the 2 or 3 low bits the way
the ITU-T reference code (G.191) does: an arithmetic shift, then sign and magnitude.

The transcoding tables (Tables 3 and 4 of G.711) are 256-byte tables for :meth:`bytes.translate`:
a payload converts in one C call, which is what the relay needs per packet.

Pure: constant tables and functions.
"""

from __future__ import annotations

import array
from collections.abc import Iterable

# --- u-law (G.711 §2, Table 2) ----------------------------------------------------------------

_ULAW_BIAS = 0x84
"""33 in the 14-bit domain (G.711 Table 2a: segment ends at 31, 95, 223, ... = 2^k * 33 - 33),
scaled to 16 bits."""
_ULAW_MAX_MAGNITUDE = 8158
"""The last decision value of u-law (Table 2a: 8159 is the overload point), 14-bit domain."""


def ulaw_decode_sample(code: int) -> int:
    """The 16-bit linear value of one u-law octet (Table 2a/2b decoder output, times 4)."""
    number = ~code & 0xFF  # the character signal is sent with all bits inverted
    segment = (number >> 4) & 0x07
    magnitude = ((((number & 0x0F) << 3) + _ULAW_BIAS) << segment) - _ULAW_BIAS
    return -magnitude if number & 0x80 else magnitude


def ulaw_encode_sample(sample: int) -> int:
    """The u-law octet for one 16-bit linear sample."""
    value = max(-32768, min(32767, sample)) >> 2  # 14-bit, as the reference encoder
    sign = 0x80 if value < 0 else 0x00
    magnitude = min(-value if value < 0 else value, _ULAW_MAX_MAGNITUDE) + (_ULAW_BIAS >> 2)
    # Segment s holds biased magnitudes 2^(s+5) .. 2^(s+6) - 1, in 16 steps of 2^(s+1).
    segment = min(max(magnitude.bit_length() - 6, 0), 7)
    mantissa = (magnitude >> (segment + 1)) & 0x0F
    return ~(sign | segment << 4 | mantissa) & 0xFF


# --- A-law (G.711 §3, Table 1) ----------------------------------------------------------------

_ALAW_EVEN_BITS = 0x55
"""Table 1a, note: "the even bits of the character signal are inverted" on the line."""


def alaw_decode_sample(code: int) -> int:
    """The 16-bit linear value of one A-law octet (Table 1a/1b decoder output, times 8)."""
    number = code ^ _ALAW_EVEN_BITS
    segment = (number >> 4) & 0x07
    mantissa = number & 0x0F
    # Segments 0 and 1 share the finest step; each further segment doubles it.
    base = (mantissa << 4) + (8 if segment == 0 else 0x108)
    magnitude = base << (segment - 1) if segment > 1 else base
    return magnitude if number & 0x80 else -magnitude  # A-law: bit 1 set means positive


def alaw_encode_sample(sample: int) -> int:
    """The A-law octet for one 16-bit linear sample."""
    value = max(-32768, min(32767, sample)) >> 3  # 13-bit, as the reference encoder
    if value >= 0:
        sign, magnitude = 0x80, value
    else:
        # The reference takes the one's complement of a negative value (-1 -> 0): A-law has
        # no zero level, so -1/8 of a step and +1/8 land on the two innermost levels.
        sign, magnitude = 0x00, -value - 1
    magnitude = min(magnitude, 4095)
    if magnitude < 32:
        number = magnitude >> 1  # segments 0 and 1 share the finest step
    else:
        segment = magnitude.bit_length() - 5
        number = segment << 4 | ((magnitude >> segment) & 0x0F)
    return (sign | number) ^ _ALAW_EVEN_BITS


# --- tables, built once at import --------------------------------------------------------------

ULAW_DECODE: tuple[int, ...] = tuple(ulaw_decode_sample(c) for c in range(256))
ALAW_DECODE: tuple[int, ...] = tuple(alaw_decode_sample(c) for c in range(256))

# Encoding depends only on the shifted sample, so one table entry per 14-/13-bit value.
_ULAW_ENCODE = bytes(ulaw_encode_sample(v << 2) for v in range(-(1 << 13), 1 << 13))
_ALAW_ENCODE = bytes(alaw_encode_sample(v << 3) for v in range(-(1 << 12), 1 << 12))


def _ulaw_number(code: int) -> int:
    """Decoder output value number 0..127 of Table 2 (magnitude only)."""
    return ~code & 0x7F


def _alaw_number(code: int) -> int:
    """Decoder output value number 1..128 of Table 1 (magnitude only)."""
    return ((code ^ _ALAW_EVEN_BITS) & 0x7F) + 1


def _ulaw_to_alaw_numbers() -> list[int]:
    """G.711 Table 3: each u-law level, taken to the A-law scale, through the A-law encoder.

    The two laws are aligned at their overload points: +3.17 dBm0 is 8159 u-law units and
    +3.14 dBm0 is 4096 A-law units (G.711 §2 and §3), which in our 16-bit scales (u-law
    times 4, A-law times 8) makes an A-law value 32768/32636 * 10^(0.03/20) times the u-law
    one. Encoding (not rounding to the nearest level) reproduces Table 3 exactly.
    """
    scale = 32768 / 32636 * 10 ** (0.03 / 20)
    numbers = []
    for number in range(128):
        level = ulaw_decode_sample(~number & 0xFF)
        # The decision values are whole numbers: flooring the scaled level decides as exactly
        # as comparing the real number would.
        numbers.append(_alaw_number(alaw_encode_sample(int(level * scale))))
    return numbers


def _alaw_to_ulaw_numbers(ulaw_to_alaw: list[int]) -> list[int]:
    """G.711 Table 4, the inverse of Table 3 that makes double conversion transparent.

    An A-law level that Table 3 reaches goes back to the highest u-law level reaching it (so
    u-law levels 0, 2, ..., 14 come back one higher: note 2 to Table 3). An A-law level that
    Table 3 never reaches (u-law is coarser there) goes where its neighbour differing only in
    the least significant bit goes (note 2 to Table 4: "only bit 8 is changed").
    """
    numbers = []
    for a_number in range(1, 129):
        targets = [n for n, a in enumerate(ulaw_to_alaw) if a == a_number]
        if not targets:
            neighbour = ((a_number - 1) ^ 1) + 1
            targets = [n for n, a in enumerate(ulaw_to_alaw) if a == neighbour]
        numbers.append(max(targets))
    return numbers


def _translation_tables() -> tuple[bytes, bytes]:
    u_to_a = _ulaw_to_alaw_numbers()
    a_to_u = _alaw_to_ulaw_numbers(u_to_a)
    ulaw_to_alaw = bytearray(256)
    for code in range(256):
        positive = bool(code & 0x80)  # u-law: bit 1 set (after inversion, clear) is positive
        a_index = u_to_a[_ulaw_number(code)] - 1
        ulaw_to_alaw[code] = ((0x80 if positive else 0) | a_index) ^ _ALAW_EVEN_BITS
    alaw_to_ulaw = bytearray(256)
    for code in range(256):
        positive = bool((code ^ _ALAW_EVEN_BITS) & 0x80)
        u_number = a_to_u[_alaw_number(code) - 1]
        alaw_to_ulaw[code] = ~((0 if positive else 0x80) | u_number) & 0xFF
    return bytes(ulaw_to_alaw), bytes(alaw_to_ulaw)


ULAW_TO_ALAW, ALAW_TO_ULAW = _translation_tables()
"""``payload.translate(ULAW_TO_ALAW)`` turns a u-law payload into A-law (G.711 Tables 3, 4)."""


# --- whole buffers -----------------------------------------------------------------------------


def ulaw_encode(samples: Iterable[int]) -> bytes:
    """u-law octets for 16-bit samples (values outside int16 saturate)."""
    table = _ULAW_ENCODE
    return bytes(table[(max(-32768, min(32767, s)) >> 2) + (1 << 13)] for s in samples)


def alaw_encode(samples: Iterable[int]) -> bytes:
    """A-law octets for 16-bit samples (values outside int16 saturate)."""
    table = _ALAW_ENCODE
    return bytes(table[(max(-32768, min(32767, s)) >> 3) + (1 << 12)] for s in samples)


def ulaw_decode(data: bytes | bytearray) -> array.array[int]:
    """16-bit samples (``array('h')``) of a u-law payload."""
    return array.array("h", map(ULAW_DECODE.__getitem__, data))


def alaw_decode(data: bytes | bytearray) -> array.array[int]:
    """16-bit samples (``array('h')``) of an A-law payload."""
    return array.array("h", map(ALAW_DECODE.__getitem__, data))


ENCODINGS = ("PCMU", "PCMA")
"""RFC 3551 §4.5.14 encoding names, as they appear in SDP rtpmap."""


def translation(source: str, target: str) -> bytes | None:
    """The :meth:`bytes.translate` table from one G.711 encoding name to another, or None
    when they are the same (nothing to do)."""
    source, target = source.upper(), target.upper()
    if source not in ENCODINGS or target not in ENCODINGS:
        raise ValueError(f"G.711 is PCMU or PCMA, not {source} -> {target}")
    if source == target:
        return None
    return ULAW_TO_ALAW if source == "PCMU" else ALAW_TO_ULAW
