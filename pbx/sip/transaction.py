"""SIP transactions (RFC 3261 §17 as updated by RFC 6026): the four state machines.

Each machine is sans-I/O: messages, TU responses and timer expiries go in
with the time ``now``; what to send and what to tell the TU comes out as a
list of outputs. Transitions are one table per machine, listing every
(state, input) pair, so nothing happens by accident. RFC 6026 is applied: a 2xx
to an INVITE takes both sides to "Accepted" (Timer M on the client, Timer L on
the server) instead of terminating, so retransmitted INVITEs and 2xx responses
are not mistaken for new ones.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from pbx.sip.headers import Headers
from pbx.sip.message import Message, Request, Response, make_response

MAGIC_COOKIE = "z9hG4bK"
"""§8.1.1.7: a branch starting with this was made by an RFC 3261 element."""


# ---------------------------------------------------------------------------
# Settings, keys, inputs and outputs


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerSettings:
    """T1, T2, T4 of §17.1.1.1 (Table 4) and the two durations not derived from them."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    timer_d: float = 32.0
    """§17.1.1.2: at least 32 s over an unreliable transport (zero over a reliable one)."""
    trying_delay: float = 0.2
    """§17.2.1: send 100 Trying unless the TU answers an INVITE within 200 ms."""

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2 or self.t4 <= 0:
            raise ValueError("timer settings need 0 < T1 <= T2 and T4 > 0")
        if self.timer_d < 0 or self.trying_delay < 0:
            raise ValueError("timer settings must not be negative")

    @property
    def sixty_four_t1(self) -> float:
        """Timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1


@dataclass(frozen=True, slots=True)
class ClientKey:
    """§17.1.3: a response belongs to the client transaction whose request had
    the same top Via branch and CSeq method (a CANCEL has its own transaction)."""

    branch: str
    method: str


@dataclass(frozen=True, slots=True)
class ServerKey:
    """§17.2.3 for a branch with the magic cookie: branch, sent-by and method
    (an ACK is looked up as INVITE, to find the INVITE transaction it acknowledges)."""

    branch: str
    sent_by: str
    method: str


@dataclass(frozen=True, slots=True)
class LegacyServerKey:
    """§17.2.3 for RFC 2543 requests (no magic cookie): Request-URI, tags,
    Call-ID, CSeq number, top Via, and method (ACK looked up as INVITE)."""

    request_uri: tuple[object, ...]
    from_tag: str | None
    to_tag: str | None
    call_id: str
    cseq: int
    via: str
    method: str


TransactionKey = ClientKey | ServerKey | LegacyServerKey


class TransactionState(enum.Enum):
    """The states of Figures 5-8 of §17 and RFC 6026's "Accepted"."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


class Timer(enum.Enum):
    """The timers of §17 (Table 4), RFC 6026's L and M, and two of our own names."""

    A = "A"
    B = "B"
    D = "D"
    E = "E"
    F = "F"
    G = "G"
    H = "H"
    I = "I"  # noqa: E741 - the RFC's name
    J = "J"
    K = "K"
    L = "L"
    M = "M"
    TRYING = "Trying"
    """§17.2.1: 100 Trying when the TU has not answered an INVITE in 200 ms."""
    CANCEL = "Cancel"
    """§9.1: 64*T1 after a CANCEL, an INVITE still without a final response is given up."""


class TransactionEvent(enum.Enum):
    """Inputs other than timers; a response is from the network on a client
    transaction and from the TU on a server transaction."""

    REQUEST = "request retransmission"
    ACK = "ACK"
    RESPONSE_1XX = "1xx"
    RESPONSE_2XX = "2xx"
    RESPONSE_300_699 = "300-699"
    CANCEL_SENT = "CANCEL sent"
    TRANSPORT_ERROR = "transport error"


