"""Frequency-domain quasi-Newton step for an echo canceller's FIR, over a sliding window.

Why: steepest descent (NLMS) adapts each frequency at a rate set by the far end's power there,
so speech (strong low harmonics, weak everything else) needs seconds. Here the gradient of the
squared error over the last `window` samples is divided, bin by bin, by the far end's power
spectrum (the per-bin normalisation of MDF / PBFDAF echo cancellers), which approximates the
inverse of the far end's correlation matrix: every excited frequency converges at the same rate.
The error is re-evaluated over the whole window with the current weights at each update, so each
step heads for the least-squares fit of that window. The step comes back as time-domain weights
(the first `taps` lags only: the gradient constraint), so the caller keeps a plain FIR.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.levels import Samples

Mask = npt.NDArray[np.bool_]


class FrequencyDomainNewton:
    """The far end's smoothed power spectrum, and the normalised step it gives."""

    def __init__(
        self,
        *,
        taps: int,
        window: int,
        smoothing: float,
        regularisation: float,
        floor_power: float,
    ) -> None:
        if taps < 1 or window < 1 or not 0.0 <= smoothing < 1.0:
            raise ValueError("taps and window must be positive, smoothing in [0, 1)")
        self.taps = taps
        self.window = window
        # FFT size: the window's errors look back taps - 1 far-end samples (overlap save).
        self.size = 1 << (window + taps - 2).bit_length()
        self._smoothing = smoothing
        self._regularisation = regularisation
        self._floor = floor_power
        self._power: Samples | None = None
        self._padding: Samples = np.zeros(self.size - window, dtype=np.float64)

    def step(
        self, far: Samples, near: Samples, usable: Mask, weights: Samples, bound: float
    ) -> Samples:
        """The weight change for a unit step size.

        far: the last `size` far-end samples; near, usable: the last `window` near-end samples
        and which of them may be learnt from (not double talk); bound: the error is clipped at
        this magnitude first (robust statistics, so a missed near-end talker moves little).
        """
        size, window = self.size, self.window
        spectrum = np.fft.rfft(far)
        power = (spectrum.real * spectrum.real + spectrum.imag * spectrum.imag) / size
        # Power per bin per sample. It may rise at once (a louder syllable, a harmonic gliding
        # into the bin) but falls slowly: an underestimate would overshoot that bin.
        if self._power is None:
            self._power = power
        else:
            decayed = self._smoothing * self._power + (1.0 - self._smoothing) * power
            self._power = np.maximum(power, decayed)
        # Bins between a voice's harmonics carry next to nothing: floor them so they are not
        # amplified into noise.
        floor = self._regularisation * float(np.mean(self._power)) + self._floor
        normaliser = np.maximum(self._power, floor)
        estimate = np.fft.irfft(spectrum * np.fft.rfft(weights, size), size)[size - window :]
        error = np.where(usable, np.clip(near - estimate, -bound, bound), 0.0)
        error_spectrum = np.fft.rfft(np.concatenate((self._padding, error)))
        lags = np.fft.irfft(np.conj(spectrum) * error_spectrum / normaliser, size)
        change: Samples = lags[: self.taps] / (window + self.taps)
        return change
