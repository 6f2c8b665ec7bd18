"""Line echo canceller (ITU-T G.168 family): an adaptive FIR with a Geigel double-talk detector.

The 2-to-4-wire hybrid returns part of what we send (far end) into what we receive (near end).
An adaptive FIR filter models that echo path from the far-end signal and subtracts its estimate
from the near-end signal, sample by sample with the current weights (no added latency, any block
length). Every `block` samples the weights take one frequency-domain quasi-Newton step towards
the least-squares fit of the last `window` samples (frequency_domain_newton.py): per-bin far-end
power normalisation makes speech converge as fast as white noise. Adaptation leaves out double
talk (Geigel: a near-end sample louder than half the loudest recent far-end sample cannot be echo
through a hybrid with >= 6 dB of loss), a hangover after it and the talker's onset before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from gateway_fxo.dsp.frequency_domain_newton import FrequencyDomainNewton, Mask
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, as_samples, dbm0_to_power


@dataclass(frozen=True, slots=True, kw_only=True)
class EchoCancellerSettings:
    taps: int = 512  # 64 ms echo tail at 8 kHz
    step: float = 0.8  # quasi-Newton step (0 < step < 2; above ~1 it can overshoot on speech)
    block: int = 64  # samples between adaptations
    window: int = 1024  # samples of recent history each adaptation fits (128 ms)
    power_smoothing: float = 0.9  # decay per block of the far end's power spectrum estimate
    regularisation: float = 0.001  # floor on a bin's power, relative to the mean bin power
    geigel_threshold: float = 0.5  # near/far amplitude ratio that means double talk (6 dB)
    hangover_s: float = 0.06  # keep the filter frozen this long after double talk
    lookback_s: float = 0.05  # and leave out this much before it (the talker's onset)
    robust_clip: float = 2.0  # residual clipped at this many times its running scale (Huber)
    scale_memory_s: float = 0.25  # time constant of that running scale
    min_far_dbm0: float = -50.0  # no adaptation on a far end quieter than this
    nlp: bool = False  # residual echo suppression
    nlp_threshold_db: float = 30.0  # residual this far below the far end is taken as echo
    nlp_attenuation_db: float = 30.0

    def __post_init__(self) -> None:
        if self.taps < 1 or self.block < 1 or not 0.0 < self.step < 2.0:
            raise ValueError("taps and block must be positive, step in (0, 2)")
        if self.window < self.block or not 0.0 <= self.power_smoothing < 1.0:
            raise ValueError("window must hold a block, power_smoothing in [0, 1)")


class EchoCanceller:
    """process(far_end_block, near_end_block) -> near end with the echo removed."""

    def __init__(self, settings: EchoCancellerSettings | None = None) -> None:
        self.settings = settings if settings is not None else EchoCancellerSettings()
        settings = self.settings
        self.weights: Samples = np.zeros(settings.taps, dtype=np.float64)
        self._hangover_samples = round(settings.hangover_s * SAMPLE_RATE)
        self._hangover = 0
        self._lookback_samples = min(settings.window, round(settings.lookback_s * SAMPLE_RATE))
        self._min_far_power = dbm0_to_power(settings.min_far_dbm0)
        self._nlp_ratio = 10.0 ** (-settings.nlp_threshold_db / 10.0)
        self._nlp_gain = 10.0 ** (-settings.nlp_attenuation_db / 20.0)
        self.double_talk_samples = 0  # how many samples were judged double talk (for tests)
        self._newton = FrequencyDomainNewton(
            taps=settings.taps,
            window=settings.window,
            smoothing=settings.power_smoothing,
            regularisation=settings.regularisation,
            floor_power=self._min_far_power,
        )
        # The recent past the adaptation re-reads: far end (enough for the window's echo
        # estimates), near end, and which near-end samples were free of double talk.
        self._far: Samples = np.zeros(self._newton.size, dtype=np.float64)
        self._near: Samples = np.zeros(settings.window, dtype=np.float64)
        self._usable: Mask = np.zeros(settings.window, dtype=np.bool_)
        self._block_residual: Samples = np.zeros(settings.block, dtype=np.float64)
        self._filled = 0
        # Running scale of the residual (robust statistics, after Gaensler et al. 2000): the
        # adaptation sees the residual clipped at a few times this scale, so a near-end talker
        # the Geigel detector misses (quiet onsets, pauses between syllables) moves the filter
        # little. The scale may fall quickly but grows only by a bounded factor per block.
        self._scale = float("inf")
        self._scale_decay = math.exp(-settings_block_s(settings) / settings.scale_memory_s)

    @property
    def double_talk(self) -> bool:
        return self._hangover > 0

    def process(self, far_end: npt.ArrayLike, near_end: npt.ArrayLike) -> Samples:
        far = as_samples(far_end)
        near = as_samples(near_end)
        if far.size != near.size:
            raise ValueError("far-end and near-end blocks must be the same length")
        out = np.empty_like(near)
        first = 0
        while first < near.size:
            # Pieces end where an adaptation block ends, so the weights change between pieces.
            last = min(near.size, first + self.settings.block - self._filled)
            out[first:last] = self._piece(far[first:last], near[first:last])
            first = last
        return out

    def _piece(self, far: Samples, near: Samples) -> Samples:
        settings = self.settings
        count = far.size
        self._far = np.concatenate((self._far[count:], far))
        history = self._far[-(settings.taps - 1 + count) :]
        # Sample-exact FIR: estimate[i] = sum_k weights[k] * far[i - k], from the current weights.
        residual = near - np.convolve(history, self.weights, mode="valid")
        # Geigel double-talk detector, sample by sample over the piece. A sample counts as talk
        # only if what is left after cancelling is that loud too: a hybrid with barely 6 dB of
        # loss returns echo peaks above half the far end's, and once the filter has learnt them
        # they are no reason to stop learning (with no weights yet this is the plain test).
        loudest_far = np.max(sliding_window_view(np.abs(history), settings.taps), axis=1)
        limit = settings.geigel_threshold * loudest_far
        talking = (np.abs(near) > limit) & (np.abs(residual) > limit)
        if np.any(talking):
            self._hangover = self._hangover_samples + count
            self.double_talk_samples += int(np.count_nonzero(talking))
        usable = self._hangover == 0
        if self._hangover > 0:
            self._hangover = max(0, self._hangover - count)
        self._near = np.concatenate((self._near[count:], near))
        self._usable = np.concatenate((self._usable[count:], np.full(count, usable)))
        if np.any(talking):
            # Talk is detected only once it is loud; its quieter onset is already in the
            # window, and each sample there is re-read by later updates: leave it out too.
            self._usable[-(self._lookback_samples + count) :] = False
        self._block_residual[self._filled : self._filled + count] = residual
        self._filled += count
        if self._filled == settings.block:
            self._filled = 0
            self._adapt()
        far_power = float(np.mean(far * far))
        quiet = float(np.mean(residual * residual)) < far_power * self._nlp_ratio
        if settings.nlp and self._hangover == 0 and far_power >= self._min_far_power and quiet:
            residual = residual * self._nlp_gain
        return residual

    def _adapt(self) -> None:
        """A block is complete: one step towards the least-squares fit of the recent window."""
        if not np.any(self._usable):
            return
        window_far = self._far[-self.settings.window :]
        far_power = float(np.mean(window_far * window_far))
        if far_power < self._min_far_power:
            return
        if math.isinf(self._scale):
            # Start from the far end's level: an echo through a hybrid is quieter than that, so
            # nothing is clipped while the filter first converges.
            self._scale = math.sqrt(far_power)
        bound = self.settings.robust_clip * self._scale
        residual = self._block_residual
        rms = math.sqrt(float(np.mean(residual * residual)))
        self._scale = self._scale_decay * self._scale + (1.0 - self._scale_decay) * min(rms, bound)
        change = self._newton.step(self._far, self._near, self._usable, self.weights, bound)
        self.weights += self.settings.step * change


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