Input = TransactionEvent | Timer


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailure:
    """An input: the transport could not send this transaction's last message (§17.1.4, §17.2.4)."""

    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class SendMessage:
    """Send ``message`` to ``destination``: whatever the transport gave with the
    request or the TU chose; opaque here. ``key`` names the sending transaction."""

    message: Message
    destination: object
    key: TransactionKey | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliverMessage:
    """Hand a message to the TU. ``key`` is None for one that belongs to no
    transaction (an ACK for a 2xx); ``source`` is the flow it came over, when known."""

    message: Message
    key: TransactionKey | None = None
    source: object = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimeout:
    """Timer B, F or H (or §9.1's CANCEL wait) fired: the TU must treat it as a 408."""

    key: TransactionKey
    timer: Timer


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportErrorReported:
    """§17.1.4 / §17.2.4: the transport failed; the TU decides what it means for the call."""

    key: TransactionKey
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTerminated:
    """The transaction is over; its key may be forgotten (and reused by a new request)."""

    key: TransactionKey


Output = (
    SendMessage
    | DeliverMessage
    | TransactionTimeout
    | TransportErrorReported
    | TransactionTerminated
)

Transitions = dict[tuple[TransactionState, Input], tuple[str, TransactionState]]
"""(state, input) -> (name of the action method, next state)."""


def classify_response(response: Response) -> TransactionEvent:
    if response.status < 200:
        return TransactionEvent.RESPONSE_1XX
    if response.status < 300:
        return TransactionEvent.RESPONSE_2XX
    return TransactionEvent.RESPONSE_300_699


# ---------------------------------------------------------------------------
# What the four machines share


class Transaction:
    """State, timers and the table-driven step of a transaction.

    Subclasses list their ``STATES``, ``INPUTS`` and ``TRANSITIONS``; every
    (state, input) pair is in the table, most of them "ignore". A transaction
    is made, then ``start(now)`` runs the arrow into its first state.
    """

    STATES: ClassVar[tuple[TransactionState, ...]]
    INPUTS: ClassVar[tuple[Input, ...]]
    TRANSITIONS: ClassVar[Transitions]
    _INVITE: ClassVar[bool]

    __slots__ = ("key", "request", "destination", "reliable", "settings", "_state", "_timers")

    def __init__(
        self,
        request: Request,
        *,
        key: TransactionKey,
        destination: object,
        reliable: bool,
        settings: TimerSettings | None = None,
    ) -> None:
        if (request.method == "INVITE") != self._INVITE or request.method == "ACK":
            raise ValueError(f"{type(self).__name__} cannot carry a {request.method}")
        self.key = key
        self.request = request
        self.destination = destination
        self.reliable = reliable
        self.settings = settings if settings is not None else TimerSettings()
        self._state = self.STATES[0]
        self._timers: dict[Timer, float] = {}

    @property
    def state(self) -> TransactionState:
        return self._state

    @property
    def terminated(self) -> bool:
        return self._state is TransactionState.TERMINATED

    def next_deadline(self) -> float | None:
        """The earliest armed timer, or None when nothing is pending."""
        return min(self._timers.values()) if self._timers else None

    def timer_deadline(self, timer: Timer) -> float | None:
        return self._timers.get(timer)

    def handle_timer(self, now: float) -> list[Output]:
        """Fire every timer due at ``now``, earliest first."""
        out: list[Output] = []
        while self._timers:
            timer, deadline = min(self._timers.items(), key=lambda item: item[1])
            if deadline > now:
                break
            del self._timers[timer]
            out += self._step(timer, now, timer)
        return out

    def _step(self, event: Input, now: float, item: object) -> list[Output]:
        action_name, target = self.TRANSITIONS[(self._state, event)]
        action: Callable[[float, object], list[Output]] = getattr(self, action_name)
        out = action(now, item)
        if target is not self._state:
            self._state = target
            if target is TransactionState.TERMINATED:
                self._timers.clear()
                out.append(TransactionTerminated(key=self.key))
        return out

    def process_input(self, event: Input, now: float, item: object = None) -> list[Output]:
        """One row of the table; ``item`` is the message or Timer of the input.

        ``receive``, ``respond`` and ``handle_timer`` are the usual way in; this
        is the table itself, for tests and tools. A zero-length timer (D, I, J,
        K over a reliable transport) fires at once.
        """
        out = self._step(event, now, item)
        if self._timers:
            out += self.handle_timer(now)
        return out

    def _arm(self, timer: Timer, now: float, delay: float) -> None:
        self._timers[timer] = now + delay

    def _disarm(self, *timers: Timer) -> None:
        for timer in timers:
            self._timers.pop(timer, None)

    def _wait(self, unreliable: float) -> float:
        """Timers D, I, J, K: only datagrams need to wait for stray retransmissions."""
        return 0.0 if self.reliable else unreliable

    # -- actions shared by all (signature: now, the input's message or timer) --
    def _ignore(self, now: float, item: object) -> list[Output]:
        return []

    def _send(self, message: Message) -> SendMessage:
        return SendMessage(message=message, destination=self.destination, key=self.key)

    def _deliver(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Request | Response)
        return [DeliverMessage(message=item, key=self.key)]

    def _timeout(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Timer)
        return [TransactionTimeout(key=self.key, timer=item)]

    def _transport_error(self, now: float, item: object) -> list[Output]:
        reason = item.reason if isinstance(item, TransportFailure) else ""
        return [TransportErrorReported(key=self.key, reason=reason)]


