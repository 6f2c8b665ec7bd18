"""A message the UAS core sends again until something stops it (RFC 3261 §13.3.1.4 for a 2xx,
RFC 3262 §3 for a reliable provisional): T1 doubling up to a ceiling, a give-up after 64*T1.
"""

from __future__ import annotations

from dataclasses import dataclass

T1, T2 = 0.5, 4.0


@dataclass(slots=True, kw_only=True)
class Resend:
    """When ``message`` goes out again, and when waiting for its answer is given up."""

    interval: float
    ceiling: float
    next_at: float
    give_up_at: float

    @classmethod
    def start(cls, now: float, *, ceiling: float = T2, t1: float = T1) -> Resend:
        return cls(interval=t1, ceiling=ceiling, next_at=now + t1, give_up_at=now + 64 * t1)

    def deadline(self) -> float:
        return min(self.next_at, self.give_up_at)

    def due(self, now: float) -> str | None:
        """'give up', 'resend' (and the next one scheduled) or None when nothing is due."""
        if now >= self.give_up_at:
            return "give up"
        if now >= self.next_at:
            self.interval = min(self.interval * 2, self.ceiling)
            self.next_at = now + self.interval
            return "resend"
        return None
