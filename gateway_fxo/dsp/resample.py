"""Sample-rate conversion to 8 kHz (or any rate): polyphase windowed-sinc interpolation.

For rates L/M in lowest terms each output sample is a dot product of the input around its time
with one of L precomputed phases of a Kaiser-windowed sinc, cut off just under the lower Nyquist
frequency so nothing above 4 kHz folds into the telephone band.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, as_samples

ZERO_CROSSINGS = 16  # sinc lobes kept on each side (at the lower of the two rates)
PASSBAND = 0.92  # cutoff as a fraction of the lower Nyquist frequency (3.68 kHz for 8 kHz)
KAISER_BETA = 8.6  # about 80 dB of stopband
MAX_PHASES = 4096
CHUNK = 8192  # output samples per gather, to bound memory


def _kaiser(t: Samples) -> Samples:
    """The Kaiser window on [-1, 1], zero outside."""
    inside = np.clip(1.0 - t * t, 0.0, None)
    result: Samples = np.where(
        np.abs(t) <= 1.0, np.i0(KAISER_BETA * np.sqrt(inside)) / np.i0(KAISER_BETA), 0.0
    )
    return result


def resample(samples: npt.ArrayLike, rate_in: int, rate_out: int = SAMPLE_RATE) -> Samples:
    """`samples` at `rate_in` Hz, converted to `rate_out` Hz."""
    x = as_samples(samples)
    if rate_in <= 0 or rate_out <= 0:
        raise ValueError("sample rates must be positive")
    if rate_in == rate_out or x.size == 0:
        return x.copy()
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    if up > MAX_PHASES:
        raise ValueError(f"rate ratio {rate_out}/{rate_in} needs too many filter phases")
    cutoff = PASSBAND * min(1.0, rate_out / rate_in)  # of the input Nyquist frequency
    half = math.ceil(ZERO_CROSSINGS / cutoff)  # taps each side, in input samples
    j = np.arange(-half + 1, half + 1, dtype=np.float64)
    phases = np.arange(up, dtype=np.float64)[:, np.newaxis] / up
    tau = phases - j[np.newaxis, :]  # output time minus input sample time
    table = cutoff * np.sinc(cutoff * tau) * _kaiser(tau / half)
    count = math.ceil(x.size * up / down)
    padded = np.concatenate((np.zeros(half), x, np.zeros(half + 1)))
    offsets = (j + half).astype(np.int64)
    out = np.empty(count, dtype=np.float64)
    for first in range(0, count, CHUNK):
        m = np.arange(first, min(count, first + CHUNK), dtype=np.int64)
        base = (m * down) // up
        phase = (m * down) % up
        taps = padded[base[:, np.newaxis] + offsets[np.newaxis, :]]
        out[first : first + m.size] = np.einsum("ij,ij->i", taps, table[phase])
    return out
