"""The ``gpio`` line card: a DIY FXO board on a Raspberry Pi's header plus a USB sound card.

Hook: an output pin drives the hook relay. Ring: an input pin from the ring detector's
optocoupler; ring voltage (20-25 Hz) makes a burst of edges, which ``RingDetector`` turns into
one RingStart per burst and a RingStop once no edge came for ``ring_gap_s`` (100 ms).
Audio: PyAudio (PortAudio over ALSA), 8 kHz mono int16 in 160-sample buffers, full duplex.

RPi.GPIO (or rpi-lgpio on a Pi 5: the same module name and API) is imported only at open()
unless a module object is injected, so this file imports anywhere. Both libraries call us
from their own threads; everything crosses to the event loop with call_soon_threadsafe, and
the audio thread only touches thread-safe deques.

On hook, the line's audio is passed on only when it is not silence (caller ID FSK between
rings is, and the gateway decodes it); off hook every frame is.
"""

from __future__ import annotations

import asyncio
import collections
import importlib
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from gateway_fxo.backends.modem_protocol import AudioFramer
from gateway_fxo.line import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    AudioHandler,
    EventHandler,
    LineEvent,
    RingStart,
    RingStop,
)

logger = logging.getLogger(__name__)


class GpioError(Exception):
    """The GPIO library or the audio device is missing or refused us."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GpioSettings:
    """Pins (BCM numbers) and the audio device; the agent fills this from the line's settings."""

    hook_pin: int
    ring_pin: int
    hook_active_high: bool = True
    """The level that closes the loop (relay energized = off hook)."""
    ring_active_low: bool = True
    """The optocoupler pulls the input low while ring voltage is present (pull-up on)."""
    audio_device: str | int | None = None
    """PyAudio device: an index, a name (exact, else a unique case-insensitive part), or None."""
    ring_gap_s: float = 0.1
    ring_min_edges: int = 2
    onhook_threshold_dbfs: float = -45.0
    onhook_hangover_s: float = 0.2
    max_playout_s: float = 0.2
    """Audio queued for the sound card beyond this is dropped (keeps the delay bounded)."""


class GpioModule(Protocol):
    """The part of the RPi.GPIO API we use (rpi-lgpio offers the same)."""

    BCM: int
    IN: int
    OUT: int
    HIGH: int
    LOW: int
    PUD_UP: int
    PUD_DOWN: int
    BOTH: int

    def setwarnings(self, flag: bool) -> None: ...
    def setmode(self, mode: int) -> None: ...
    def setup(self, channel: int, direction: int, **kwargs: Any) -> None: ...
    def output(self, channel: int, value: int) -> None: ...
    def input(self, channel: int) -> int: ...
    def add_event_detect(self, channel: int, edge: int, **kwargs: Any) -> None: ...
    def remove_event_detect(self, channel: int) -> None: ...
    def cleanup(self, channel: Any = ...) -> None: ...


def import_gpio() -> GpioModule:
    try:
        module: GpioModule = importlib.import_module("RPi.GPIO")
    except (ImportError, RuntimeError) as exc:  # RuntimeError: imported off a Pi
        raise GpioError(
            f"RPi.GPIO is not usable here ({exc}); install the hw extra on a Pi"
        ) from exc
    return module


class RingDetector:
    """Ring detector edges -> RingStart/RingStop, with time as an argument (sans-I/O).

    Edges closer than ``gap_s`` belong to one burst; ``min_edges`` edges make a ring (a lone
    glitch does not); the burst ends ``gap_s`` after its last edge.
    """

    def __init__(self, *, gap_s: float = 0.1, min_edges: int = 2) -> None:
        self._gap_s = gap_s
        self._min_edges = min_edges
        self._ringing = False
        self._count = 0
        self._last: float | None = None

    @property
    def ringing(self) -> bool:
        return self._ringing

    def edge(self, now: float) -> list[LineEvent]:
        if self._last is None or now - self._last > self._gap_s:
            self._count = 0
        self._last = now
        self._count += 1
        if not self._ringing and self._count >= self._min_edges:
            self._ringing = True
            return [RingStart()]
        return []

    def next_deadline(self) -> float | None:
        return None if self._last is None else self._last + self._gap_s

    def handle_timer(self, now: float) -> list[LineEvent]:
        if self._last is None or now < self._last + self._gap_s:
            return []
        self._last = None
        self._count = 0
        if self._ringing:
            self._ringing = False
            return [RingStop()]
        return []


def level_dbfs(frame: bytes) -> float:
    samples = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    rms = math.sqrt(float(np.mean(samples * samples))) if len(samples) else 0.0
    return -120.0 if rms < 1e-6 else 20 * math.log10(rms / 32768)


