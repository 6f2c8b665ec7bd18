"""The transaction layer (RFC 3261 §17.1.3, §17.2.3, §9): many transactions, one clock.

It matches each received message to its transaction (or makes a server
transaction for a new request), lets the TU send requests and responses,
builds and sends CANCELs (§9.1), reports the earliest deadline over all
transactions, and forgets a transaction as soon as it terminates, so memory
is bounded by the transactions in flight. Destinations are opaque: whatever
the transport passes with a received message comes back with what to send.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, replace

from pbx.sip.headers import Headers, Via
from pbx.sip.message import Request, Response
from pbx.sip.transaction import (
    MAGIC_COOKIE,
    ClientKey,
    DeliverMessage,
    LegacyServerKey,
    Output,
    ServerKey,
    Timer,
    TimerSettings,
    TransactionKey,
    TransactionState,
    TransportFailure,
)
from pbx.sip.transaction_client import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    ClientTransaction,
)
from pbx.sip.transaction_server import (
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    ServerTransaction,
)

AnyTransaction = ClientTransaction | ServerTransaction
"""Any of the four machines, as the layer holds them by key."""

# ---------------------------------------------------------------------------
# Matching (§17.1.3, §17.2.3)


def client_key(request: Request) -> ClientKey:
    """The key of the client transaction that sends ``request`` (our own branch)."""
    branch = request.top_via.branch
    if not branch or not branch.startswith(MAGIC_COOKIE):
        raise ValueError("a request we send needs a top Via branch starting with z9hG4bK")
    return ClientKey(branch, request.cseq.method)


def client_key_of_response(response: Response) -> ClientKey | None:
    """§17.1.3: top Via branch and CSeq method; None when the response has no branch."""
    branch = response.top_via.branch
    if not branch:
        return None
    return ClientKey(branch, response.cseq.method)


def server_key(request: Request, *, method: str | None = None) -> ServerKey | LegacyServerKey:
    """§17.2.3: the server transaction a request belongs to (or would create).

    An ACK maps to its INVITE's key; ``method`` overrides the method, e.g.
    INVITE to find the transaction a CANCEL cancels (§9.2). A branch without
    the magic cookie (RFC 2543) falls back to Request-URI, tags, Call-ID, CSeq
    number and top Via.
    """
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    via = request.top_via
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return ServerKey(branch, _sent_by(via), method)
    return LegacyServerKey(
        request_uri=request.uri.key(),
        from_tag=request.from_.tag,
        to_tag=request.to.tag,
        call_id=request.call_id,
        cseq=request.cseq.seq,
        via=_via_identity(via),
        method=method,
    )


def _sent_by(via: Via) -> str:
    return via.host_bare if via.port is None else f"{via.host_bare}:{via.port}"


def _via_identity(via: Via) -> str:
    # received/rport say where a copy came from, not which request it is.
    params = sorted(
        (name.lower(), value or "")
        for name, value in via.params
        if name.lower() not in ("received", "rport")
    )
    return f"{via.transport} {_sent_by(via)} {params}"


# ---------------------------------------------------------------------------
# CANCEL (§9)


def build_cancel(invite: Request) -> Request:
    """§9.1: a CANCEL for ``invite``.

    Same Request-URI, Call-ID, To, From and CSeq number as the INVITE, its top
    Via only (so the same branch: the CANCEL reaches the same server
    transaction), its Route header fields, and no Require or Proxy-Require.
    """
    if invite.method != "INVITE":
        raise ValueError("only an INVITE is cancelled")
    headers = invite.headers
    fields = [("Via", str(invite.top_via))]
    fields.append(("Max-Forwards", headers.get("max-forwards") or "70"))
    fields += [("Route", value) for value in headers.get_all("route")]
    fields.append(("From", headers.get("from") or str(invite.from_)))
    fields.append(("To", headers.get("to") or str(invite.to)))
    fields.append(("Call-ID", invite.call_id))
    fields.append(("CSeq", f"{invite.cseq.seq} CANCEL"))
    return Request(method="CANCEL", uri=invite.uri, headers=Headers(fields))


def invite_key_for_cancel(cancel: Request) -> ServerKey | LegacyServerKey:
    """§9.2: a CANCEL names the INVITE server transaction it cancels by the
    matching of §17.2.3, with the method taken as INVITE."""
    return server_key(cancel, method="INVITE")


# ---------------------------------------------------------------------------
# The layer


@dataclass(frozen=True, slots=True, kw_only=True)
class Incoming:
    """A message the transport received: with the flow it came over (opaque here,
    and where the responses go) and whether that transport is reliable (TCP/TLS)."""

    message: Request | Response
    source: object
    reliable: bool


class TransactionLayer:
    """All transactions of one element, matched, timed and freed in one place.

    The edge calls ``receive`` for every parsed message, ``handle_timer`` when
    ``next_deadline`` comes, and ``transport_error`` when a send fails; the TU
    calls ``send_request``, ``respond`` and ``cancel``. Every call returns the
    outputs to carry out, in order.
    """

    __slots__ = ("settings", "_transactions", "_scheduled", "_heap", "_pending_cancels", "_seq")

    def __init__(self, *, settings: TimerSettings | None = None) -> None:
        self.settings = settings if settings is not None else TimerSettings()
        self._transactions: dict[TransactionKey, AnyTransaction] = {}
        # Lazy timer heap: (deadline, tie-breaker, key); an entry counts only while
        # it equals the deadline recorded in _scheduled for that key.
        self._scheduled: dict[TransactionKey, float] = {}
        self._heap: list[tuple[float, int, TransactionKey]] = []
        self._pending_cancels: dict[TransactionKey, Request] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._transactions)

    def get(self, key: TransactionKey) -> AnyTransaction | None:
        return self._transactions.get(key)

    def state(self, key: TransactionKey) -> TransactionState | None:
        """The transaction's state, or None once it is terminated and forgotten."""
        transaction = self._transactions.get(key)
        return None if transaction is None else transaction.state

    # -- from the transport ---------------------------------------------------
    def receive(self, item: Incoming, now: float) -> list[Output]:
        message = item.message
        if isinstance(message, Response):
            return self._receive_response(message, item.source, now)
        return self._receive_request(message, item, now)

    def _receive_response(self, response: Response, source: object, now: float) -> list[Output]:
        key = client_key_of_response(response)
        transaction = self._transactions.get(key) if key is not None else None
        if not isinstance(transaction, ClientInviteTransaction | ClientNonInviteTransaction):
            # §18.1.2 as updated by RFC 6026 §8.1: a stray response is discarded.
            return []
        out = self._with_source(transaction.receive(response, now), source)
        if isinstance(transaction, ClientInviteTransaction):
            out += self._flush_pending_cancel(transaction, now)
        return self._after(transaction, out)

    def _receive_request(self, request: Request, item: Incoming, now: float) -> list[Output]:
        key = server_key(request)
        transaction = self._find_server(key, request)
        if transaction is not None:
            out = transaction.receive(request, now)
            return self._after(transaction, self._with_source(out, item.source))
        if request.method == "ACK":
            # The ACK for a 2xx (or for a transaction long gone) is the TU's (§17.2.3).
            return [DeliverMessage(message=request, key=None, source=item.source)]
        new: ServerTransaction
        kind = ServerInviteTransaction if request.method == "INVITE" else ServerNonInviteTransaction
        new = kind(
            request,
            key=key,
            destination=item.source,
            reliable=item.reliable,
            settings=self.settings,
        )
        self._transactions[key] = new
        return self._after(new, self._with_source(new.start(now), item.source))

    def _find_server(
        self, key: ServerKey | LegacyServerKey, request: Request
    ) -> ServerTransaction | None:
        transaction = self._transactions.get(key)
        if transaction is None and isinstance(key, LegacyServerKey) and request.method == "ACK":
            # RFC 2543 ACK: its To tag is the one our response added, not the INVITE's.
            transaction = self._transactions.get(replace(key, to_tag=None))
            if isinstance(transaction, ServerInviteTransaction) and (
                not transaction.responded or transaction.response_to_tag != request.to.tag
            ):
                transaction = None
        if isinstance(transaction, ServerInviteTransaction | ServerNonInviteTransaction):
            return transaction
        return None

    @staticmethod
    def _with_source(out: list[Output], source: object) -> list[Output]:
        return [
            replace(o, source=source) if isinstance(o, DeliverMessage) and o.source is None else o
            for o in out
        ]

    def transport_error(self, key: TransactionKey, now: float, reason: str = "") -> list[Output]:
        """The transport could not send a message of transaction ``key`` (§17.1.4, §17.2.4)."""
        transaction = self._transactions.get(key)
        if transaction is None:
            return []
        return self._after(transaction, transaction.receive(TransportFailure(reason=reason), now))

    # -- from the TU ----------------------------------------------------------
    def send_request(
        self, request: Request, destination: object, now: float, *, reliable: bool
    ) -> list[Output]:
        """Start a client transaction for ``request`` (its top Via branch is the key).

        An ACK for a 2xx is not a transaction (§17.1.1.3): the TU sends it itself.
        """
        key = client_key(request)
        if key in self._transactions:
            raise ValueError(f"a transaction with branch {key.branch!r} already exists")
        transaction: ClientInviteTransaction | ClientNonInviteTransaction
        kind = ClientInviteTransaction if request.method == "INVITE" else ClientNonInviteTransaction
        transaction = kind(
            request, key=key, destination=destination, reliable=reliable, settings=self.settings
        )
        self._transactions[key] = transaction
        return self._after(transaction, transaction.start(now))

    def respond(
        self, key: ServerKey | LegacyServerKey, response: Response, now: float
    ) -> list[Output]:
        """Send the TU's response on server transaction ``key``.

        Returns nothing when the transaction is gone (it ended on a transport
        error or a timer, which the TU was told about).
        """
        transaction = self._transactions.get(key)
        if not isinstance(transaction, ServerInviteTransaction | ServerNonInviteTransaction):
            return []
        return self._after(transaction, transaction.respond(response, now))

    def cancel(self, invite_key: ClientKey, now: float) -> list[Output]:
        """§9.1: cancel the INVITE of client transaction ``invite_key``.

        Without a provisional response yet the CANCEL waits for one (it must not
        be sent before); after a final response it is pointless and nothing is
        sent. The CANCEL runs in its own client transaction, key
        ``ClientKey(branch, "CANCEL")``.
        """
        transaction = self._transactions.get(invite_key)
        if not isinstance(transaction, ClientInviteTransaction):
            return []
        if transaction.state is TransactionState.CALLING:
            self._pending_cancels[invite_key] = build_cancel(transaction.request)
            return []
        if transaction.state is not TransactionState.PROCEEDING:
            return []
        return self._start_cancel(transaction, build_cancel(transaction.request), now)

    def find_invite_for_cancel(self, cancel: Request) -> ServerInviteTransaction | None:
        """§9.2: the INVITE server transaction a received CANCEL cancels, if any.

        The TU answers the CANCEL (200, or 481 without a match) and, when the
        INVITE has no final response yet, answers it with 487.
        """
        transaction = self._transactions.get(invite_key_for_cancel(cancel))
        return transaction if isinstance(transaction, ServerInviteTransaction) else None

    def _start_cancel(
        self, invite: ClientInviteTransaction, cancel: Request, now: float
    ) -> list[Output]:
        if (
            invite.timer_deadline(Timer.CANCEL) is not None
            or client_key(cancel) in self._transactions
        ):
            return []  # already cancelled
        out = self.send_request(cancel, invite.destination, now, reliable=invite.reliable)
        return out + self._after(invite, invite.cancel_sent(now))

    def _flush_pending_cancel(self, invite: ClientInviteTransaction, now: float) -> list[Output]:
        if invite.state is TransactionState.CALLING:
            return []
        cancel = self._pending_cancels.pop(invite.key, None)
        if cancel is None or invite.state is not TransactionState.PROCEEDING:
            return []
        return self._start_cancel(invite, cancel, now)

    # -- timers ---------------------------------------------------------------
    def next_deadline(self) -> float | None:
        """The earliest deadline over all transactions."""
        heap = self._heap
        while heap:
            deadline, _, key = heap[0]
            if self._scheduled.get(key) == deadline:
                return deadline
            heapq.heappop(heap)  # stale: re-armed, disarmed or terminated since
        return None

    def handle_timer(self, now: float) -> list[Output]:
        """Fire every timer due at ``now`` in every transaction, earliest first."""
        out: list[Output] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, _, key = heapq.heappop(heap)
            if self._scheduled.get(key) != deadline:
                continue
            del self._scheduled[key]
            transaction = self._transactions[key]
            fired = transaction.handle_timer(now)
            if isinstance(transaction, ClientInviteTransaction):
                fired += self._flush_pending_cancel(transaction, now)
            out += self._after(transaction, fired)
        return out

    def _after(self, transaction: AnyTransaction, out: list[Output]) -> list[Output]:
        """Reschedule or forget ``transaction`` after it produced ``out``."""
        key = transaction.key
        if transaction.terminated:
            self._forget(key)
            return out
        deadline = transaction.next_deadline()
        if deadline is None:
            self._scheduled.pop(key, None)
        elif self._scheduled.get(key) != deadline:
            self._scheduled[key] = deadline
            self._seq += 1
            heapq.heappush(self._heap, (deadline, self._seq, key))
            if len(self._heap) > 2 * len(self._scheduled) + 64:
                self._compact()
        return out

    def _forget(self, key: TransactionKey) -> None:
        self._transactions.pop(key, None)
        self._scheduled.pop(key, None)
        self._pending_cancels.pop(key, None)
        if not self._transactions:
            self._heap.clear()

    def _compact(self) -> None:
        """Drop stale heap entries so the heap stays proportional to live timers."""
        # In place: handle_timer may be iterating over this very list.
        self._heap[:] = [e for e in self._heap if self._scheduled.get(e[2]) == e[0]]
        heapq.heapify(self._heap)
