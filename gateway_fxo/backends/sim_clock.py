"""Tick sources for the simulated line: what calls its `step()` once per 20 ms frame.

The simulation itself never reads a clock; its time is the number of frames stepped. A real run
uses `AsyncioTicker` (the event loop's clock, `loop.call_at` on a fixed grid, so no drift); unit
tests use `ManualTicker` and step the line themselves, with no sleeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from gateway_fxo.line import FRAME_SECONDS

Tick = Callable[[], None]

MAX_CATCH_UP_FRAMES = 10
"""After the loop stalls, at most this many missed frames are run at once (200 ms of audio, as a
line card's buffer would hand over); beyond that the grid restarts from now."""


class TickSource(Protocol):
    """Calls `tick` once per frame between `start` and `stop`."""

    def start(self, tick: Tick) -> None: ...

    def stop(self) -> None: ...


class ManualTicker:
    """No clock at all: the test calls `advance()` (or the line's `step()`/`advance()`)."""

    def __init__(self) -> None:
        self._tick: Tick | None = None

    @property
    def running(self) -> bool:
        return self._tick is not None

    def start(self, tick: Tick) -> None:
        self._tick = tick

    def stop(self) -> None:
        self._tick = None

    def advance(self, frames: int = 1) -> None:
        """Run `frames` ticks now (nothing when stopped)."""
        for _ in range(frames):
            if self._tick is None:
                return
            self._tick()


class AsyncioTicker:
    """Ticks every `interval` seconds on the running event loop, on the grid start + k·interval."""

    def __init__(self, interval: float = FRAME_SECONDS) -> None:
        if interval <= 0.0:
            raise ValueError("the tick interval must be positive")
        self.interval = interval
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._tick: Tick | None = None
        self._next = 0.0
        self.ticks = 0
        self.resyncs = 0

    def start(self, tick: Tick) -> None:
        if self._handle is not None:
            raise RuntimeError("the ticker is already running")
        self._loop = asyncio.get_running_loop()
        self._tick = tick
        self._next = self._loop.time() + self.interval
        self._handle = self._loop.call_at(self._next, self._fire)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._tick = None

    def _fire(self) -> None:
        loop, tick = self._loop, self._tick
        if loop is None or tick is None:
            return
        now = loop.time()
        due = 0
        while self._next <= now and due < MAX_CATCH_UP_FRAMES:
            self._next += self.interval
            due += 1
        if self._next <= now:
            self._next = now + self.interval
            self.resyncs += 1
        # Armed before ticking: a bug in one frame is reported by the loop, the line runs on.
        self._handle = loop.call_at(self._next, self._fire)
        for _ in range(due):
            if self._tick is None:  # stopped by the tick itself
                return
            self.ticks += 1
            tick()
