"""A harness that steps a SimulatedLine frame by frame (no event loop needed, no sleeping), and
the tests of the tick sources it stands in for."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Coroutine
from typing import Any, NamedTuple

import numpy as np
import pytest

from gateway_fxo.backends.sim import SimulatedLine
from gateway_fxo.backends.sim_clock import AsyncioTicker, ManualTicker
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, level_dbm0, to_pcm16
from gateway_fxo.dsp.tones import ToneDetector
from gateway_fxo.line import FRAME_BYTES, FRAME_SAMPLES, LineEvent


class Tone(NamedTuple):
    tone: str
    start: float
    end: float


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a LineCard coroutine that the simulation finishes without waiting (all but
    hook_flash), in or outside an event loop."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise AssertionError("the coroutine waited for something")


class Harness:
    """A line on a manual ticker; records every event and frame with the simulated time."""

    def __init__(self, country: str = "US", **options: Any) -> None:
        options.setdefault("ticker", ManualTicker())
        self.line = SimulatedLine(country, **options)
        self.events: list[tuple[float, LineEvent]] = []
        self.frames: list[tuple[float, Samples]] = []
        self._outgoing = np.zeros(0)
        self.line.on_event = lambda event: self.events.append((self.line.now, event))
        self.line.on_audio = self._heard
        run(self.line.open())

    def _heard(self, frame: bytes) -> None:
        assert len(frame) == FRAME_BYTES
        self.frames.append((self.line.now, np.frombuffer(frame, dtype="<i2").astype(np.float64)))

    # hook (the LineCard methods are coroutines that finish at once in the simulation)
    def off_hook(self) -> None:
        run(self.line.off_hook())

    def on_hook(self) -> None:
        run(self.line.on_hook())

    def send(self, samples: Samples) -> None:
        """Queue samples for the gateway to send, one frame per step from the next step on."""
        self._outgoing = np.concatenate((self._outgoing, samples))

    def advance(self, seconds: float) -> None:
        for _ in range(round(seconds * SAMPLE_RATE / FRAME_SAMPLES)):
            self.step()

    def step(self) -> None:
        if self._outgoing.size:
            chunk, self._outgoing = self._outgoing[:FRAME_SAMPLES], self._outgoing[FRAME_SAMPLES:]
            frame = np.zeros(FRAME_SAMPLES)
            frame[: chunk.size] = chunk
            self.line.send_audio(to_pcm16(frame).tobytes())
        self.line.step()

    def event_times(self, kind: type) -> list[float]:
        return [t for t, event in self.events if isinstance(event, kind)]

    def audio(self, start: float = 0.0, end: float = math.inf) -> Samples:
        parts = [frame for t, frame in self.frames if start - 1e-9 <= t < end - 1e-9]
        return np.concatenate(parts) if parts else np.zeros(0)

    def tones(self, start: float = 0.0, end: float = math.inf) -> list[Tone]:
        """Call-progress tones a fresh ToneDetector finds in the frames heard from `start` to
        `end` (which must be unbroken), with times on the line's clock."""
        detector = ToneDetector(self.line.country)
        heard = [t for t, _ in self.frames if start - 1e-9 <= t < end - 1e-9]
        found = detector.push(self.audio(start, end)) + detector.finish()
        return [Tone(e.tone, heard[0] + e.start_s, heard[0] + e.end_s) for e in found]


def peak_hz(samples: Samples) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.argmax(spectrum)) * SAMPLE_RATE / samples.size


def test_harness_steps_time_by_frames() -> None:
    h = Harness()
    h.advance(1.0)
    assert h.line.now == pytest.approx(1.0)
    assert h.frames == []  # on hook and idle: nothing heard
    h.off_hook()
    h.advance(0.5)
    assert len(h.frames) == 25
    assert level_dbm0(h.audio(1.2)) == pytest.approx(-13 + 3, abs=1.5)  # two tones at -13


def test_manual_ticker_runs_the_line_only_while_started() -> None:
    ticker = ManualTicker()
    line = SimulatedLine(ticker=ticker)
    ticker.advance(5)
    assert line.now == 0.0
    run(line.open())
    ticker.advance(5)
    assert line.now == pytest.approx(0.1)
    run(line.close())
    ticker.advance(5)
    assert line.now == pytest.approx(0.1)


def test_asyncio_ticker_keeps_the_grid_and_catches_up_after_a_stall() -> None:
    async def scenario() -> None:
        ticker = AsyncioTicker(interval=0.01)
        times: list[float] = []
        loop = asyncio.get_running_loop()
        started = loop.time()
        ticker.start(lambda: times.append(loop.time()))
        try:
            await asyncio.sleep(0.105)
            grid_ticks = int((loop.time() - started) / 0.01)  # however late the sleep woke
            assert grid_ticks - 1 <= len(times) <= grid_ticks or ticker.resyncs > 0
            before = len(times)
            stall_until = loop.time() + 0.05
            while loop.time() < stall_until:  # block the loop: five ticks are missed
                pass
            await asyncio.sleep(0.025)
            assert len(times) - before >= 6  # the missed ones ran, then the grid went on
        finally:
            ticker.stop()
        count = len(times)
        await asyncio.sleep(0.03)
        assert len(times) == count

    asyncio.run(scenario())
