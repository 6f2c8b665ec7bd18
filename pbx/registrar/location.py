"""The location service in memory: current bindings per address of record, with expiry.

The switch reads it on every call and writes it on every REGISTER, so it lives in memory;
every change is also written to the store (by the edge, in batches) so bindings survive a
restart. Pure: time is an argument, and expiry is a deadline it reports.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator

from pbx.sip.errors import SipParseError
from pbx.sip.uri import parse_sip_uri
from pbx.store.records import Binding


class Location:
    """Bindings by AOR and binding key; ``expire(now)`` removes the ones whose time is up."""

    def __init__(self, bindings: Iterable[Binding] = ()) -> None:
        self._by_aor: dict[str, dict[str, Binding]] = {}
        # (expires_at, aor, key): entries go stale when a binding is refreshed or removed and
        # are skipped when popped; the heap is rebuilt when stale entries dominate.
        self._expiry: list[tuple[float, str, str]] = []
        self._count = 0
        for binding in bindings:
            self.put(binding)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Binding]:
        for bindings in self._by_aor.values():
            yield from bindings.values()

    def bindings_of(self, aor: str) -> list[Binding]:
        return list(self._by_aor.get(aor, {}).values())

    def get(self, aor: str, binding_key: str) -> Binding | None:
        return self._by_aor.get(aor, {}).get(binding_key)

    def aors(self) -> list[str]:
        return list(self._by_aor)

    def put(self, binding: Binding) -> None:
        bindings = self._by_aor.setdefault(binding.aor, {})
        if binding.binding_key not in bindings:
            self._count += 1
        bindings[binding.binding_key] = binding
        heapq.heappush(self._expiry, (binding.expires_at, binding.aor, binding.binding_key))
        if len(self._expiry) > 4 * self._count + 64:
            self._rebuild_heap()

    def remove(self, aor: str, binding_key: str) -> Binding | None:
        bindings = self._by_aor.get(aor)
        if not bindings or binding_key not in bindings:
            return None
        removed = bindings.pop(binding_key)
        self._count -= 1
        if not bindings:
            del self._by_aor[aor]
        return removed

    def remove_aor(self, aor: str) -> list[Binding]:
        removed = list(self._by_aor.pop(aor, {}).values())
        self._count -= len(removed)
        return removed

    def next_deadline(self) -> float | None:
        while self._expiry:
            expires_at, aor, key = self._expiry[0]
            current = self.get(aor, key)
            if current is not None and current.expires_at == expires_at:
                return expires_at
            heapq.heappop(self._expiry)
        return None

    def expire(self, now: float) -> list[Binding]:
        """Remove and return every binding whose expiry is at or before ``now``."""
        gone: list[Binding] = []
        while self._expiry and self._expiry[0][0] <= now:
            expires_at, aor, key = heapq.heappop(self._expiry)
            current = self.get(aor, key)
            if current is not None and current.expires_at == expires_at:
                self.remove(aor, key)
                gone.append(current)
        return gone

    def _rebuild_heap(self) -> None:
        self._expiry = [(b.expires_at, b.aor, b.binding_key) for b in self]
        heapq.heapify(self._expiry)


def reach(binding: Binding) -> tuple[str, int]:
    """Where to send requests for ``binding``: the phone's Contact, unless it is behind a NAT.

    A Contact whose IP is not the address the REGISTER came from names a private address
    (RFC 3581 territory): then the received address and port are used. A stream transport
    always goes back to where the connection came from. Otherwise the Contact is honoured,
    so a phone (or SIPp) that registers from one port and listens on another is reached.
    """
    source = (binding.received_host, binding.received_port)
    if binding.transport != "UDP":
        return source
    try:
        uri = parse_sip_uri(binding.contact)
    except SipParseError:
        return source
    host = uri.host[1:-1] if uri.host.startswith("[") else uri.host
    if host != binding.received_host:
        return source
    return (host, uri.port or 5060)