_S = TransactionState
_E = TransactionEvent
_RESPONSES = (_E.RESPONSE_1XX, _E.RESPONSE_2XX, _E.RESPONSE_300_699)


def _table(
    states: tuple[TransactionState, ...], inputs: tuple[Input, ...], rows: Transitions
) -> Transitions:
    """Every (state, input) pair: the listed ones, the rest "ignore, stay"."""
    for state, event in rows:
        if state not in states or event not in inputs:
            raise ValueError(f"({state}, {event}) is not an input of this machine")
    return {
        (state, event): rows.get((state, event), ("_ignore", state))
        for state in states
        for event in inputs
    }


# ---------------------------------------------------------------------------
# Client transactions (§17.1)


class _ClientTransaction(Transaction):
    _RETRANSMIT: ClassVar[Timer]
    _GIVE_UP: ClassVar[Timer]

    __slots__ = ("_started", "_interval", "ack")

    def __init__(
        self,
        request: Request,
        *,
        key: ClientKey,
        destination: object,
        reliable: bool,
        settings: TimerSettings | None = None,
    ) -> None:
        super().__init__(
            request, key=key, destination=destination, reliable=reliable, settings=settings
        )
        self._started = False
        self._interval = self.settings.t1
        self.ack: Request | None = None
        """The ACK a client INVITE transaction sent for a 300-699 response (§17.1.1.3)."""

    def start(self, now: float) -> list[Output]:
        """Send the request and arm the first timers (the "from TU" arrow of Figures 5, 6)."""
        if self._started:
            raise RuntimeError("transaction already started")
        self._started = True
        if not self.reliable:
            self._arm(self._RETRANSMIT, now, self.settings.t1)
        self._arm(self._GIVE_UP, now, self.settings.sixty_four_t1)
        return [self._send(self.request)]

    def receive(self, item: Message | TransportFailure, now: float) -> list[Output]:
        """A response matched to this transaction, or a transport failure."""
        if isinstance(item, TransportFailure):
            return self.process_input(_E.TRANSPORT_ERROR, now, item)
        if isinstance(item, Response):
            return self.process_input(classify_response(item), now, item)
        return []

    def _retransmit(self, now: float, item: object) -> list[Output]:
        # Timers A and E (§17.1.1.2, §17.1.2.2): resend and double; E at most T2.
        self._interval = 2 * self._interval
        if item is Timer.E:
            self._interval = min(self._interval, self.settings.t2)
        self._arm(self._RETRANSMIT, now, self._interval)
        return [self._send(self.request)]