AudioCallback = Callable[[bytes, int], bytes]
"""Called from the audio thread with captured PCM16 and the frame count; returns PCM16 to play."""


class AudioPort(Protocol):
    def start(self, callback: AudioCallback) -> None: ...
    def stop(self) -> None: ...


class PyAudioPort:
    """One full-duplex PortAudio stream: 8 kHz, mono, int16, 160-frame buffers."""

    def __init__(self, device: str | int | None, *, pyaudio_module: Any = None) -> None:
        self._device = device
        self._module = pyaudio_module
        self._pa: Any = None
        self._stream: Any = None

    def start(self, callback: AudioCallback) -> None:
        module = self._module
        if module is None:
            try:
                module = importlib.import_module("pyaudio")
            except ImportError as exc:
                raise GpioError(f"PyAudio is not installed ({exc})") from exc
        pa = module.PyAudio()
        try:
            index = find_device(pa, self._device)
            continue_flag = module.paContinue

            def on_buffer(
                in_data: bytes | None, frames: int, _t: Any, _s: int
            ) -> tuple[bytes, int]:
                return callback(in_data or b"", frames), continue_flag

            self._stream = pa.open(
                format=module.paInt16,
                channels=1,
                rate=SAMPLE_RATE,
                input=True,
                output=True,
                frames_per_buffer=FRAME_SAMPLES,
                input_device_index=index,
                output_device_index=index,
                stream_callback=on_buffer,
            )
        except (OSError, ValueError) as exc:
            pa.terminate()
            raise GpioError(f"cannot open audio device {self._device!r}: {exc}") from exc
        self._pa = pa
        self._stream.start_stream()

    def stop(self) -> None:
        stream, pa = self._stream, self._pa
        self._stream = self._pa = None
        if stream is not None:
            stream.stop_stream()
            stream.close()
        if pa is not None:
            pa.terminate()


def find_device(pa: Any, wanted: str | int | None) -> int | None:
    """A device index for ``wanted``: an index as is; a name exact, else a unique part of one."""
    if wanted is None or isinstance(wanted, int):
        return wanted
    names = {}
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        if info.get("maxInputChannels", 0) >= 1 and info.get("maxOutputChannels", 0) >= 1:
            names[index] = str(info.get("name", ""))
    exact = [i for i, name in names.items() if name == wanted]
    if exact:
        return exact[0]
    partial = [i for i, name in names.items() if wanted.lower() in name.lower()]
    if len(partial) == 1:
        return partial[0]
    found = ", ".join(repr(n) for n in names.values()) or "none"
    raise GpioError(f"audio device {wanted!r} not found once (duplex devices: {found})")


def _ignore(_: object) -> None:
    pass


