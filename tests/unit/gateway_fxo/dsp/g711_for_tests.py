"""G.711 u-law for the tests' "through the codec" round trips (the segment algorithm).

The switch's own codec will live in pbx/media/g711.py; until it does, the DSP tests use this one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BIAS = 0x84  # 132: shifts every magnitude so the segment is the position of its top bit
CLIP = 32635  # largest magnitude that still fits segment 7 after the bias


def ulaw_encode(samples: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """16-bit linear to u-law bytes (bits inverted as transmitted)."""
    pcm = np.clip(np.rint(np.asarray(samples, dtype=np.float64)), -32768, 32767).astype(np.int32)
    sign = (pcm < 0).astype(np.int32) << 7
    magnitude = np.minimum(np.abs(pcm), CLIP) + BIAS
    # Segment = index of the highest set bit above bit 7 (magnitude is in [132, 32767]).
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (segment + 3)) & 0x0F
    code = ~(sign | (segment << 4) | mantissa) & 0xFF
    result: npt.NDArray[np.uint8] = code.astype(np.uint8)
    return result


def ulaw_decode(codes: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """u-law bytes to 16-bit linear."""
    code = ~np.asarray(codes, dtype=np.int32) & 0xFF
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + BIAS) << segment) - BIAS
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def ulaw_round_trip(samples: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """What the far end hears after one u-law encode and decode."""
    return ulaw_decode(ulaw_encode(samples)).astype(np.float64)
