"""Built-in fail2ban: a source that keeps failing authentication is ignored for a while.

Pure: failures come in with ``now``; a new ban comes out for the edge to store (so it
survives a restart) and to show in ``pbx status``. The allow-list names the office's own
networks, which are never banned: a phone with a stale password must not lock out the
whole office behind one NAT address.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pbx.store.records import SourceBan

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """``"192.168.1.0/24, 10.0.0.7"`` -> networks; ValueError names the bad entry."""
    networks: list[Network] = []
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {item!r}") from None
    return tuple(networks)


@dataclass(frozen=True, slots=True, kw_only=True)
class GuardPolicy:
    failure_limit: int = 10
    window: float = 60.0
    ban_seconds: float = 3600.0
    allow: Sequence[Network] = ()
    max_tracked_sources: int = 10_000
    """Failure history is kept for at most this many sources (oldest forgotten first)."""


class SourceGuard:
    def __init__(self, policy: GuardPolicy | None = None) -> None:
        self.policy = policy or GuardPolicy()
        self._failures: dict[str, deque[float]] = {}
        self._bans: dict[str, SourceBan] = {}

    def is_banned(self, host: str, now: float) -> bool:
        """The hot path: called for every datagram and connection before parsing."""
        if not self._bans:
            return False
        ban = self._bans.get(host)
        if ban is None:
            return False
        if ban.until > now:
            return True
        del self._bans[host]
        return False

    def is_allowed(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.policy.allow)

    def record_failure(self, host: str, now: float, reason: str = "auth") -> SourceBan | None:
        """Count one failure; returns the new ban when this one crosses the limit."""
        policy = self.policy
        if self.is_allowed(host) or self.is_banned(host, now):
            return None
        times = self._failures.get(host)
        if times is None:
            if len(self._failures) >= policy.max_tracked_sources:
                del self._failures[next(iter(self._failures))]
            times = self._failures[host] = deque()
        times.append(now)
        while times and times[0] <= now - policy.window:
            times.popleft()
        if len(times) < policy.failure_limit:
            return None
        del self._failures[host]
        ban = SourceBan(
            address=host,
            banned_at=now,
            until=now + policy.ban_seconds,
            failures=len(times),
            reason=f"{len(times)} {reason} failures in {policy.window:g}s",
        )
        self._bans[host] = ban
        return ban

    def replace_bans(self, bans: Iterable[SourceBan]) -> None:
        """Take the stored bans as the truth (after a restart, or an unban from the CLI)."""
        self._bans = {ban.address: ban for ban in bans if not self.is_allowed(ban.address)}

    def bans(self, now: float) -> list[SourceBan]:
        return [ban for ban in self._bans.values() if ban.until > now]
