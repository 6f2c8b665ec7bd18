"""Goertzel tone powers: the DFT at a few chosen (non-integer-bin) frequencies.

The classic recurrence (`goertzel_power`) is here for reference and single tones; the detectors
use `GoertzelBank`, which gives the same numbers for many windows at once as one matrix product,
because in numpy a product beats a per-sample Python loop by orders of magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, as_samples


def goertzel_power(block: npt.ArrayLike, frequency: float, sample_rate: int = SAMPLE_RATE) -> float:
    """Mean power of the `frequency` component of `block`, by the Goertzel recurrence.

    For a sine of peak A at exactly `frequency` this is A**2 / 2, the sine's own mean square.
    """
    samples = as_samples(block)
    n = samples.size
    if n == 0:
        return 0.0
    omega = 2.0 * math.pi * frequency / sample_rate
    coeff = 2.0 * math.cos(omega)
    s_prev = 0.0
    s_prev2 = 0.0
    for x in samples.tolist():
        s = x + coeff * s_prev - s_prev2
        s_prev2 = s_prev
        s_prev = s
    # |X(omega)|^2 from the last two states of the recurrence.
    magnitude2 = s_prev * s_prev + s_prev2 * s_prev2 - coeff * s_prev * s_prev2
    return 2.0 * magnitude2 / (n * n)


class GoertzelBank:
    """Tone powers at fixed frequencies over windows of a fixed length, vectorised."""

    def __init__(
        self, frequencies: Sequence[float], window_length: int, sample_rate: int = SAMPLE_RATE
    ) -> None:
        self.frequencies = tuple(float(f) for f in frequencies)
        self.window_length = window_length
        n = np.arange(window_length, dtype=np.float64)[:, np.newaxis]
        omega = 2.0 * math.pi * np.asarray(self.frequencies, dtype=np.float64) / sample_rate
        self._cos = np.cos(n * omega)
        self._sin = np.sin(n * omega)
        self._scale = 2.0 / float(window_length * window_length)

    def powers(self, windows: npt.ArrayLike) -> Samples:
        """Mean power at each frequency: one row per window, one column per frequency."""
        rows = np.asarray(windows, dtype=np.float64)
        if rows.ndim == 1:
            rows = rows[np.newaxis, :]
        if rows.shape[1] != self.window_length:
            raise ValueError(f"windows must have {self.window_length} samples")
        real = rows @ self._cos
        imag = rows @ self._sin
        result: Samples = (real * real + imag * imag) * self._scale
        return result
