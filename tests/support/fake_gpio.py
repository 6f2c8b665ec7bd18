"""A stand-in for the RPi.GPIO module: records setup and output calls, fires input edges.

Like the real library, edge callbacks run on a thread of their own (``fire_edges``), so the
card's hand-over to the event loop is exercised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class FakeGpio:
    BCM = 11
    BOARD = 10
    IN = 1
    OUT = 0
    HIGH = 1
    LOW = 0
    PUD_OFF = 20
    PUD_DOWN = 21
    PUD_UP = 22
    RISING = 31
    FALLING = 32
    BOTH = 33

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.levels: dict[int, int] = {}
        self.modes: dict[int, int] = {}
        self.callbacks: dict[int, Callable[[int], None]] = {}
        self._lock = threading.Lock()

    def _record(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)

    def setwarnings(self, flag: bool) -> None:
        self._record("setwarnings", flag)

    def setmode(self, mode: int) -> None:
        self._record("setmode", mode)

    def setup(self, channel: int, direction: int, **kwargs: Any) -> None:
        self._record("setup", channel, direction, kwargs)
        self.modes[channel] = direction
        if direction == self.OUT:
            self.levels[channel] = kwargs.get("initial", self.LOW)
        else:
            pull = kwargs.get("pull_up_down", self.PUD_OFF)
            self.levels[channel] = self.HIGH if pull == self.PUD_UP else self.LOW

    def output(self, channel: int, value: int) -> None:
        if self.modes.get(channel) != self.OUT:
            raise RuntimeError(f"channel {channel} is not set up as an output")
        self._record("output", channel, value)
        self.levels[channel] = value

    def input(self, channel: int) -> int:
        return self.levels[channel]

    def add_event_detect(self, channel: int, edge: int, **kwargs: Any) -> None:
        if self.modes.get(channel) != self.IN:
            raise RuntimeError(f"channel {channel} is not set up as an input")
        self._record("add_event_detect", channel, edge)
        self.callbacks[channel] = kwargs["callback"]

    def remove_event_detect(self, channel: int) -> None:
        self._record("remove_event_detect", channel)
        self.callbacks.pop(channel, None)

    def cleanup(self, channel: Any = None) -> None:
        self._record("cleanup", channel)
        channels = list(self.modes) if channel is None else list(channel)
        for pin in channels:
            self.modes.pop(pin, None)

    # --- the test's side -----------------------------------------------------------------------

    def outputs(self, channel: int) -> list[int]:
        with self._lock:
            return [c[2] for c in self.calls if c[0] == "output" and c[1] == channel]

    def fire_edges(self, channel: int, count: int, interval_s: float) -> threading.Thread:
        """``count`` edges ``interval_s`` apart, toggling the input, from a thread (returned)."""

        def run() -> None:
            for _ in range(count):
                self.levels[channel] ^= 1
                callback = self.callbacks.get(channel)
                if callback is not None:
                    callback(channel)
                time.sleep(interval_s)

        thread = threading.Thread(target=run, name="fake-gpio-edges", daemon=True)
        thread.start()
        return thread
