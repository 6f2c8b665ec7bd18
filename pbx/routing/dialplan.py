"""Where a dialled number goes: an extension, out on the phone line, or nowhere (and why).

Pure. Toll-fraud protection is here because it is the most expensive PBX failure: calls out
need the caller's outbound permission, and blocked prefixes (international, premium rate)
are refused unless the admin takes them off the list. Emergency numbers always go out.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

EMERGENCY = {
    "US": ("911",),
    "UK": ("999", "112"),
    "FR": ("112", "15", "17", "18"),
    "DE": ("112", "110"),
}
DEFAULT_BLOCKED = ("00", "011", "1900", "900")
_DIALLABLE_RE = re.compile(r"[0-9*#]{1,32}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LinePlan:
    outside_prefix: str = "9"
    outbound_patterns: tuple[str, ...] = ()
    blocked_prefixes: tuple[str, ...] = DEFAULT_BLOCKED
    country: str = "US"

    @property
    def emergency(self) -> tuple[str, ...]:
        return EMERGENCY.get(self.country, ("112",))


@dataclass(frozen=True, slots=True)
class Route:
    kind: str
    """'extension', 'line' or 'reject'."""
    target: str = ""
    """The extension number, or the digits to dial on the line."""
    status: int = 0
    reason: str = ""


def split_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.replace(";", ",").split(",") if item.strip())


def matches(pattern: str, digits: str) -> bool:
    """Dial patterns: X any digit, N 2-9, Z 1-9, '.' one or more of anything after."""
    regex = ""
    for char in pattern:
        regex += {"X": "[0-9]", "N": "[2-9]", "Z": "[1-9]", ".": ".+"}.get(
            char.upper(), re.escape(char)
        )
    return re.fullmatch(regex, digits) is not None


def route_dialled(
    dialled: str,
    *,
    plan: LinePlan,
    is_extension: Callable[[str], bool],
    outbound_allowed: bool,
) -> Route:
    if is_extension(dialled):
        return Route("extension", dialled)
    digits: str | None = None
    if dialled in plan.emergency:
        return Route("line", dialled)
    prefix = plan.outside_prefix
    if prefix and dialled.startswith(prefix) and len(dialled) > len(prefix):
        digits = dialled[len(prefix) :]
        if digits in plan.emergency:
            return Route("line", digits)
    elif any(matches(p, dialled) for p in plan.outbound_patterns):
        digits = dialled
    if digits is None:
        return Route("reject", status=404, reason="Not Found")
    if not _DIALLABLE_RE.fullmatch(digits):
        return Route("reject", status=484, reason="Address Incomplete")
    if any(digits.startswith(blocked) for blocked in plan.blocked_prefixes):
        # Toll fraud protection: international and premium-rate calls need the admin's consent.
        return Route("reject", status=403, reason="Blocked Prefix")
    if not outbound_allowed:
        return Route("reject", status=403, reason="Outbound Calls Not Allowed")
    return Route("line", digits)
