"""The gpio line card with a fake GPIO module and a fake audio port (the real PyAudio path is
in test_gpio_audio.py): pins, hook relay, ring cadence, on-hook audio gating, playout."""

from __future__ import annotations

import asyncio
import importlib.util
import threading
from typing import Any

import numpy as np
import pytest

from gateway_fxo.backends.gpio import (
    AudioCallback,
    GpioError,
    GpioLineCard,
    GpioSettings,
    RingDetector,
    find_device,
    import_gpio,
    level_dbfs,
)
from gateway_fxo.line import FRAME_BYTES, LineEvent, RingStart, RingStop
from tests.support.fake_gpio import FakeGpio

HOOK, RING = 17, 27


def edges(start: float, seconds: float, hz: float = 20.0) -> list[float]:
    """Both edges of a ring detector's square wave: 2 * hz a second."""
    step = 1 / (2 * hz)
    return [start + i * step for i in range(int(seconds / step))]


def drive(detector: RingDetector, times: list[float], until: float) -> list[tuple[float, str]]:
    """Feed edges and fire timers in time order, as the event loop would."""
    out: list[tuple[float, str]] = []
    for t in [*times, until]:
        deadline = detector.next_deadline()
        while deadline is not None and deadline <= t:
            out += [(deadline, type(e).__name__) for e in detector.handle_timer(deadline)]
            deadline = detector.next_deadline()
        if t < until:
            out += [(t, type(e).__name__) for e in detector.edge(t)]
    return out


# --- ring cadence (pure, fake clock) ---------------------------------------------------------


def test_a_20_hz_burst_is_one_ring() -> None:
    got = drive(RingDetector(), edges(0.0, 2.0), until=6.0)
    assert [name for _, name in got] == ["RingStart", "RingStop"]
    assert got[0][0] == pytest.approx(0.025)  # the second edge confirms it
    assert got[1][0] == pytest.approx(1.975 + 0.1)


def test_us_cadence_two_seconds_on_four_off() -> None:
    times = edges(0.0, 2.0) + edges(6.0, 2.0) + edges(12.0, 2.0)
    names = [name for _, name in drive(RingDetector(), times, until=20.0)]
    assert names == ["RingStart", "RingStop"] * 3


def test_uk_double_ring_gives_two_bursts() -> None:
    times = edges(0.0, 0.4, hz=25) + edges(0.6, 0.4, hz=25)
    names = [name for _, name in drive(RingDetector(), times, until=3.0)]
    assert names == ["RingStart", "RingStop", "RingStart", "RingStop"]


def test_gaps_up_to_100_ms_stay_in_the_burst() -> None:
    times = [0.0, 0.05, 0.14, 0.23, 0.33]
    names = [name for _, name in drive(RingDetector(gap_s=0.1), times, until=1.0)]
    assert names == ["RingStart", "RingStop"]


def test_a_lone_glitch_is_not_a_ring() -> None:
    assert drive(RingDetector(), [0.0, 0.5, 1.0], until=2.0) == []


def test_min_edges_is_configurable() -> None:
    assert drive(RingDetector(min_edges=5), edges(0.0, 0.09), until=1.0) == []


# --- the card with fakes ---------------------------------------------------------------------


class FakeAudioPort:
    """Plays the audio thread: ``pump`` calls the card's callback from a thread of its own."""

    def __init__(self) -> None:
        self.callback: AudioCallback | None = None
        self.started = self.stopped = False

    def start(self, callback: AudioCallback) -> None:
        self.callback = callback
        self.started = True

    def stop(self) -> None:
        self.stopped = True

    def pump(self, chunks: list[bytes], frames: int = 160) -> list[bytes]:
        played: list[bytes] = []

        def run() -> None:
            assert self.callback is not None
            for chunk in chunks:
                played.append(self.callback(chunk, frames))

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(5)
        return played


def tone(hz: float, samples: int, peak: float = 8000.0) -> bytes:
    t = np.arange(samples)
    return np.round(peak * np.sin(2 * np.pi * hz * t / 8000)).astype("<i2").tobytes()


