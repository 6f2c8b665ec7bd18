"""The line card as the gateway sees it, whatever the hardware behind it.

A backend (``sim``, ``modem``, ``gpio``) drives the hook and reports what the line does as
events; audio flows both ways in 20 ms frames of 8 kHz signed 16-bit little-endian mono (160
samples, 320 bytes). The gateway's agent sets the two callbacks and calls the hook methods;
it never knows which backend it talks to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160
FRAME_BYTES = FRAME_SAMPLES * 2
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class RingStart:
    """Ring voltage appeared (one burst of the cadence)."""


@dataclass(frozen=True, slots=True)
class RingStop:
    """Ring voltage went away (between bursts, or for good)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdReceived:
    """Caller ID the backend decoded (or the modem reported): number/name may be None."""

    number: str | None
    name: str | None
    standard: str = "bell202"
    datetime: str | None = None
    absence_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LoopCurrentDrop:
    """Loop current went away for ``seconds`` while off hook: the far end often hung up."""

    seconds: float


@dataclass(frozen=True, slots=True)
class PolarityReversal:
    """The line reversed polarity (answer or disconnect signal, where provisioned)."""


@dataclass(frozen=True, slots=True)
class LineVoltageLost:
    """No line: the cable is out or the exchange is down."""


@dataclass(frozen=True, slots=True)
class LineVoltageRestored:
    """The line is back."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LineCardLost:
    """The device behind the card is gone (USB modem unplugged, read error): no line, and any
    call on it is over, until LineCardRestored."""

    reason: str


@dataclass(frozen=True, slots=True)
class LineCardRestored:
    """The device is back, initialized and on hook."""


LineEvent = (
    RingStart
    | RingStop
    | CallerIdReceived
    | LoopCurrentDrop
    | PolarityReversal
    | LineVoltageLost
    | LineVoltageRestored
    | LineCardLost
    | LineCardRestored
)

EventHandler = Callable[[LineEvent], None]
AudioHandler = Callable[[bytes], None]


class LineCardError(Exception):
    """The device behind the card is gone or refused a command the card cannot do without."""


class LineCard(Protocol):
    """What every backend offers. Methods are called from the gateway's event loop."""

    on_event: EventHandler
    """Called with every line event, in order."""
    on_audio: AudioHandler
    """Called with each 20 ms frame heard on the line (silence while on hook is not sent)."""

    async def open(self) -> None:
        """Take the device (or start the simulation); events may follow at once."""
        ...

    async def close(self) -> None:
        """Go on hook and release the device."""
        ...

    async def off_hook(self) -> None:
        """LineCardError when the device is gone."""
        ...

    async def on_hook(self) -> None: ...

    async def hook_flash(self, seconds: float = 0.6) -> None: ...

    def send_audio(self, frame: bytes) -> None:
        """One 20 ms frame (FRAME_BYTES) to play down the line while off hook."""
        ...

    @property
    def is_off_hook(self) -> bool: ...
