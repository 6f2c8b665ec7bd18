"""Clocks, injected wherever time matters so tests can drive a fake one."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: for timers and deadlines."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: for records people read (CDRs, Date headers)."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()
