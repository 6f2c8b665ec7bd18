"""The `sim` backend: a simulated central office behind the LineCard interface.

It produces what a real analog line produces, as events and 20 ms audio frames: ring cadences per
country, caller ID as real FSK (after the first ring), DTMF CLIP (before it) or, as on BT lines, a
polarity reversal, the DT-AS and FSK before the first ring (the polarity is restored when the call
ends), dial tone, ringback, busy and congestion tones, a far party (a tone or a WAV file) that
answers and hangs up (loop-current drop, busy tone, polarity reversal), the hybrid's echo of what
the gateway sends, line noise and slow level variation. It hears the digits the gateway dials by
running the DTMF receiver on the audio the gateway sends, never through a side channel.

Time is the number of frames stepped: `step()` runs one 20 ms frame, and a tick source calls it
(`AsyncioTicker` on the event loop for real runs, `ManualTicker` for tests, which step the line
themselves and never sleep). Audio goes to `on_audio` every frame while off hook; on hook only
during a caller ID burst (from the DT-AS to the end of the FSK where there is one), because an FXO
card's caller ID path listens while on hook, so the gateway runs its own decoder on those frames.
`decode_caller_id=True` also reports the caller as a CallerIdReceived event, as a modem that decodes
caller ID itself would.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gateway_fxo.backends.sim_calls import (
    BUSY_TONE,
    DEFAULT_DISCONNECT,
    DISCONNECT_SIGNALS,
    LOOP_DROP,
    POLARITY,
    DigitReceiver,
    Phase,
    RingingCall,
    SimState,
    SimulatedLineError,
    frames,
)
from gateway_fxo.backends.sim_clock import AsyncioTicker, ManualTicker, TickSource
from gateway_fxo.backends.sim_signals import (
    DEFAULT_CALLER_ID_STANDARD,
    HYBRID_TAPS,
    RING_CADENCES,
    FrameSource,
    HybridEcho,
    LevelWander,
    LineNoise,
    LoopedSamples,
    SineSource,
    ToneSource,
    caller_id_burst,
    load_recording,
)
from gateway_fxo.dsp.levels import Samples, to_pcm16
from gateway_fxo.dsp.tones import BUSY, CONGESTION, DIAL, RINGBACK
from gateway_fxo.line import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    AudioHandler,
    EventHandler,
    LineEvent,
    LineVoltageLost,
    LineVoltageRestored,
    LoopCurrentDrop,
    PolarityReversal,
)

__all__ = [
    "AsyncioTicker",
    "ManualTicker",
    "Phase",
    "SimState",
    "SimulatedLine",
    "SimulatedLineError",
]

MAX_QUEUED_FRAMES = 10  # audio the gateway sent ahead; older frames are dropped beyond it


def _ignore_event(event: LineEvent) -> None:
    del event


def _ignore_audio(frame: bytes) -> None:
    del frame


class SimulatedLine:
    """A simulated analog line and the exchange behind it, implementing LineCard.

    Durations are in seconds. `seed` makes noise and level variation reproducible (None: fresh
    entropy). The far party plays `far_audio` (a WAV file, any rate) if given, else a tone of
    `far_tone_hz` (None: silence). Call-progress tones play at the country's levels
    (`sim_signals.TONE_LEVELS_DBM0`) unless `tone_level_dbm0` sets one for all. Outbound
    numbers are complete `interdigit_timeout` after the last digit, or as soon as
    `number_length` digits arrived.
    """

    def __init__(
        self,
        country: str = "US",
        *,
        seed: int | None = 0,
        echo: bool = True,
        echo_delay: float = 0.008,
        echo_gain_db: float = -9.0,
        echo_taps: Sequence[float] = HYBRID_TAPS,
        noise_dbm0: float | None = -70.0,
        level_variation_db: float = 1.0,
        far_tone_hz: float | None = 1000.0,
        far_level_dbm0: float = -15.0,
        far_audio: str | Path | None = None,
        tone_level_dbm0: float | None = None,
        decode_caller_id: bool = False,
        give_up_after_rings: int = 8,
        interdigit_timeout: float = 3.0,
        number_length: int | None = None,
        answer_after: float | None = None,
        dial_tone_delay: float = 0.1,
        dial_tone_after_clear: float | None = None,
        polarity_on_answer: bool = False,
        wall_clock: Callable[[], dt.datetime] = dt.datetime.now,
        ticker: TickSource | None = None,
    ) -> None:
        key = country.upper()
        if key not in RING_CADENCES:
            have = ", ".join(RING_CADENCES)
            raise ValueError(f"no simulated exchange for {country!r} (have {have})")
        if give_up_after_rings < 1:
            raise ValueError("the caller waits for at least one ring")
        if number_length is not None and number_length < 1:
            raise ValueError("number_length must be at least 1")
        self.country = key
        self.on_event: EventHandler = _ignore_event
        self.on_audio: AudioHandler = _ignore_audio
        self.decode_caller_id = decode_caller_id
        self.give_up_after_rings = give_up_after_rings
        self.interdigit_timeout = interdigit_timeout
        self.number_length = number_length
        self.answer_after = answer_after
        self.dial_tone_delay = dial_tone_delay
        self.dial_tone_after_clear = dial_tone_after_clear
        self.polarity_on_answer = polarity_on_answer
        self._far_tone_hz = far_tone_hz
        self._tone_level_dbm0 = tone_level_dbm0
        self._far_level_dbm0 = far_level_dbm0
        self._recording = load_recording(far_audio) if far_audio is not None else None
        self._wall_clock = wall_clock
        self._ticker: TickSource = ticker if ticker is not None else AsyncioTicker()
        rng = np.random.default_rng(seed)
        self._noise = LineNoise(rng, noise_dbm0)
        self._wander = LevelWander(rng, level_variation_db)
        self._hybrid = (
            HybridEcho(delay_s=echo_delay, gain_db=echo_gain_db, taps=echo_taps) if echo else None
        )
        self._opened = False
        self._frame = 0
        self._timers: dict[str, int] = {}
        self._off_hook = False
        self._flash_waiter: asyncio.Future[None] | None = None
        self._flashing = False
        self._voltage = True
        self._phase = Phase.IDLE
        self._direction: str | None = None
        self._caller: tuple[str | None, str | None] = (None, None)  # of the last inbound call
        self._source: FrameSource | None = None
        self._ringing: RingingCall | None = None
        self._rings = 0
        self._sent = bytearray()
        self._receiver = self._new_receiver()
        self._armed: str | None = None  # the far end's answer to a number still being dialled
        self._silent_until = 0  # frame where a loop-current drop ends
        self._drop_seconds = 0.0
        self._busy_after_drop = False
        self._flashes = 0
        self._reversed = False  # by a DT-AS caller ID; restored when the call ends

    # --- LineCard -----------------------------------------------------------------------------

    async def open(self) -> None:
        if not self._opened:
            self._opened = True
            self._ticker.start(self.step)

    async def close(self) -> None:
        self._go_on_hook()
        if self._opened:
            self._opened = False
            self._ticker.stop()

    async def off_hook(self) -> None:
        self._go_off_hook()

    async def on_hook(self) -> None:
        self._go_on_hook()

    async def hook_flash(self, seconds: float = 0.6) -> None:
        """On hook for `seconds` of simulated time (the tick source must be stepping), then off
        hook again, and returns then. In a call the call stays (the flash is counted);
        otherwise the exchange gives dial tone anew."""
        if not self._off_hook or self._flashing:
            return
        self._flashing = True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flash_waiter = waiter
        self._set_timer("flash_end", max(1, frames(seconds)))
        await waiter

    def send_audio(self, frame: bytes) -> None:
        """Queue audio for the line (played from the next tick on); dropped while on hook."""
        if len(frame) % 2:
            raise ValueError("audio is 16-bit samples: an even number of bytes")
        if not self.is_off_hook:
            return
        self._sent += frame
        excess = len(self._sent) - MAX_QUEUED_FRAMES * FRAME_BYTES
        if excess > 0:
            del self._sent[:excess]

    @property
    def is_off_hook(self) -> bool:
        return self._off_hook and not self._flashing

    # --- time ---------------------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Simulated seconds: frames stepped times 20 ms."""
        return self._frame * FRAME_SECONDS

    def advance(self, seconds: float) -> None:
        """Step as many frames as make `seconds` (for tests and tools with no event loop)."""
        for _ in range(frames(seconds)):
            self.step()

    def step(self) -> None:
        """One 20 ms frame: due timers (rings, tones, answers...), the DTMF receiver on what
        the gateway sent, then the frame heard on the line."""
        sent = self._take_sent()
        self._run_timers()
        if self.is_off_hook:
            self._listen(sent)
            self.on_audio(self._off_hook_frame(sent))
        elif self._ringing is not None:
            self._alert(self._ringing)
        self._frame += 1

    # --- what the tests and the control server do ---------------------------------------------

    def place_inbound_call(
        self,
        number: str | None = None,
        name: str | None = None,
        *,
        standard: str | None = None,
        caller_id_format: str = "mdmf",
        rings: int | None = None,
        absence_reason: str | None = None,
        datetime: str | None = None,
    ) -> None:
        """Ring the line. Caller ID is sent when there is a number, a name or an absence reason
        ('O' out of area, 'P' private): `standard` 'bell202' / 'v23' (FSK between ring 1 and
        ring 2), 'v23-dtas' (polarity reversal, DT-AS and V.23 before ring 1, BT SIN 227) or
        'dtmf' (CLIP before ring 1), default per country; `datetime` MMDDHHMM defaults to the
        wall clock. The caller gives up after `rings` rings."""
        if not self._voltage:
            raise SimulatedLineError("no line voltage")
        if self._off_hook:
            raise SimulatedLineError("the line is off hook: the caller hears busy")
        if self._phase is Phase.RINGING:
            raise SimulatedLineError("a call is already ringing")
        burst = None
        if number is not None or name is not None or absence_reason is not None:
            stamp = datetime if datetime is not None else self._wall_clock().strftime("%m%d%H%M")
            burst = caller_id_burst(
                standard=standard or DEFAULT_CALLER_ID_STANDARD[self.country],
                caller_id_format=caller_id_format,
                number=number,
                name=name,
                absence_reason=absence_reason,
                datetime=stamp,
            )
        self._ringing = RingingCall(
            cadence=RING_CADENCES[self.country],
            rings=self.give_up_after_rings if rings is None else rings,
            burst=burst,
        )
        self._phase = Phase.RINGING
        self._direction = "inbound"
        self._caller = (number, name)
        self._rings = 0

    def far_end_answer(self) -> None:
        """The called party answers: now if ringing back, else as soon as dialling ends."""
        if self._phase is Phase.RINGBACK:
            self._far_end_answers()
        elif self._phase in (Phase.DIAL_TONE, Phase.DIALLING):
            self._armed = "answer"
        else:
            raise SimulatedLineError(f"no outbound call to answer (the line is {self._phase})")

    def far_end_busy(self, *, congestion: bool = False) -> None:
        """The called party is busy (or the network congested): now, or when dialling ends."""
        outcome = CONGESTION if congestion else BUSY
        if self._phase is Phase.RINGBACK:
            self._busy(outcome)
        elif self._phase in (Phase.DIAL_TONE, Phase.DIALLING):
            self._armed = outcome
        else:
            raise SimulatedLineError(f"no outbound call to refuse (the line is {self._phase})")

    def far_end_hangup(
        self, signal: str | Sequence[str] | None = None, *, loop_drop_seconds: float = 0.6
    ) -> None:
        """The far party hangs up. `signal`: 'loop_drop' (LoopCurrentDrop once the current is
        back), 'busy_tone' (the country's busy cadence), 'polarity' (PolarityReversal), or
        several; None: the country's usual one. While ringing: the caller gives up."""
        signals = self._disconnect_signals(signal)
        if self._phase is Phase.RINGING:
            self._abandon_inbound()
            return
        if self._phase is not Phase.CONNECTED:
            raise SimulatedLineError(f"no answered call to hang up (the line is {self._phase})")
        self._phase = Phase.CLEARED
        self._source = None
        if POLARITY in signals or self._reversed:
            self._reversed = False  # a reversed line is restored: one reversal either way
            self.on_event(PolarityReversal())
        if LOOP_DROP in signals:
            self._silent_until = self._frame + frames(loop_drop_seconds)
            self._drop_seconds = loop_drop_seconds
            self._busy_after_drop = BUSY_TONE in signals
            self._set_timer("loop_drop_end", frames(loop_drop_seconds))
        elif BUSY_TONE in signals:
            self._source = self._tone(BUSY)
        if self.dial_tone_after_clear is not None:
            self._set_timer("clear_dial_tone", frames(self.dial_tone_after_clear))

    def dialled_digits(self) -> str:
        """The digits heard in the gateway's audio on the current (or last) outbound call."""
        return "".join(self._receiver.number)

    def line_voltage_lost(self) -> None:
        """The cable is pulled: any call is gone, nothing rings, no tones."""
        if not self._voltage:
            return
        self._voltage = False
        events = self._ringing.stop() if self._ringing is not None else []
        self._clear_call(keep=("flash_end",))
        self._reversed = False
        self._phase = Phase.DEAD if self._off_hook else Phase.IDLE
        for event in [*events, LineVoltageLost()]:
            self.on_event(event)

    def line_voltage_restored(self) -> None:
        if self._voltage:
            return
        self._voltage = True
        self._phase = Phase.IDLE
        self.on_event(LineVoltageRestored())
        if self._off_hook:
            self._start_dial_tone()

    def state(self) -> SimState:
        return SimState(
            country=self.country,
            now=round(self.now, 3),
            line_voltage=self._voltage,
            off_hook=self.is_off_hook,
            phase=str(self._phase),
            ringing=self._phase is Phase.RINGING,
            ring_on=self._ringing is not None and self._ringing.ring_on,
            rings=self._ringing.rings_started if self._ringing is not None else self._rings,
            in_call=self._phase is Phase.CONNECTED,
            direction=self._direction,
            caller_number=self._caller[0],
            caller_name=self._caller[1],
            digits=self.dialled_digits(),
            digits_in_call="".join(self._receiver.after),
            flashes=self._flashes,
        )

    # --- timers -------------------------------------------------------------------------------

    def _set_timer(self, name: str, frames_from_now: int) -> None:
        self._timers[name] = self._frame + frames_from_now

    def _cancel(self, *names: str) -> None:
        for name in names:
            self._timers.pop(name, None)

    def _run_timers(self) -> None:
        handlers: dict[str, Callable[[], None]] = {
            "dial_tone": self._on_dial_tone,
            "answer": self._on_answer_timer,
            "loop_drop_end": self._on_loop_drop_end,
            "clear_dial_tone": self._on_clear_dial_tone,
            "flash_end": self._on_flash_end,
        }
        while True:
            due = [(frame, name) for name, frame in self._timers.items() if frame <= self._frame]
            if not due:
                return
            _, name = min(due)
            del self._timers[name]
            handlers[name]()

    # --- inbound ------------------------------------------------------------------------------

    def _alert(self, ringing: RingingCall) -> None:
        tick = ringing.tick()
        if tick.gave_up:  # nobody answered
            self._clear_call(keep=tuple(self._timers))
            self._phase = Phase.IDLE
        for event in tick.events:
            if isinstance(event, PolarityReversal):
                self._reversed = True
            self.on_event(event)
        if tick.gave_up:
            self._restore_polarity()
        if tick.audio is not None:
            signal = tick.audio * self._wander.gains() + self._noise.frame()
            self.on_audio(to_pcm16(signal).tobytes())
        if tick.caller_id is not None and self.decode_caller_id:
            self.on_event(tick.caller_id)

    def _abandon_inbound(self) -> None:
        events = self._ringing.stop() if self._ringing is not None else []
        self._clear_call()
        self._phase = Phase.IDLE
        for event in events:
            self.on_event(event)
        self._restore_polarity()

    def _restore_polarity(self) -> None:
        """The call that reversed the line for its caller ID is over: normal polarity again."""
        if self._reversed:
            self._reversed = False
            self.on_event(PolarityReversal())

    def _answer_inbound(self) -> None:
        events = self._ringing.stop() if self._ringing is not None else []  # ring trip
        self._clear_call()
        self._direction = "inbound"
        self._receiver = self._new_receiver()
        self._receiver.end_number()  # digits heard now are for whoever answered, not a number
        self._connect()
        for event in events:
            self.on_event(event)

    # --- outbound -----------------------------------------------------------------------------

    def _start_dial_tone(self) -> None:
        self._clear_call(keep=("flash_end",))
        self._phase = Phase.DIAL_TONE
        self._direction = "outbound"
        self._receiver = self._new_receiver()
        self._set_timer("dial_tone", frames(self.dial_tone_delay))

    def _on_dial_tone(self) -> None:
        if self._phase is Phase.DIAL_TONE:
            self._source = self._tone(DIAL)

    def _new_receiver(self) -> DigitReceiver:
        return DigitReceiver(
            interdigit_timeout=self.interdigit_timeout, number_length=self.number_length
        )

    def _listen(self, sent: Samples) -> None:
        complete = self._receiver.push(sent)
        if self._phase is Phase.DIAL_TONE and self._receiver.started:
            self._phase = Phase.DIALLING  # the first key silences dial tone
            self._source = None
            self._cancel("dial_tone")
        if complete:
            self._dialling_complete()

    def _dialling_complete(self) -> None:
        if self._phase is not Phase.DIALLING:
            return
        armed, self._armed = self._armed, None
        if armed in (BUSY, CONGESTION):
            self._busy(armed)
        elif armed == "answer":
            self._far_end_answers()
        else:
            self._phase = Phase.RINGBACK
            self._source = self._tone(RINGBACK)
            if self.answer_after is not None:
                self._set_timer("answer", frames(self.answer_after))

    def _on_answer_timer(self) -> None:
        if self._phase is Phase.RINGBACK:
            self._far_end_answers()

    def _far_end_answers(self) -> None:
        self._connect()
        if self.polarity_on_answer:
            self.on_event(PolarityReversal())

    def _busy(self, tone: str) -> None:
        self._cancel("answer")
        self._phase = Phase.BUSY
        self._source = self._tone(tone)

    # --- calls --------------------------------------------------------------------------------

    def _connect(self) -> None:
        self._cancel("answer")
        self._receiver.end_number()
        self._armed = None
        self._phase = Phase.CONNECTED
        self._source = self._far_party()

    def _tone(self, tone: str) -> ToneSource:
        return ToneSource.for_country(self.country, tone, level_dbm0=self._tone_level_dbm0)

    def _far_party(self) -> FrameSource | None:
        if self._recording is not None:
            return LoopedSamples(self._recording)
        if self._far_tone_hz is not None:
            return SineSource(self._far_tone_hz, self._far_level_dbm0)
        return None

    def _disconnect_signals(self, signal: str | Sequence[str] | None) -> tuple[str, ...]:
        if signal is None:
            return DEFAULT_DISCONNECT[self.country]
        signals = (signal,) if isinstance(signal, str) else tuple(signal)
        unknown = [s for s in signals if s not in DISCONNECT_SIGNALS]
        if unknown or not signals:
            raise ValueError(f"hang-up signals are {', '.join(DISCONNECT_SIGNALS)}")
        return signals

    def _on_loop_drop_end(self) -> None:
        if self._busy_after_drop and self._phase is Phase.CLEARED:
            self._source = self._tone(BUSY)
        self.on_event(LoopCurrentDrop(seconds=self._drop_seconds))

    def _on_clear_dial_tone(self) -> None:
        if self._phase is Phase.CLEARED and self.is_off_hook:
            self._start_dial_tone()

    def _clear_call(self, keep: tuple[str, ...] = ()) -> None:
        """Forget whatever call there was (timers, tones, caller ID), not the hook state."""
        self._timers = {name: frame for name, frame in self._timers.items() if name in keep}
        if self._ringing is not None:
            self._rings = self._ringing.rings_started
        self._ringing = None
        self._source = None
        self._armed = None
        self._silent_until = 0
        self._busy_after_drop = False

    # --- hook ---------------------------------------------------------------------------------

    def _go_off_hook(self) -> None:
        if self._off_hook:
            return
        self._off_hook = True
        self._begin_audio()
        if not self._voltage:
            self._phase = Phase.DEAD
        elif self._phase is Phase.RINGING:
            self._answer_inbound()
        else:
            self._start_dial_tone()

    def _go_on_hook(self) -> None:
        if not self._off_hook:
            return
        self._off_hook = False
        self._end_flash()
        self._clear_call()
        self._phase = Phase.IDLE
        self._sent.clear()
        self._restore_polarity()

    def _begin_audio(self) -> None:
        self._sent.clear()
        if self._hybrid is not None:
            self._hybrid.reset()

    def _on_flash_end(self) -> None:
        self._end_flash()
        self._begin_audio()
        if self._phase is Phase.CONNECTED:
            self._flashes += 1
        elif self._voltage:
            self._start_dial_tone()  # recall: a fresh dial tone

    def _end_flash(self) -> None:
        self._flashing = False
        self._cancel("flash_end")
        waiter, self._flash_waiter = self._flash_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- audio --------------------------------------------------------------------------------

    def _take_sent(self) -> Samples:
        chunk = bytes(self._sent[:FRAME_BYTES])
        del self._sent[:FRAME_BYTES]
        samples = np.frombuffer(chunk, dtype="<i2").astype(np.float64)
        if samples.size < FRAME_SAMPLES:
            samples = np.concatenate((samples, np.zeros(FRAME_SAMPLES - samples.size)))
        return samples

    def _off_hook_frame(self, sent: Samples) -> bytes:
        if self._phase is Phase.DEAD:
            return bytes(FRAME_BYTES)
        echo = self._hybrid.frame(sent) if self._hybrid is not None else None
        if self._frame < self._silent_until:
            return to_pcm16(self._noise.frame()).tobytes()  # no loop current, no audio path
        signal = self._noise.frame()
        if self._source is not None:
            signal = signal + self._source.frame() * self._wander.gains()
        if echo is not None:
            signal = signal + echo
        return to_pcm16(signal).tobytes()