class ClientInviteTransaction(_ClientTransaction):
    """Figure 5 with RFC 6026: Calling, Proceeding, Completed, Accepted, Terminated."""

    __slots__ = ()

    _INVITE = True
    _RETRANSMIT = Timer.A
    _GIVE_UP = Timer.B
    STATES = (_S.CALLING, _S.PROCEEDING, _S.COMPLETED, _S.ACCEPTED, _S.TERMINATED)
    INPUTS: ClassVar[tuple[Input, ...]] = (*_RESPONSES, _E.CANCEL_SENT, _E.TRANSPORT_ERROR)
    INPUTS += (Timer.A, Timer.B, Timer.D, Timer.M, Timer.CANCEL)

    def cancel_sent(self, now: float) -> list[Output]:
        """The TU sent a CANCEL for this INVITE: §9.1 gives up 64*T1 later without a final."""
        return self.process_input(_E.CANCEL_SENT, now, None)

    def _proceed(self, now: float, item: object) -> list[Output]:
        self._disarm(Timer.A, Timer.B)
        return self._deliver(now, item)

    def _accept(self, now: float, item: object) -> list[Output]:
        # RFC 6026 §8.4: a 2xx goes to the TU; stay 64*T1 to pass on its retransmissions.
        self._disarm(Timer.A, Timer.B, Timer.CANCEL)
        self._arm(Timer.M, now, self.settings.sixty_four_t1)
        return self._deliver(now, item)

    def _complete(self, now: float, item: object) -> list[Output]:
        # §17.1.1.2: ACK the 300-699 response, tell the TU, wait Timer D for copies.
        assert isinstance(item, Response)
        self._disarm(Timer.A, Timer.B, Timer.CANCEL)
        self._arm(Timer.D, now, self._wait(self.settings.timer_d))
        self.ack = build_ack_for_non_2xx(self.request, item)
        return [self._send(self.ack), DeliverMessage(message=item, key=self.key)]

    def _resend_ack(self, now: float, item: object) -> list[Output]:
        # §17.1.1.2: a retransmitted final response gets the ACK again, not the TU.
        assert self.ack is not None
        return [self._send(self.ack)]

    def _arm_cancel_wait(self, now: float, item: object) -> list[Output]:
        self._arm(Timer.CANCEL, now, self.settings.sixty_four_t1)
        return []

    TRANSITIONS = _table(
        STATES,
        INPUTS,
        {
            (_S.CALLING, _E.RESPONSE_1XX): ("_proceed", _S.PROCEEDING),
            (_S.CALLING, _E.RESPONSE_2XX): ("_accept", _S.ACCEPTED),
            (_S.CALLING, _E.RESPONSE_300_699): ("_complete", _S.COMPLETED),
            (_S.CALLING, _E.CANCEL_SENT): ("_arm_cancel_wait", _S.CALLING),
            (_S.CALLING, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.CALLING, Timer.A): ("_retransmit", _S.CALLING),
            (_S.CALLING, Timer.B): ("_timeout", _S.TERMINATED),
            (_S.CALLING, Timer.CANCEL): ("_timeout", _S.TERMINATED),
            (_S.PROCEEDING, _E.RESPONSE_1XX): ("_deliver", _S.PROCEEDING),
            (_S.PROCEEDING, _E.RESPONSE_2XX): ("_accept", _S.ACCEPTED),
            (_S.PROCEEDING, _E.RESPONSE_300_699): ("_complete", _S.COMPLETED),
            (_S.PROCEEDING, _E.CANCEL_SENT): ("_arm_cancel_wait", _S.PROCEEDING),
            (_S.PROCEEDING, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.PROCEEDING, Timer.CANCEL): ("_timeout", _S.TERMINATED),
            (_S.COMPLETED, _E.RESPONSE_300_699): ("_resend_ack", _S.COMPLETED),
            (_S.COMPLETED, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.COMPLETED, Timer.D): ("_ignore", _S.TERMINATED),
            (_S.ACCEPTED, _E.RESPONSE_2XX): ("_deliver", _S.ACCEPTED),
            # RFC 6026: what follows a 2xx is the TU's; tell it, keep passing 2xx copies.
            (_S.ACCEPTED, _E.TRANSPORT_ERROR): ("_transport_error", _S.ACCEPTED),
            (_S.ACCEPTED, Timer.M): ("_ignore", _S.TERMINATED),
        },
    )


