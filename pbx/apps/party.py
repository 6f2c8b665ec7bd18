"""Who is on a leg: the leg and the number it stands for (an extension, or the line's caller)."""

from __future__ import annotations

from dataclasses import dataclass

from pbx.calls.leg import Leg


@dataclass(frozen=True, slots=True, kw_only=True)
class Party:
    leg: Leg
    number: str
