"""The media relay's two sides named by leg id.

The relay (``pbx.media.endpoint``) binds two sides a call, "a" and "b". Bridges and
applications name sides by their legs' opaque ids instead; this maps one to the other, so that
the forks of a call share side "b" until one answers, and nothing above knows the letters.
"""

from __future__ import annotations

from typing import Any

SIDES = ("a", "b")


class SideRelay:
    __slots__ = ("handle", "_sides", "_default")

    def __init__(self, handle: Any, sides: dict[str, str], *, default: str) -> None:
        self.handle = handle
        self._sides = dict(sides)
        self._default = default

    def name(self, leg: str, side: str) -> None:
        """From now on ``leg`` is relay side ``side``."""
        self._sides[leg] = side

    def side(self, leg: str) -> str:
        if leg in SIDES:
            return leg
        return self._sides.get(leg, self._default)

    def local_address(self, leg: str) -> tuple[str, int]:
        address: tuple[str, int] = self.handle.local_address(self.side(leg))
        return address

    def update(self, leg: str, **kwargs: Any) -> None:
        self.handle.update(self.side(leg), **kwargs)

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.handle.stats()
        return stats