class ClientNonInviteTransaction(_ClientTransaction):
    """Figure 6: Trying, Proceeding, Completed, Terminated."""

    __slots__ = ()

    _INVITE = False
    _RETRANSMIT = Timer.E
    _GIVE_UP = Timer.F
    STATES = (_S.TRYING, _S.PROCEEDING, _S.COMPLETED, _S.TERMINATED)
    INPUTS = (*_RESPONSES, _E.TRANSPORT_ERROR, Timer.E, Timer.F, Timer.K)

    def _retransmit_t2(self, now: float, item: object) -> list[Output]:
        # §17.1.2.2: in Proceeding, Timer E is reset to T2 each time.
        self._interval = self.settings.t2
        self._arm(Timer.E, now, self._interval)
        return [self._send(self.request)]

    def _complete(self, now: float, item: object) -> list[Output]:
        self._disarm(Timer.E, Timer.F)
        self._arm(Timer.K, now, self._wait(self.settings.t4))
        return self._deliver(now, item)

    TRANSITIONS = _table(
        STATES,
        INPUTS,
        {
            (_S.TRYING, _E.RESPONSE_1XX): ("_deliver", _S.PROCEEDING),
            (_S.TRYING, _E.RESPONSE_2XX): ("_complete", _S.COMPLETED),
            (_S.TRYING, _E.RESPONSE_300_699): ("_complete", _S.COMPLETED),
            (_S.TRYING, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.TRYING, Timer.E): ("_retransmit", _S.TRYING),
            (_S.TRYING, Timer.F): ("_timeout", _S.TERMINATED),
            (_S.PROCEEDING, _E.RESPONSE_1XX): ("_deliver", _S.PROCEEDING),
            (_S.PROCEEDING, _E.RESPONSE_2XX): ("_complete", _S.COMPLETED),
            (_S.PROCEEDING, _E.RESPONSE_300_699): ("_complete", _S.COMPLETED),
            (_S.PROCEEDING, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.PROCEEDING, Timer.E): ("_retransmit_t2", _S.PROCEEDING),
            (_S.PROCEEDING, Timer.F): ("_timeout", _S.TERMINATED),
            (_S.COMPLETED, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.COMPLETED, Timer.K): ("_ignore", _S.TERMINATED),
        },
    )


def build_ack_for_non_2xx(request: Request, response: Response) -> Request:
    """§17.1.1.3: the ACK a client INVITE transaction sends for a 300-699 response.

    Same Request-URI, Call-ID, From and CSeq number as the INVITE, its top Via
    only (same branch), its Route header fields, and the response's To (with
    the tag the UAS chose).
    """
    fields = [("Via", str(request.top_via))]
    fields.append(("Max-Forwards", request.headers.get("max-forwards") or "70"))
    fields += [("Route", value) for value in request.headers.get_all("route")]
    fields.append(("From", request.headers.get("from") or str(request.from_)))
    fields.append(("To", response.headers.get("to") or str(response.to)))
    fields.append(("Call-ID", request.call_id))
    fields.append(("CSeq", f"{request.cseq.seq} ACK"))
    return Request(method="ACK", uri=request.uri, headers=Headers(fields))


# ---------------------------------------------------------------------------
# Server transactions (§17.2)


