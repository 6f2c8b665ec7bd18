"""SIP transactions (RFC 3261 §17 as updated by RFC 6026): what the four state machines share.

Each machine is sans-I/O: messages, TU responses and timer expiries go in
with the time ``now``; what to send and what to tell the TU comes out as a
list of outputs. Transitions are one table per machine, listing every
(state, input) pair, so nothing happens by accident. RFC 6026 is applied: a 2xx
to an INVITE takes both sides to "Accepted" (Timer M on the client, Timer L on
the server) instead of terminating, so retransmitted INVITEs and 2xx responses
are not mistaken for new ones.

This module holds the settings, keys, inputs, outputs and the table-driven
:class:`Transaction`; the machines themselves are in ``transaction_client``
(Figures 5 and 6) and ``transaction_server`` (Figures 7 and 8).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from pbx.sip.message import Message, Request, Response
from pbx.sip.transaction_wire import message_from_wire

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
    request or the TU chose; opaque here. ``key`` names the sending transaction.

    ``data``, when set, is the exact bytes to put on the wire: a finished transaction
    resending what it kept (a response, an ACK) keeps only those bytes, and ``message``
    is rebuilt from them (``bytes(message) == data``) for a TU that reads its Via.
    """

    message: Message
    destination: object
    key: TransactionKey | None = None
    data: bytes | None = None


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

    __slots__ = (
        "key", "method", "cseq_seq", "destination", "reliable", "settings",
        "_request", "_state", "_timers",
    )  # fmt: skip

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
        self.method = request.method
        self.cseq_seq = request.cseq.seq
        self._request: Request | None = request
        self.destination = destination
        self.reliable = reliable
        self.settings = settings if settings is not None else TimerSettings()
        self._state = self.STATES[0]
        self._timers: dict[Timer, float] = {}

    @property
    def request(self) -> Request:
        """The request, while the transaction may still need it: to retransmit it, answer it
        (a 100 Trying) or build its CANCEL. Once the final response is in, only bytes are kept
        (``pbx.sip.transaction_wire``): asking then is a bug in the caller, so it raises."""
        if self._request is None:
            raise LookupError(f"{self.key} has its final response: its request is not kept")
        return self._request

    @property
    def holds_request(self) -> bool:
        """False once the final response let the request go (see ``request``)."""
        return self._request is not None

    def _release_request(self) -> None:
        self._request = None

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

    def _resend(self, data: bytes) -> SendMessage:
        """Send kept bytes again: the exact bytes, and the message rebuilt from them."""
        return SendMessage(
            message=message_from_wire(data), destination=self.destination, key=self.key, data=data
        )

    def _deliver(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Request | Response)
        return [DeliverMessage(message=item, key=self.key)]

    def _timeout(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Timer)
        return [TransactionTimeout(key=self.key, timer=item)]

    def _transport_error(self, now: float, item: object) -> list[Output]:
        reason = item.reason if isinstance(item, TransportFailure) else ""
        return [TransportErrorReported(key=self.key, reason=reason)]


# The three response inputs, as every machine's INPUTS list them.
RESPONSE_EVENTS = (
    TransactionEvent.RESPONSE_1XX,
    TransactionEvent.RESPONSE_2XX,
    TransactionEvent.RESPONSE_300_699,
)


def transition_table(
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
