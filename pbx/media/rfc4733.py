"""Telephone-event payloads (RFC 4733 §2.3): DTMF digits and other named events sent as RTP.

The relay only rewrites their payload type between the legs; this module is for whoever needs
the digits (IVR, voicemail, the features code) and for tests. Pure.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

PAYLOAD_SIZE = 4
"""RFC 4733 §2.3: event (8 bits), E, R, volume (6 bits), duration (16 bits)."""

DTMF_EVENTS = "0123456789*#ABCD"
"""RFC 4733 §3.2, Table 3: events 0-15 are the DTMF digits, in this order."""

_PAYLOAD = struct.Struct("!BBH")


class TelephoneEventError(ValueError):
    """Bytes that are not a telephone-event payload."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One RFC 4733 §2.3 payload."""

    event: int
    end: bool = False
    """E bit: the last packets of this event (RFC 4733 §2.5.1.4 sends it three times)."""
    volume: int = 10
    """Power level in -dBm0, 0-63 (§2.3.4); DTMF senders use 0-36."""
    duration: int = 0
    """In timestamp units since the event's RTP timestamp (§2.3.5)."""
    reserved: bool = False
    """R bit: senders set it to zero, receivers ignore it; kept so bytes round-trip."""

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event {self.event} is not 8 bits")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} is not 6 bits")
        if not 0 <= self.duration <= 0xFFFF:
            raise ValueError(f"duration {self.duration} is not 16 bits")

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> TelephoneEvent:
        """The event in an RTP payload, or :class:`TelephoneEventError`."""
        if len(data) != PAYLOAD_SIZE:
            raise TelephoneEventError(f"a telephone-event payload is 4 bytes, not {len(data)}")
        event, flags, duration = _PAYLOAD.unpack(bytes(data))
        return cls(
            event=event,
            end=bool(flags & 0x80),
            reserved=bool(flags & 0x40),
            volume=flags & 0x3F,
            duration=duration,
        )

    def __bytes__(self) -> bytes:
        flags = (0x80 if self.end else 0) | (0x40 if self.reserved else 0) | self.volume
        return _PAYLOAD.pack(self.event, flags, self.duration)

    @property
    def digit(self) -> str | None:
        """The DTMF digit this event stands for, or None for other events."""
        return DTMF_EVENTS[self.event] if self.event < len(DTMF_EVENTS) else None


def event_for_digit(digit: str) -> int:
    """The RFC 4733 event number of a DTMF digit (``0-9 * # A-D``)."""
    index = DTMF_EVENTS.find(digit.upper()) if len(digit) == 1 else -1
    if index < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit")
    return index