class _ServerTransaction(Transaction):
    __slots__ = ("last_provisional", "last_final", "_interval")

    def __init__(
        self,
        request: Request,
        *,
        key: ServerKey | LegacyServerKey,
        destination: object,
        reliable: bool,
        settings: TimerSettings | None = None,
    ) -> None:
        super().__init__(
            request, key=key, destination=destination, reliable=reliable, settings=settings
        )
        self.last_provisional: Response | None = None
        self.last_final: Response | None = None
        self._interval = self.settings.t1

    @property
    def last_response(self) -> Response | None:
        return self.last_final if self.last_final is not None else self.last_provisional

    def start(self, now: float) -> list[Output]:
        """Pass the request to the TU (the first arrow of Figures 7 and 8)."""
        return [DeliverMessage(message=self.request, key=self.key)]

    def receive(self, item: Message | TransportFailure, now: float) -> list[Output]:
        """A request matched to this transaction (a copy, or an ACK), or a transport failure."""
        if isinstance(item, TransportFailure):
            return self.process_input(_E.TRANSPORT_ERROR, now, item)
        if isinstance(item, Request):
            if item.method == self.request.method:
                return self.process_input(_E.REQUEST, now, item)
            if item.method == "ACK" and self._INVITE:
                return self.process_input(_E.ACK, now, item)
        return []

    def respond(self, response: Response, now: float) -> list[Output]:
        """The TU's response to the request (discarded in states that take none)."""
        cseq = response.cseq
        if cseq.method != self.request.method or cseq.seq != self.request.cseq.seq:
            raise ValueError("the response does not answer this transaction's request")
        return self.process_input(classify_response(response), now, response)

    def _send_provisional(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Response)
        self._disarm(Timer.TRYING)
        self.last_provisional = item
        return [self._send(item)]

    def _resend_provisional(self, now: float, item: object) -> list[Output]:
        # §17.2.1, §17.2.2: a retransmitted request gets the last provisional again.
        if self.last_provisional is None:
            return []
        return [self._send(self.last_provisional)]

    def _resend_final(self, now: float, item: object) -> list[Output]:
        assert self.last_final is not None
        return [self._send(self.last_final)]


class ServerInviteTransaction(_ServerTransaction):
    """Figure 7 with RFC 6026: Proceeding, Completed, Confirmed, Accepted, Terminated."""

    __slots__ = ()

    _INVITE = True
    STATES = (_S.PROCEEDING, _S.COMPLETED, _S.CONFIRMED, _S.ACCEPTED, _S.TERMINATED)
    INPUTS: ClassVar[tuple[Input, ...]] = (_E.REQUEST, _E.ACK, *_RESPONSES, _E.TRANSPORT_ERROR)
    INPUTS += (Timer.TRYING, Timer.G, Timer.H, Timer.I, Timer.L)

    def start(self, now: float) -> list[Output]:
        # §17.2.1: 100 Trying unless the TU answers within 200 ms.
        self._arm(Timer.TRYING, now, self.settings.trying_delay)
        return super().start(now)

    def _send_trying(self, now: float, item: object) -> list[Output]:
        # §8.2.6.1: no To tag, Timestamp copied (make_response does both).
        self._disarm(Timer.TRYING)
        self.last_provisional = make_response(self.request, 100)
        return [self._send(self.last_provisional)]

    def _answer_copy(self, now: float, item: object) -> list[Output]:
        # Nothing sent yet (within the 200 ms): the peer is waiting, so say Trying now.
        if self.last_provisional is None:
            return self._send_trying(now, item)
        return self._resend_provisional(now, item)

    def _send_2xx(self, now: float, item: object) -> list[Output]:
        # RFC 6026 §8.5-8.7: the TU retransmits the 2xx; Timer L keeps us to absorb
        # INVITE copies and to pass ACKs and the TU's 2xx copies through.
        assert isinstance(item, Response)
        self._disarm(Timer.TRYING)
        self.last_final = item
        self._arm(Timer.L, now, self.settings.sixty_four_t1)
        return [self._send(item)]

    def _pass_2xx(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Response)
        return [self._send(item)]

    def _send_final(self, now: float, item: object) -> list[Output]:
        # §17.2.1: 300-699 -> Completed; Timer G retransmits (datagrams), H gives up.
        assert isinstance(item, Response)
        self._disarm(Timer.TRYING)
        self.last_final = item
        if not self.reliable:
            self._arm(Timer.G, now, self.settings.t1)
        self._arm(Timer.H, now, self.settings.sixty_four_t1)
        return [self._send(item)]

    def _retransmit_final(self, now: float, item: object) -> list[Output]:
        self._interval = min(2 * self._interval, self.settings.t2)
        self._arm(Timer.G, now, self._interval)
        return self._resend_final(now, item)

    def _confirm(self, now: float, item: object) -> list[Output]:
        # §17.2.1: the ACK is absorbed; Timer I absorbs its retransmissions.
        self._disarm(Timer.G, Timer.H)
        self._arm(Timer.I, now, self._wait(self.settings.t4))
        return []

    TRANSITIONS = _table(
        STATES,
        INPUTS,
        {
            (_S.PROCEEDING, _E.REQUEST): ("_answer_copy", _S.PROCEEDING),
            (_S.PROCEEDING, _E.RESPONSE_1XX): ("_send_provisional", _S.PROCEEDING),
            (_S.PROCEEDING, _E.RESPONSE_2XX): ("_send_2xx", _S.ACCEPTED),
            (_S.PROCEEDING, _E.RESPONSE_300_699): ("_send_final", _S.COMPLETED),
            (_S.PROCEEDING, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.PROCEEDING, Timer.TRYING): ("_send_trying", _S.PROCEEDING),
            (_S.COMPLETED, _E.REQUEST): ("_resend_final", _S.COMPLETED),
            (_S.COMPLETED, _E.ACK): ("_confirm", _S.CONFIRMED),
            (_S.COMPLETED, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.COMPLETED, Timer.G): ("_retransmit_final", _S.COMPLETED),
            (_S.COMPLETED, Timer.H): ("_timeout", _S.TERMINATED),
            (_S.CONFIRMED, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.CONFIRMED, Timer.I): ("_ignore", _S.TERMINATED),
            (_S.ACCEPTED, _E.ACK): ("_deliver", _S.ACCEPTED),
            (_S.ACCEPTED, _E.RESPONSE_2XX): ("_pass_2xx", _S.ACCEPTED),
            (_S.ACCEPTED, _E.TRANSPORT_ERROR): ("_transport_error", _S.ACCEPTED),
            (_S.ACCEPTED, Timer.L): ("_ignore", _S.TERMINATED),
        },
    )


