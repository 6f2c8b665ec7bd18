"""Client transactions (RFC 3261 §17.1, with RFC 6026): Figure 5 (INVITE) and Figure 6
(non-INVITE), and the ACK a client INVITE transaction sends for a 300-699 response (§17.1.1.3).

See :mod:`pbx.sip.transaction` for the shared inputs, outputs and table-driven step.
"""

from __future__ import annotations

from typing import ClassVar

from pbx.sip.headers import Headers
from pbx.sip.message import Message, Request, Response
from pbx.sip.transaction import (
    RESPONSE_EVENTS,
    ClientKey,
    DeliverMessage,
    Input,
    Output,
    SendMessage,
    Timer,
    TimerSettings,
    Transaction,
    TransactionEvent,
    TransactionState,
    TransportFailure,
    classify_response,
    transition_table,
)
from pbx.sip.transaction_wire import message_from_wire

_S = TransactionState
_E = TransactionEvent


class _ClientTransaction(Transaction):
    _RETRANSMIT: ClassVar[Timer]
    _GIVE_UP: ClassVar[Timer]

    __slots__ = ("_started", "_interval", "_ack")

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
        self._ack: bytes | None = None

    @property
    def ack(self) -> Request | None:
        """The ACK a client INVITE transaction sent for a 300-699 response (§17.1.1.3),
        rebuilt from the bytes it keeps to answer copies of that response."""
        if self._ack is None:
            return None
        ack = message_from_wire(self._ack)
        assert isinstance(ack, Request)
        return ack

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
    INPUTS: ClassVar[tuple[Input, ...]] = (*RESPONSE_EVENTS, _E.CANCEL_SENT, _E.TRANSPORT_ERROR)
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
        self._release_request()  # nothing is resent or cancelled from here on
        return self._deliver(now, item)

    def _complete(self, now: float, item: object) -> list[Output]:
        # §17.1.1.2: ACK the 300-699 response, tell the TU, wait Timer D for copies.
        assert isinstance(item, Response)
        self._disarm(Timer.A, Timer.B, Timer.CANCEL)
        self._arm(Timer.D, now, self._wait(self.settings.timer_d))
        ack = build_ack_for_non_2xx(self.request, item)
        # Through Timer D only the ACK's bytes are needed (issue 12), not the INVITE.
        data = self._ack = bytes(ack)
        self._release_request()
        send = SendMessage(message=ack, destination=self.destination, key=self.key, data=data)
        return [send, DeliverMessage(message=item, key=self.key)]

    def _resend_ack(self, now: float, item: object) -> list[Output]:
        # §17.1.1.2: a retransmitted final response gets the ACK again, not the TU.
        assert self._ack is not None
        return [self._resend(self._ack)]

    def _arm_cancel_wait(self, now: float, item: object) -> list[Output]:
        self._arm(Timer.CANCEL, now, self.settings.sixty_four_t1)
        return []

    TRANSITIONS = transition_table(
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
    INPUTS = (*RESPONSE_EVENTS, _E.TRANSPORT_ERROR, Timer.E, Timer.F, Timer.K)

    def _retransmit_t2(self, now: float, item: object) -> list[Output]:
        # §17.1.2.2: in Proceeding, Timer E is reset to T2 each time.
        self._interval = self.settings.t2
        self._arm(Timer.E, now, self._interval)
        return [self._send(self.request)]

    def _complete(self, now: float, item: object) -> list[Output]:
        self._disarm(Timer.E, Timer.F)
        self._arm(Timer.K, now, self._wait(self.settings.t4))
        self._release_request()  # Timer K only absorbs response copies
        return self._deliver(now, item)

    TRANSITIONS = transition_table(
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


ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
