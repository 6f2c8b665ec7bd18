"""Session timers (RFC 4028) as the switch answers them, pure.

Phones that ask for session timers send ``Session-Expires`` (and often ``Require: timer``); the
switch accepts any interval of at least ``MIN_SE`` (90 s, §4), refuses shorter ones with 422 and
a ``Min-SE``, and says in its 2xx who refreshes: the phone when it supports timers and did not ask
otherwise (§9), else the switch. Whoever the refresher is, the switch itself re-checks each leg
with an UPDATE at least every half interval, which both refreshes the session (§10) and finds a
phone that has gone.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx.sip.errors import SipParseError
from pbx.sip.message import Request

MIN_SE = 90
"""The smallest interval the switch accepts, in seconds (RFC 4028 §4: at least 90)."""


@dataclass(frozen=True, slots=True)
class SessionTimer:
    interval: int
    """Seconds the session lasts without a refresh."""
    refresher: str
    """'uac' (the phone that sent the request refreshes) or 'uas' (the switch does)."""
    require: bool
    """The phone supports timers: the 2xx carries Require: timer (§9)."""

    def headers(self) -> list[tuple[str, str]]:
        """What a 2xx to the request carries."""
        out = [("Session-Expires", f"{self.interval};refresher={self.refresher}")]
        if self.require:
            out.append(("Require", "timer"))
        return out


@dataclass(frozen=True, slots=True)
class TooSmall:
    """The interval asked for is under our minimum: 422 with this Min-SE (§5)."""

    min_se: int

    def headers(self) -> list[tuple[str, str]]:
        return [("Min-SE", str(self.min_se))]


def _delta_seconds(text: str, what: str) -> int:
    text = text.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        raise SipParseError(f"Malformed {what} header")
    return int(text)


def parse_session_expires(value: str) -> tuple[int, str | None]:
    """``delta-seconds *(;se-params)`` → (seconds, refresher or None); 400 when malformed."""
    seconds, _, rest = value.partition(";")
    interval = _delta_seconds(seconds, "Session-Expires")
    refresher = None
    for param in rest.split(";") if rest else ():
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "refresher":
            refresher = param_value.strip().lower()
            if refresher not in ("uac", "uas"):
                raise SipParseError("Malformed Session-Expires header: refresher")
    return interval, refresher


def negotiate(request: Request, *, min_se: int = MIN_SE) -> SessionTimer | TooSmall | None:
    """What the switch answers to ``request``'s session-timer headers (None: no timer asked).

    The interval is the one asked for (§9: a UAS may only lower it, and the switch has no reason
    to); one under ``min_se`` gets 422 naming ours (§5)."""
    values = request.headers.get_all("session-expires")
    if not values:
        return None
    interval, refresher = parse_session_expires(values[0])
    if interval < min_se:
        return TooSmall(min_se)
    supports = "timer" in {t.lower() for t in request.option_tags("supported")} or "timer" in {
        t.lower() for t in request.option_tags("require")
    }
    if refresher is None:
        refresher = "uac" if supports else "uas"
    return SessionTimer(interval=interval, refresher=refresher, require=supports)


def refresh_interval(default: float, timer: SessionTimer | None) -> float:
    """How often the switch re-checks a call's legs: its own interval, or half the session's
    when that is shorter (§10: a refresh at half the interval keeps the session alive)."""
    if timer is None:
        return default
    return min(default, timer.interval / 2)