class Harness:
    def __init__(self, **settings: Any) -> None:
        self.gpio = FakeGpio()
        self.audio = FakeAudioPort()
        self.card = GpioLineCard(
            GpioSettings(hook_pin=HOOK, ring_pin=RING, **settings),
            gpio=self.gpio,
            audio=self.audio,
        )
        self.events: list[LineEvent] = []
        self.frames: list[bytes] = []
        self.card.on_event = self.events.append
        self.card.on_audio = self.frames.append

    async def settle(self, predicate: Any, timeout: float = 3.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            assert loop.time() < deadline, "timed out"
            await asyncio.sleep(0.005)


def run(scenario: Any, **settings: Any) -> Harness:
    harness = Harness(**settings)

    async def main() -> None:
        await harness.card.open()
        try:
            await scenario(harness)
        finally:
            await harness.card.close()

    asyncio.run(asyncio.wait_for(main(), 10))
    return harness


def test_open_sets_up_pins_and_close_releases_them() -> None:
    async def scenario(h: Harness) -> None:
        assert h.gpio.calls == [
            ("setwarnings", False),
            ("setmode", FakeGpio.BCM),
            ("setup", HOOK, FakeGpio.OUT, {"initial": FakeGpio.LOW}),
            ("setup", RING, FakeGpio.IN, {"pull_up_down": FakeGpio.PUD_UP}),
            ("add_event_detect", RING, FakeGpio.BOTH),
        ]
        assert h.audio.started

    h = run(scenario)
    assert h.audio.stopped
    assert h.gpio.calls[-2:] == [("remove_event_detect", RING), ("cleanup", [HOOK, RING])]


def test_inverted_relay_and_ring_polarity() -> None:
    async def scenario(h: Harness) -> None:
        assert h.gpio.calls[2] == ("setup", HOOK, FakeGpio.OUT, {"initial": FakeGpio.HIGH})
        assert h.gpio.calls[3] == ("setup", RING, FakeGpio.IN, {"pull_up_down": FakeGpio.PUD_DOWN})
        await h.card.off_hook()
        assert h.gpio.levels[HOOK] == FakeGpio.LOW

    run(scenario, hook_active_high=False, ring_active_low=False)


def test_hook_relay_and_flash() -> None:
    async def scenario(h: Harness) -> None:
        await h.card.off_hook()
        assert h.card.is_off_hook and h.gpio.levels[HOOK] == FakeGpio.HIGH
        await h.card.hook_flash(0.02)
        assert h.card.is_off_hook
        await h.card.on_hook()
        assert not h.card.is_off_hook
        assert h.gpio.outputs(HOOK) == [1, 0, 1, 0]

    h = run(scenario)
    assert h.gpio.outputs(HOOK)[-1] == FakeGpio.LOW  # close leaves it on hook


def test_ring_edges_from_the_gpio_thread_become_ring_events() -> None:
    async def scenario(h: Harness) -> None:
        thread = h.gpio.fire_edges(RING, count=12, interval_s=0.025)  # 20 Hz, 0.3 s
        await h.settle(lambda: RingStart() in h.events)
        assert h.card.ringing
        await asyncio.to_thread(thread.join, 5)
        await h.settle(lambda: RingStop() in h.events)
        assert h.events == [RingStart(), RingStop()]

    run(scenario)


def test_on_hook_passes_only_audio_that_is_not_silence() -> None:
    quiet = bytes(FRAME_BYTES)
    loud = tone(1200, 160)  # like caller ID FSK between rings

    async def scenario(h: Harness) -> None:
        h.audio.pump([quiet] * 5 + [loud] * 3 + [quiet] * 20)
        hangover = round(0.2 / 0.02)
        await h.settle(lambda: len(h.frames) == 3 + hangover)
        assert h.frames[:3] == [loud] * 3
        await asyncio.sleep(0.02)
        assert len(h.frames) == 3 + hangover

    run(scenario)


def test_off_hook_every_frame_in_320_byte_pieces() -> None:
    stream = tone(1000, 160 * 10)

    async def scenario(h: Harness) -> None:
        await h.card.off_hook()
        h.audio.pump([stream[i : i + 100] for i in range(0, len(stream), 100)])
        await h.settle(lambda: len(h.frames) == 10)
        assert b"".join(h.frames) == stream

    run(scenario)


def test_playout_while_off_hook_only_and_bounded() -> None:
    frames = [tone(440, 160, peak=1000 + i) for i in range(15)]

    async def scenario(h: Harness) -> None:
        h.card.send_audio(frames[0])  # on hook: dropped
        played = h.audio.pump([b""])
        assert played == [bytes(FRAME_BYTES)]
        await h.card.off_hook()
        for frame in frames:
            h.card.send_audio(frame)
        played = h.audio.pump([b""] * 12)
        assert played[:10] == frames[5:]  # only the newest 200 ms were kept
        assert played[10:] == [bytes(FRAME_BYTES)] * 2
        with pytest.raises(ValueError):
            h.card.send_audio(b"\x00")

    run(scenario)


def test_odd_buffer_sizes_are_played_in_order() -> None:
    frames = [tone(440, 160, peak=2000 + i) for i in range(3)]

    async def scenario(h: Harness) -> None:
        await h.card.off_hook()
        for frame in frames:
            h.card.send_audio(frame)
        played = h.audio.pump([b""] * 5, frames=100)  # 200-byte buffers: 1000 bytes
        assert all(len(p) == 200 for p in played)
        assert b"".join(played) == b"".join(frames) + bytes(1000 - 3 * FRAME_BYTES)

    run(scenario)


def test_level_dbfs() -> None:
    assert level_dbfs(bytes(FRAME_BYTES)) == -120.0
    full_scale_sine = tone(1000, 160, peak=32767)
    assert level_dbfs(full_scale_sine) == pytest.approx(-3.01, abs=0.05)


class FakePyAudio:
    def __init__(self, devices: list[tuple[str, int, int]]) -> None:
        self.devices = devices

    def get_device_count(self) -> int:
        return len(self.devices)

    def get_device_info_by_index(self, index: int) -> dict[str, object]:
        name, inputs, outputs = self.devices[index]
        return {"name": name, "maxInputChannels": inputs, "maxOutputChannels": outputs}


def test_find_device_by_index_name_or_part() -> None:
    pa = FakePyAudio(
        [
            ("HDMI", 0, 2),
            ("USB Audio Device: - (hw:1,0)", 1, 2),
            ("pulse", 32, 32),
            ("default", 2, 2),
        ]
    )
    assert find_device(pa, None) is None
    assert find_device(pa, 3) == 3
    assert find_device(pa, "pulse") == 2
    assert find_device(pa, "usb audio") == 1
    with pytest.raises(GpioError, match="HDMI"):
        find_device(pa, "HDMI")  # output only: not a duplex device
    with pytest.raises(GpioError):
        find_device(pa, "u")  # more than one


@pytest.mark.skipif(importlib.util.find_spec("RPi") is not None, reason="this is a Pi")
def test_without_rpi_gpio_open_says_so() -> None:
    with pytest.raises(GpioError, match="RPi.GPIO"):
        import_gpio()
