"""A stateful proxy for out-of-dialog MESSAGE (RFC 3428 §7, RFC 3261 §16), without I/O.

A MESSAGE to an extension is forked to every reachable binding of it; the first 2xx goes back
upstream, otherwise the lowest final status once every branch has answered, a branch that
times out counting as 408. The proxy is the transaction user of one transaction layer: it takes
what the layer delivers (the request of a new server transaction, the responses and failures
of its client transactions) and says what to do with frozen outputs (answer on the server
transaction, send a request on a new client transaction, count a failed authentication).
Retransmissions never reach it: the server transaction absorbs them and answers a copy with the
response it keeps (§17.2.2), which is why a lost 200 is answered again, not forwarded again.

There is no timer here: every branch ends by its client transaction's Timer F, and for a
non-INVITE request there is no Timer C (§16.6 step 11). Branch ids, tags and nonce salts come
in as callables; the clock as the ``now`` of each call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pbx.routing.admission import Address, Refusal, authenticate, loop_check
from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator
from pbx.sip.errors import SipParseError
from pbx.sip.headers import Via
from pbx.sip.message import Request, Response, make_response, without_top_via
from pbx.sip.transaction import (
    MAGIC_COOKIE,
    ClientKey,
    DeliverMessage,
    LegacyServerKey,
    Output,
    ServerKey,
    TransactionTerminated,
    TransactionTimeout,
    TransportErrorReported,
)
from pbx.sip.uri import SipUri, parse_uri
from pbx.store.extensions import StoredSecrets
from pbx.store.records import Binding
from pbx.transport.flow import Destination, Flow

ServerTxKey = ServerKey | LegacyServerKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Respond:
    """Send ``response`` on server transaction ``key`` (which keeps it for retransmissions)."""

    key: ServerTxKey
    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """Send ``request`` on a new client transaction to ``destination``."""

    request: Request
    destination: Destination
    reliable: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailure:
    """``host`` sent credentials that failed: count it toward a ban (``source_guard``)."""

    host: str
    now: float


ProxyOutput = Respond | Forward | AuthFailure


@dataclass(frozen=True, slots=True, kw_only=True)
class ProxyPolicy:
    """Who the proxy is and what it asks of callers."""

    server: str = "Switchboard"
    default_offer: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,)


@dataclass(slots=True, eq=False)
class _Fork:
    """One MESSAGE in flight: its server transaction and the branches not answered yet."""

    key: ServerTxKey
    request: Request
    pending: set[ClientKey] = field(default_factory=set)
    failures: list[int] = field(default_factory=list)
    answered: bool = False


class MessageProxy:
    """Routes out-of-dialog MESSAGE requests to extensions' bindings (see the module doc).

    ``receive`` takes each output of the transaction layer that is not a send (the edge sends
    those) and returns what to do, in order. ``bindings_of`` and ``reach`` are the location
    (bindings of an extension, and where each is really reached); ``local`` is our address on
    a transport; ``is_extension`` says whether a number names a phone extension.
    """

    def __init__(
        self,
        *,
        authenticator: DigestAuthenticator,
        secrets_of: Callable[[str], StoredSecrets | None],
        is_extension: Callable[[str], bool],
        bindings_of: Callable[[str], Sequence[Binding]],
        reach: Callable[[Binding], Address],
        local: Callable[[str], Address],
        new_branch: Callable[[], str],
        new_tag: Callable[[], str],
        new_salt: Callable[[], bytes],
        policy: ProxyPolicy | None = None,
    ) -> None:
        self._auth = authenticator
        self._secrets_of = secrets_of
        self._is_extension = is_extension
        self._bindings_of = bindings_of
        self._reach = reach
        self._local = local
        self._new_branch = new_branch
        self._new_tag = new_tag
        self._new_salt = new_salt
        self.policy = policy or ProxyPolicy()
        self._branches: dict[ClientKey, _Fork] = {}

    def __len__(self) -> int:
        """Branches in flight (bounded: each ends by its transaction's Timer F at the latest)."""
        return len(self._branches)

    def receive(self, item: Output, now: float) -> list[ProxyOutput]:
        """One output of the transaction layer; ``now`` is wall time (for nonces)."""
        if isinstance(item, DeliverMessage):
            message, key = item.message, item.key
            if isinstance(message, Response) and isinstance(key, ClientKey):
                return self._on_response(key, message)
            if isinstance(message, Request) and isinstance(key, ServerKey | LegacyServerKey):
                try:
                    return self._on_request(key, message, item.source, now)
                except SipParseError as exc:  # a lazily parsed view was malformed
                    return [self._answer(key, message, exc.status, exc.reason)]
            return []  # an ACK (no transaction): nothing of ours
        ended = TransactionTimeout | TransportErrorReported | TransactionTerminated
        key = item.key if isinstance(item, ended) else None
        if isinstance(key, ClientKey) and key in self._branches:
            # A branch that ends without a final response counts as 408 (§16.7 steps 2 and 6).
            return self._settle(key, 408)
        return []

    # -- a new MESSAGE -----------------------------------------------------------------------
    def _on_request(
        self, key: ServerTxKey, request: Request, source: object, now: float
    ) -> list[ProxyOutput]:
        if request.method != "MESSAGE":
            return [self._answer(key, request, 405, headers=(("Allow", "MESSAGE"),))]
        if request.to.tag is not None:
            return [self._answer(key, request, 481)]  # dialogs are the call service's
        refusal = loop_check(request, self._local(request.top_via.transport))
        if refusal is None:
            caller = authenticate(
                request, authenticator=self._auth, secrets_of=self._secrets_of, now=now,
                new_salt=self._new_salt, default_offer=self.policy.default_offer,
            )  # fmt: skip
            refusal = caller if isinstance(caller, Refusal) else None
        if refusal is not None:
            out: list[ProxyOutput] = []
            if refusal.auth_failed and isinstance(source, Flow):
                out.append(AuthFailure(host=source.remote[0], now=now))
            out.append(self._answer(key, request, refusal.status, refusal.reason,
                                    headers=refusal.headers))  # fmt: skip
            return out
        uri = request.uri
        number = uri.user if isinstance(uri, SipUri) else None
        if not number or not self._is_extension(number):
            return [self._answer(key, request, 404)]  # to extensions only, not the line
        fork = _Fork(key=key, request=request)
        forwards = [f for b in self._reachable(number) if (f := self._forward(fork, b))]
        if not forwards:
            return [self._answer(key, request, 480, "Temporarily Unavailable")]
        return list(forwards)

    def _reachable(self, aor: str) -> list[Binding]:
        """The bindings to fork to; one that points back at us would loop."""
        local = self._local("UDP")
        return [b for b in self._bindings_of(aor) if self._reach(b) != local]

    def _forward(self, fork: _Fork, binding: Binding) -> Forward | None:
        """§16.6 for one binding: its contact as Request-URI, its Path as Route, our Via on
        top, Max-Forwards one less; the credentials we consumed and the Route to us go."""
        try:
            target = parse_uri(binding.contact)
        except SipParseError:
            return None
        request = fork.request
        via = self._via(binding.transport)
        max_forwards = request.max_forwards
        headers = request.headers.without("proxy-authorization").without("route")
        headers = headers.with_added("Via", str(via), first=True)
        headers = headers.with_set(
            "Max-Forwards", str(69 if max_forwards is None else max_forwards - 1)
        )
        for hop in reversed(binding.path):
            headers = headers.with_added("Route", hop, first=True)
        branch = ClientKey(via.branch or "", "MESSAGE")
        fork.pending.add(branch)
        self._branches[branch] = fork
        host, port = self._reach(binding)
        return Forward(
            request=Request(method="MESSAGE", uri=target, headers=headers, body=request.body),
            destination=Destination(transport=binding.transport, host=host, port=port),
            reliable=binding.transport != "UDP",
        )

    def _via(self, transport: str) -> Via:
        host, port = self._local(transport)
        shown = f"[{host}]" if ":" in host else host
        branch = f"{MAGIC_COOKIE}{self._new_branch()}"
        return Via(
            transport=transport, host=shown, port=port, params=(("branch", branch), ("rport", None))
        )

    # -- the branches' answers ---------------------------------------------------------------
    def _on_response(self, key: ClientKey, response: Response) -> list[ProxyOutput]:
        fork = self._branches.get(key)
        if fork is None or response.status < 200:
            return []  # a 1xx to a non-INVITE is not forwarded (RFC 4320 §4.1 in spirit)
        if response.status >= 300:
            return self._settle(key, response.status)
        del self._branches[key]
        fork.pending.discard(key)
        if fork.answered:
            return []  # a later 2xx: the sender has its answer
        fork.answered = True
        # §16.7 step 3; the answer the server transaction keeps (and resends to every
        # retransmission) keeps the sender's Vias even when the callee wrote them in one field.
        forwarded = without_top_via(response)
        if forwarded is not None:
            return [Respond(key=fork.key, response=forwarded)]
        # The callee dropped the sender's Via: answer the sender ourselves.
        return [self._answer(fork.key, fork.request, response.status, response.reason,
                             to_tag=response.to.tag)]  # fmt: skip

    def _settle(self, key: ClientKey, status: int) -> list[ProxyOutput]:
        """A branch failed with ``status``; when it was the last, the lowest status goes up."""
        fork = self._branches.pop(key)
        fork.pending.discard(key)
        fork.failures.append(status)
        if fork.answered or fork.pending:
            return []
        fork.answered = True
        return [self._answer(fork.key, fork.request, min(fork.failures))]

    def _answer(
        self,
        key: ServerTxKey,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        to_tag: str | None = None,
    ) -> Respond:
        response = make_response(
            request, status, reason, to_tag=to_tag or self._new_tag(),
            headers=[*headers, ("Server", self.policy.server)],
        )  # fmt: skip
        return Respond(key=key, response=response)
