"""Qualify: OPTIONS to every registered contact, now and then, to learn who is reachable.

Pure: ``due(now)`` says which bindings to probe and builds the OPTIONS for each; the edge
sends it through a client transaction and reports back the response (``answered``) or the
transaction's failure (``failed``). Each probe goes to where the phone really is (the
received address, RFC 3581), since the Contact may be a private address behind NAT.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from zlib import crc32

from pbx.registrar.location import Location, reach
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, make_request
from pbx.sip.transaction import MAGIC_COOKIE
from pbx.sip.uri import SipUri, parse_uri
from pbx.store.records import Binding
from pbx.transport.flow import Destination


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """Send ``request`` to ``destination`` in a client transaction."""

    request: Request
    destination: Destination
    aor: str
    binding_key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Reachability:
    """A binding's new reachability, to record in the store."""

    aor: str
    binding_key: str
    reachable: bool
    rtt_ms: float | None
    at: float


@dataclass(slots=True)
class _Pending:
    aor: str
    binding_key: str
    sent_at: float


class Qualifier:
    """Schedules one probe per binding every ``interval`` seconds, spread out over time."""

    def __init__(
        self,
        *,
        location: Location,
        interval: float,
        local_host: Callable[[str], tuple[str, int]],
        new_token: Callable[[], str],
        user_agent: str = "Switchboard",
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self._location = location
        self.interval = interval
        self._local = local_host
        self._token = new_token
        self._user_agent = user_agent
        self._next: dict[tuple[str, str], float] = {}
        self._pending: dict[str, _Pending] = {}
        self._pending_idents: set[tuple[str, str]] = set()

    def due(self, now: float) -> list[Probe]:
        probes: list[Probe] = []
        seen: set[tuple[str, str]] = set()
        for binding in self._location:
            ident = (binding.aor, binding.binding_key)
            seen.add(ident)
            next_at = self._next.get(ident)
            if next_at is None:
                # A binding that just registered was reachable a moment ago; its first probe
                # comes at a point within the first interval that depends on its identity,
                # so a storm of registrations does not turn into a storm of OPTIONS.
                spread = (crc32(repr(ident).encode()) % 1000) / 1000.0
                self._next[ident] = now + min(self.interval, 1.0 + spread * self.interval)
                continue
            if next_at > now or self._is_pending(ident):
                continue
            self._next[ident] = now + self.interval
            probe = self._probe(binding, now)
            if probe is not None:
                probes.append(probe)
        for gone in set(self._next) - seen:
            del self._next[gone]
        return probes

    def next_deadline(self) -> float | None:
        return min(self._next.values(), default=None)

    def answered(self, branch: str | None, status: int, now: float) -> Reachability | None:
        """Any response means the phone is there (even 404 or 405: it answered)."""
        pending = self._pending.pop(branch or "", None)
        if pending is None or status < 200:
            if pending is not None:
                self._pending[branch or ""] = pending  # wait for the final response
            return None
        self._pending_idents.discard((pending.aor, pending.binding_key))
        return Reachability(
            aor=pending.aor,
            binding_key=pending.binding_key,
            reachable=True,
            rtt_ms=round((now - pending.sent_at) * 1000.0, 1),
            at=now,
        )

    def failed(self, branch: str | None, now: float) -> Reachability | None:
        """Timer F or a transport error: unreachable."""
        pending = self._pending.pop(branch or "", None)
        if pending is None:
            return None
        self._pending_idents.discard((pending.aor, pending.binding_key))
        return Reachability(
            aor=pending.aor, binding_key=pending.binding_key, reachable=False, rtt_ms=None, at=now
        )

    def _is_pending(self, ident: tuple[str, str]) -> bool:
        return ident in self._pending_idents

    def _probe(self, binding: Binding, now: float) -> Probe | None:
        try:
            target = parse_uri(binding.contact)
        except SipParseError:
            return None
        if not isinstance(target, SipUri):
            return None
        host, port = self._local(binding.transport)
        token = self._token()
        branch = f"{MAGIC_COOKIE}{token}"
        shown = f"[{host}]" if ":" in host else host
        local = SipUri(host=shown, port=port)
        request = make_request(
            "OPTIONS",
            target,
            via=Via(
                transport=binding.transport,
                host=shown,
                port=port,
                params=(("branch", branch), ("rport", None)),
            ),
            from_=NameAddress(uri=local, params=(("tag", token[:16]),)),
            to=NameAddress(uri=target),
            call_id=f"qualify-{token}",
            cseq=1,
            headers=[("Route", hop) for hop in binding.path] + [("User-Agent", self._user_agent)],
        )
        self._pending[branch] = _Pending(binding.aor, binding.binding_key, now)
        self._pending_idents.add((binding.aor, binding.binding_key))
        return Probe(
            request=request,
            destination=Destination(
                transport=binding.transport,
                host=reach(binding)[0],
                port=reach(binding)[1],
            ),
            aor=binding.aor,
            binding_key=binding.binding_key,
        )
