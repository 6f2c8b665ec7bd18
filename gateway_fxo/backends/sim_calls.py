"""The simulated exchange's call model: its phases, the state snapshot it reports, and the two
parts of a call it runs frame by frame, an inbound call while it alerts (rings and caller ID)
and the digit receiver that listens to the gateway dial. Time is counted in frames ticked.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from gateway_fxo.backends.sim_signals import BurstPlayer, CallerIdBurst
from gateway_fxo.dsp.dtmf_detect import DtmfDetector
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples
from gateway_fxo.line import (
    FRAME_SAMPLES,
    FRAME_SECONDS,
    CallerIdReceived,
    LineEvent,
    PolarityReversal,
    RingStart,
    RingStop,
)

CID_AFTER_RING_S = 0.5  # GR-30-CORE / EN 300 659-1: the FSK starts >= 500 ms after ring 1 ends
CID_BEFORE_NEXT_RING_S = 0.2  # ... and ends >= 200 ms before ring 2
CLIP_TO_RING_S = 0.3  # DTMF CLIP: from its last key to the first ring
# BT SIN 227 / EN 300 659-1 6.1 (prior to ringing): polarity reversal, >= 100 ms, DT-AS, the FSK,
# then >= 200 ms before the first ring.
REVERSAL_TO_DTAS_S = 0.2
FSK_TO_RING_S = 0.3


LOOP_DROP = "loop_drop"
BUSY_TONE = "busy_tone"
POLARITY = "polarity"
DISCONNECT_SIGNALS = (LOOP_DROP, BUSY_TONE, POLARITY)
# How the far end's hang-up shows on each country's lines by default: DE and FR exchanges play
# the busy cadence as the disconnect tone; US and UK lines drop the loop current.
DEFAULT_DISCONNECT = {
    "US": (LOOP_DROP,),
    "UK": (LOOP_DROP,),
    "FR": (BUSY_TONE,),
    "DE": (BUSY_TONE,),
}


class SimulatedLineError(Exception):
    """What the line's present state does not allow (a call placed while off hook, an answer
    with no call ringing back)."""


class Phase(StrEnum):
    """Where the line is, as the exchange sees it."""

    IDLE = "idle"  # on hook, nothing happening
    RINGING = "ringing"  # an inbound call alerting: rings and caller ID
    DIAL_TONE = "dial_tone"  # off hook, waiting for the first digit
    DIALLING = "dialling"  # digits coming; the number is complete after a pause
    RINGBACK = "ringback"  # the called party's phone rings
    BUSY = "busy"  # the called party is busy (or the network is congested)
    CONNECTED = "connected"  # the far party is on the line
    CLEARED = "cleared"  # the far party hung up; the gateway is still off hook
    DEAD = "dead"  # off hook with no line voltage


@dataclass(frozen=True, slots=True, kw_only=True)
class SimState:
    """A snapshot for tests and the control server."""

    country: str
    now: float  # simulated seconds since the line was created
    line_voltage: bool
    off_hook: bool
    phase: str
    ringing: bool  # an inbound call is alerting
    ring_on: bool  # ring voltage is on right now
    rings: int  # ring cycles started by the current (or last) inbound call
    in_call: bool
    direction: str | None  # "inbound" / "outbound" for the current (or last) call
    caller_number: str | None  # the caller ID sent with the current (or last) inbound call
    caller_name: str | None
    digits: str  # dialled on the current (or last) outbound call
    digits_in_call: str  # heard after the number was complete
    flashes: int

    def as_json(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def frames(seconds: float) -> int:
    """Whole 20 ms frames in `seconds` (rounded)."""
    return max(0, round(seconds / FRAME_SECONDS))


@dataclass(slots=True)
class RingTick:
    """What one frame of an alerting call brings: ring events, caller ID audio (None: nothing on
    the line), the decoded caller ID once its burst has ended, and whether the caller gave up."""

    events: list[LineEvent] = field(default_factory=list)
    audio: Samples | None = None
    caller_id: CallerIdReceived | None = None
    gave_up: bool = False


class RingingCall:
    """An inbound call while it alerts: ring bursts on the country's cadence, caller ID before
    ring 1 (DTMF CLIP; or a polarity reversal, DT-AS and FSK) or between ring 1 and ring 2
    (FSK); the caller gives up when ring `rings + 1` would start."""

    def __init__(
        self, *, cadence: Sequence[float], rings: int, burst: CallerIdBurst | None
    ) -> None:
        if rings < 1:
            raise ValueError("the caller waits for at least one ring")
        if not cadence or len(cadence) % 2 or min(cadence) <= 0.0:
            raise ValueError("a ring cadence is on, off, on, off... periods")
        if burst is not None and not burst.before_ring:
            needed = CID_AFTER_RING_S + burst.samples.size / SAMPLE_RATE + CID_BEFORE_NEXT_RING_S
            if needed > cadence[-1]:
                raise ValueError("the caller ID message does not fit between ring 1 and ring 2")
        self._cadence = tuple(frames(s) for s in cadence)
        self.rings = rings
        self._burst = burst
        self._frame = 0
        self._segment = 0  # index into the cadence, counted over all cycles
        self._next_change = 0
        self._cid_at: int | None = None
        self._player: BurstPlayer | None = None
        if burst is not None and burst.polarity_reversal:
            self._cid_at = frames(REVERSAL_TO_DTAS_S)
            burst_frames = math.ceil(burst.samples.size / FRAME_SAMPLES)
            self._next_change = self._cid_at + burst_frames + frames(FSK_TO_RING_S)
        elif burst is not None and burst.before_ring:
            self._player = BurstPlayer(burst.samples)
            self._next_change = frames(burst.samples.size / SAMPLE_RATE + CLIP_TO_RING_S)
        self.ring_on = False
        self.rings_started = 0

    def tick(self) -> RingTick:
        result = RingTick()
        if self._frame == 0 and self._burst is not None and self._burst.polarity_reversal:
            result.events.append(PolarityReversal())
        if self._frame == self._next_change and self._cadence_step(result):
            return result
        if self._frame == self._cid_at and self._burst is not None:
            self._player = BurstPlayer(self._burst.samples)
        if self._player is not None:
            result.audio = self._player.frame()
            if self._player.done:
                self._player = None
                result.caller_id = self._burst.event if self._burst is not None else None
        self._frame += 1
        return result

    def stop(self) -> list[LineEvent]:
        """Answered or abandoned: the ring stops at once (ring trip) and so does caller ID."""
        self._player = None
        self._cid_at = None
        if self.ring_on:
            self.ring_on = False
            return [RingStop()]
        return []

    def _cadence_step(self, result: RingTick) -> bool:
        """Start or end a ring burst; True when the caller gives up instead."""
        cycle, k = divmod(self._segment, len(self._cadence))
        if k == 0 and cycle >= self.rings:
            result.gave_up = True
            return True
        self._segment += 1
        self._next_change = self._frame + self._cadence[k]
        if k % 2 == 0:
            self.ring_on = True
            if k == 0:
                self.rings_started += 1
            result.events.append(RingStart())
            return False
        self.ring_on = False
        result.events.append(RingStop())
        burst = self._burst
        if cycle == 0 and k == len(self._cadence) - 1 and burst and not burst.before_ring:
            self._cid_at = self._frame + frames(CID_AFTER_RING_S)
        return False


class DigitReceiver:
    """The exchange's DTMF receiver on the gateway's audio. The number is complete
    `interdigit_timeout` seconds after the last digit (the clock stops while a key is down) or
    when `number_length` digits arrived; digits after that are kept apart."""

    def __init__(self, *, interdigit_timeout: float, number_length: int | None) -> None:
        self._detector = DtmfDetector()
        self._timeout = max(1, frames(interdigit_timeout))
        self._length = number_length
        self._idle: int | None = None  # frames since the last digit ended
        self.number: list[str] = []
        self.after: list[str] = []
        self.complete = False

    @property
    def started(self) -> bool:
        """A key has been heard (dial tone stops at the first one)."""
        return bool(self.number) or self._detector.current is not None

    def end_number(self) -> None:
        """No (more) number to collect: an inbound call, or the far end answered early."""
        self.complete = True

    def push(self, sent: Samples) -> bool:
        """One frame the gateway sent; True in the frame the number becomes complete."""
        digits = [d.digit for d in self._detector.push(sent)]
        if self.complete:
            self.after += digits
            return False
        self.number += digits
        if self._detector.current is not None:
            self._idle = None
        elif digits:
            self._idle = 0
        elif self._idle is not None:
            self._idle += 1
        full = self._length is not None and len(self.number) >= self._length
        if full or (self._idle is not None and self._idle >= self._timeout):
            self.complete = True
            return True
        return False
