"""Cutting pushed blocks of any length into fixed analysis windows.

Detectors look at windows of a fixed length at a fixed hop, whatever block sizes arrive; this
buffer keeps the leftover samples between pushes and numbers every window by its first sample.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from gateway_fxo.dsp.levels import Samples, as_samples


class SlidingWindows:
    """Windows of `length` samples every `hop` samples over a pushed stream."""

    def __init__(self, length: int, hop: int) -> None:
        if length <= 0 or hop <= 0:
            raise ValueError("window length and hop must be positive")
        self.length = length
        self.hop = hop
        self._pending: Samples = np.zeros(0, dtype=np.float64)
        self._pending_start = 0  # absolute index of self._pending[0]
        self.samples_seen = 0

    def push(self, block: npt.ArrayLike) -> tuple[Samples, int]:
        """Append a block; return every complete window (rows) and the first one's start sample."""
        samples = as_samples(block)
        self.samples_seen += samples.size
        pending = np.concatenate((self._pending, samples)) if self._pending.size else samples
        first_start = self._pending_start
        if pending.size < self.length:
            self._pending = pending
            return np.zeros((0, self.length), dtype=np.float64), first_start
        count = (pending.size - self.length) // self.hop + 1
        windows = sliding_window_view(pending, self.length)[:: self.hop][:count]
        consumed = count * self.hop
        self._pending = pending[consumed:].copy()
        self._pending_start += consumed
        return np.ascontiguousarray(windows), first_start