class GpioLineCard:
    """A LineCard on GPIO pins and a sound card."""

    def __init__(
        self,
        settings: GpioSettings,
        *,
        gpio: GpioModule | None = None,
        audio: AudioPort | None = None,
    ) -> None:
        self.on_event: EventHandler = _ignore
        self.on_audio: AudioHandler = _ignore
        self._settings = settings
        self._gpio = gpio
        self._audio = audio
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ring = RingDetector(gap_s=settings.ring_gap_s, min_edges=settings.ring_min_edges)
        self._timer: asyncio.TimerHandle | None = None
        self._off_hook = False
        self._opened = False
        self._framer = AudioFramer()
        self._hangover_frames = round(settings.onhook_hangover_s / FRAME_SECONDS)
        self._hangover_left = 0
        # The audio thread and the loop share only these (deque append/popleft are atomic).
        self._captured: collections.deque[bytes] = collections.deque()
        self._playout: collections.deque[bytes] = collections.deque()
        self._drain_scheduled = threading.Event()
        self._play_buffer = bytearray()  # the audio thread's own
        self._max_playout_frames = max(
            1, round(settings.max_playout_s * SAMPLE_RATE / FRAME_SAMPLES)
        )

    @property
    def is_off_hook(self) -> bool:
        return self._off_hook

    @property
    def ringing(self) -> bool:
        return self._ring.ringing

    def _levels(self) -> tuple[int, int]:
        """(off-hook level, on-hook level) of the hook pin."""
        gpio = self._require_gpio()
        on, off = (
            (gpio.HIGH, gpio.LOW) if self._settings.hook_active_high else (gpio.LOW, gpio.HIGH)
        )
        return on, off

    def _require_gpio(self) -> GpioModule:
        if self._gpio is None:
            raise GpioError("open() first")
        return self._gpio

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._gpio is None:
            self._gpio = import_gpio()
        gpio = self._gpio
        s = self._settings
        gpio.setwarnings(False)
        gpio.setmode(gpio.BCM)
        _, on_hook_level = self._levels()
        gpio.setup(s.hook_pin, gpio.OUT, initial=on_hook_level)
        pull = gpio.PUD_UP if s.ring_active_low else gpio.PUD_DOWN
        gpio.setup(s.ring_pin, gpio.IN, pull_up_down=pull)
        gpio.add_event_detect(s.ring_pin, gpio.BOTH, callback=self._edge_from_gpio_thread)
        self._opened = True
        if self._audio is None:
            self._audio = PyAudioPort(s.audio_device)
        try:
            self._audio.start(self._audio_from_audio_thread)
        except GpioError:
            self._release_pins()
            raise
        logger.info(
            "event=gpio_ready hook_pin=%d ring_pin=%d audio_device=%r",
            s.hook_pin,
            s.ring_pin,
            s.audio_device,
        )

    async def close(self) -> None:
        if not self._opened:
            return
        self._opened = False
        self._set_hook(False)
        if self._audio is not None:
            self._audio.stop()
        self._release_pins()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _release_pins(self) -> None:
        gpio = self._require_gpio()
        s = self._settings
        gpio.remove_event_detect(s.ring_pin)
        gpio.cleanup([s.hook_pin, s.ring_pin])

    async def off_hook(self) -> None:
        self._set_hook(True)

    async def on_hook(self) -> None:
        self._set_hook(False)

    async def hook_flash(self, seconds: float = 0.6) -> None:
        if not self._off_hook:
            return
        self._set_hook(False)
        await asyncio.sleep(seconds)
        self._set_hook(True)

    def _set_hook(self, off_hook: bool) -> None:
        off_level, on_level = self._levels()
        self._require_gpio().output(self._settings.hook_pin, off_level if off_hook else on_level)
        if off_hook != self._off_hook:
            logger.info("event=gpio_hook state=%s", "off" if off_hook else "on")
        self._off_hook = off_hook
        if not off_hook:
            self._playout.clear()

    def send_audio(self, frame: bytes) -> None:
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes, not {len(frame)}")
        if not self._off_hook:
            return
        if len(self._playout) >= self._max_playout_frames:
            self._playout.popleft()  # the sound card fell behind: drop the oldest
        self._playout.append(frame)

    # --- ring detector -------------------------------------------------------------------------

    def _edge_from_gpio_thread(self, _channel: int) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_edge)

    def _on_edge(self) -> None:
        loop = self._require_loop()
        self._emit(self._ring.edge(loop.time()))
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        deadline = self._ring.next_deadline()
        self._timer = (
            None if deadline is None else self._require_loop().call_at(deadline, self._on_timer)
        )

    def _on_timer(self) -> None:
        self._timer = None
        self._emit(self._ring.handle_timer(self._require_loop().time()))
        self._arm_timer()

    def _emit(self, events: list[LineEvent]) -> None:
        for event in events:
            logger.info("event=line_event kind=%s", type(event).__name__)
            self.on_event(event)

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise GpioError("open() first")
        return self._loop

    # --- audio ---------------------------------------------------------------------------------

    def _audio_from_audio_thread(self, captured: bytes, frames: int) -> bytes:
        """PortAudio's thread: hand the capture to the loop, return what to play."""
        loop = self._loop
        if captured and loop is not None and not loop.is_closed():
            self._captured.append(captured)
            if not self._drain_scheduled.is_set():
                self._drain_scheduled.set()
                loop.call_soon_threadsafe(self._drain_captured)
        wanted = frames * 2
        buffer = self._play_buffer
        while len(buffer) < wanted:
            try:
                buffer += self._playout.popleft()
            except IndexError:
                buffer += bytes(wanted - len(buffer))
        out = bytes(buffer[:wanted])
        del buffer[:wanted]
        return out

    def _drain_captured(self) -> None:
        self._drain_scheduled.clear()
        while True:
            try:
                chunk = self._captured.popleft()
            except IndexError:
                break
            for frame in self._framer.push(chunk):
                self._deliver(frame)

    def _deliver(self, frame: bytes) -> None:
        if self._off_hook:
            self.on_audio(frame)
            return
        if level_dbfs(frame) >= self._settings.onhook_threshold_dbfs:
            self._hangover_left = self._hangover_frames
            self.on_audio(frame)
        elif self._hangover_left > 0:
            self._hangover_left -= 1
            self.on_audio(frame)