class ServerNonInviteTransaction(_ServerTransaction):
    """Figure 8: Trying, Proceeding, Completed, Terminated."""

    __slots__ = ()

    _INVITE = False
    STATES = (_S.TRYING, _S.PROCEEDING, _S.COMPLETED, _S.TERMINATED)
    INPUTS = (_E.REQUEST, *_RESPONSES, _E.TRANSPORT_ERROR, Timer.J)

    def _send_final(self, now: float, item: object) -> list[Output]:
        # §17.2.2: Timer J absorbs request retransmissions (zero on a stream).
        assert isinstance(item, Response)
        self.last_final = item
        self._arm(Timer.J, now, self._wait(self.settings.sixty_four_t1))
        return [self._send(item)]

    TRANSITIONS = _table(
        STATES,
        INPUTS,
        {
            (_S.TRYING, _E.RESPONSE_1XX): ("_send_provisional", _S.PROCEEDING),
            (_S.TRYING, _E.RESPONSE_2XX): ("_send_final", _S.COMPLETED),
            (_S.TRYING, _E.RESPONSE_300_699): ("_send_final", _S.COMPLETED),
            (_S.TRYING, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.PROCEEDING, _E.REQUEST): ("_resend_provisional", _S.PROCEEDING),
            (_S.PROCEEDING, _E.RESPONSE_1XX): ("_send_provisional", _S.PROCEEDING),
            (_S.PROCEEDING, _E.RESPONSE_2XX): ("_send_final", _S.COMPLETED),
            (_S.PROCEEDING, _E.RESPONSE_300_699): ("_send_final", _S.COMPLETED),
            (_S.PROCEEDING, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.COMPLETED, _E.REQUEST): ("_resend_final", _S.COMPLETED),
            (_S.COMPLETED, _E.TRANSPORT_ERROR): ("_transport_error", _S.TERMINATED),
            (_S.COMPLETED, Timer.J): ("_ignore", _S.TERMINATED),
        },
    )


ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
AnyTransaction = ClientTransaction | ServerTransaction
