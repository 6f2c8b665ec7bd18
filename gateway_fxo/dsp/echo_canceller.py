"""Line echo canceller (ITU-T G.168 family): block NLMS with a Geigel double-talk detector.

The 2-to-4-wire hybrid returns part of what we send (far end) into what we receive (near end).
An adaptive FIR filter models that echo path from the far-end signal and subtracts its estimate
from the near-end signal. The filter adapts once per small block: every output of the block uses
the same weights, so outputs and the gradient are two matrix products instead of a Python loop
per sample. Adaptation stops while the near end talks (Geigel: a near-end sample louder than
half the loudest recent far-end sample cannot be echo through a hybrid with >= 6 dB of loss)
and for a hangover after, so double talk does not make the filter diverge.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, as_samples, dbm0_to_power


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoCancellerSettings:
    taps: int = 512  # 64 ms echo tail at 8 kHz
    step: float = 0.5  # NLMS step size (0 < step < 2; smaller is slower but steadier)
    block: int = 16  # samples per adaptation block
    geigel_threshold: float = 0.5  # near/far amplitude ratio that means double talk (6 dB)
    hangover_s: float = 0.06  # keep the filter frozen this long after double talk
    robust_clip: float = 2.0  # residual clipped at this many times its running scale (Huber)
    scale_memory_s: float = 0.25  # time constant of that running scale
    min_far_dbm0: float = -50.0  # no adaptation on a far end quieter than this
    nlp: bool = False  # residual echo suppression
    nlp_threshold_db: float = 30.0  # residual this far below the far end is taken as echo
    nlp_attenuation_db: float = 30.0

    def __post_init__(self) -> None:
        if self.taps < 1 or self.block < 1 or not 0.0 < self.step < 2.0:
            raise ValueError("taps and block must be positive, step in (0, 2)")


class EchoCanceller:
    """process(far_end_block, near_end_block) -> near end with the echo removed."""

    def __init__(self, settings: EchoCancellerSettings | None = None) -> None:
        self.settings = settings if settings is not None else EchoCancellerSettings()
        taps = self.settings.taps
        self.weights: Samples = np.zeros(taps, dtype=np.float64)
        self._far_history: Samples = np.zeros(taps - 1, dtype=np.float64)
        self._hangover_samples = round(self.settings.hangover_s * SAMPLE_RATE)
        self._hangover = 0
        self._min_far_power = dbm0_to_power(self.settings.min_far_dbm0)
        # Regularisation, relative: keeps the step small when the block barely excites the filter.
        self._delta = self._min_far_power
        self._nlp_ratio = 10.0 ** (-self.settings.nlp_threshold_db / 10.0)
        self._nlp_gain = 10.0 ** (-self.settings.nlp_attenuation_db / 20.0)
        self.double_talk_samples = 0  # how many samples were judged double talk (for tests)
        # Running scale of the residual (robust statistics, after Gaensler et al. 2000): the
        # adaptation sees the residual clipped at a few times this scale, so a near-end talker
        # the Geigel detector misses (quiet onsets, pauses between syllables) moves the filter
        # little. The scale may fall quickly but grows only by a bounded factor per block.
        self._scale = float("inf")
        self._scale_decay = math.exp(
            -settings_block_s(self.settings) / self.settings.scale_memory_s
        )

    @property
    def double_talk(self) -> bool:
        return self._hangover > 0

    def process(self, far_end: npt.ArrayLike, near_end: npt.ArrayLike) -> Samples:
        far = as_samples(far_end)
        near = as_samples(near_end)
        if far.size != near.size:
            raise ValueError("far-end and near-end blocks must be the same length")
        out = np.empty_like(near)
        step = self.settings.block
        for first in range(0, near.size, step):
            last = min(near.size, first + step)
            out[first:last] = self._block(far[first:last], near[first:last])
        return out

    def _block(self, far: Samples, near: Samples) -> Samples:
        settings = self.settings
        history = np.concatenate((self._far_history, far))
        self._far_history = history[far.size :]
        # Row i: far-end samples i, i-1, ..., i-taps+1 (newest first, matching the weights).
        rows = sliding_window_view(history, settings.taps)[:, ::-1]
        echo_estimate = rows @ self.weights
        residual = near - echo_estimate
        # Geigel double-talk detector, sample by sample over the block.
        loudest_far = np.max(np.abs(sliding_window_view(history, settings.taps)), axis=1)
        talking = np.abs(near) > settings.geigel_threshold * loudest_far
        if np.any(talking):
            self._hangover = self._hangover_samples + far.size
            self.double_talk_samples += int(np.count_nonzero(talking))
        far_power = float(np.mean(far * far))
        if self._hangover > 0:
            self._hangover = max(0, self._hangover - far.size)
        elif far_power >= self._min_far_power:
            # Steepest descent on the block's squared error with an exact line search: the
            # step along the gradient g that would zero the error is (g.g) / |X g|^2. This
            # normalises like NLMS for white signals and stays stable for coloured ones (speech,
            # tones), whose regressors within a block are nearly parallel.
            rms = math.sqrt(float(np.mean(residual * residual)))
            if math.isinf(self._scale):
                # Start from the far end's level: an echo through a hybrid is quieter than that,
                # so nothing is clipped while the filter first converges.
                self._scale = math.sqrt(far_power)
            bound = settings.robust_clip * self._scale
            clipped = np.clip(residual, -bound, bound)
            self._scale = self._scale_decay * self._scale + (1.0 - self._scale_decay) * min(
                rms, bound
            )
            gradient = rows.T @ clipped
            projected = rows @ gradient
            denominator = float(projected @ projected) + self._delta * float(gradient @ gradient)
            if denominator > 0.0:
                scale = settings.step * float(gradient @ gradient) / denominator
                self.weights += scale * gradient
        quiet = float(np.mean(residual * residual)) < far_power * self._nlp_ratio
        if settings.nlp and self._hangover == 0 and far_power >= self._min_far_power and quiet:
            residual = residual * self._nlp_gain
        return residual


def settings_block_s(settings: EchoCancellerSettings) -> float:
    return settings.block / SAMPLE_RATE


def erle(echo: npt.ArrayLike, residual: npt.ArrayLike) -> float:
    """Echo return loss enhancement in dB: the echo's power over what is left of it."""
    e = as_samples(echo)
    r = as_samples(residual)
    echo_power = float(np.sum(e * e))
    residual_power = float(np.sum(r * r))
    if residual_power == 0.0:
        return math.inf
    if echo_power == 0.0:
        return -math.inf
    return 10.0 * math.log10(echo_power / residual_power)
