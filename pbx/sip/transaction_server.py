"""Server transactions (RFC 3261 §17.2, with RFC 6026): Figure 7 (INVITE, with the 100 Trying
sent when the TU has not answered in 200 ms) and Figure 8 (non-INVITE).

See :mod:`pbx.sip.transaction` for the shared inputs, outputs and table-driven step.
"""

from __future__ import annotations

from typing import ClassVar

from pbx.sip.message import Message, Request, Response, make_response
from pbx.sip.transaction import (
    RESPONSE_EVENTS,
    DeliverMessage,
    Input,
    LegacyServerKey,
    Output,
    SendMessage,
    ServerKey,
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


class _ServerTransaction(Transaction):
    """What both server machines share: answering copies of the request from kept bytes.

    The request is let go with the final response; what is kept to absorb retransmissions
    is the last response's bytes (a provisional until the final, then the final), and its
    To tag for RFC 2543 ACK matching (issue 12: a parsed response held through Timer J or
    H was most of the 8 KB each finished transaction cost).
    """

    __slots__ = ("_provisional", "_final", "_responded", "_to_tag", "_interval")

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
        self._provisional: bytes | None = None
        self._final: bytes | None = None
        self._responded = False
        self._to_tag: str | None = None
        self._interval = self.settings.t1

    @property
    def responded(self) -> bool:
        """True once any response was sent on this transaction."""
        return self._responded

    @property
    def response_to_tag(self) -> str | None:
        """The To tag of the last response sent (what an RFC 2543 ACK must carry, §17.2.3)."""
        return self._to_tag

    @property
    def last_provisional(self) -> Response | None:
        """The provisional a copy of the request would get (rebuilt from its bytes)."""
        return _rebuilt(self._provisional)

    @property
    def last_final(self) -> Response | None:
        """The final response a copy would get, while one is kept (300-699 until the ACK,
        any final of a non-INVITE); a 2xx to an INVITE is the TU's to resend (RFC 6026)."""
        return _rebuilt(self._final)

    @property
    def last_response(self) -> Response | None:
        final = self.last_final
        return final if final is not None else self.last_provisional

    def start(self, now: float) -> list[Output]:
        """Pass the request to the TU (the first arrow of Figures 7 and 8)."""
        return [DeliverMessage(message=self.request, key=self.key)]

    def receive(self, item: Message | TransportFailure, now: float) -> list[Output]:
        """A request matched to this transaction (a copy, or an ACK), or a transport failure."""
        if isinstance(item, TransportFailure):
            return self.process_input(_E.TRANSPORT_ERROR, now, item)
        if isinstance(item, Request):
            if item.method == self.method:
                return self.process_input(_E.REQUEST, now, item)
            if item.method == "ACK" and self._INVITE:
                return self.process_input(_E.ACK, now, item)
        return []

    def respond(self, response: Response, now: float) -> list[Output]:
        """The TU's response to the request (discarded in states that take none)."""
        cseq = response.cseq
        if cseq.method != self.method or cseq.seq != self.cseq_seq:
            raise ValueError("the response does not answer this transaction's request")
        return self.process_input(classify_response(response), now, response)

    def _sent(self, response: Response) -> None:
        self._responded = True
        self._to_tag = response.to.tag

    def _keep_provisional(self, response: Response) -> list[Output]:
        self._sent(response)
        data = self._provisional = bytes(response)
        return [self._send_kept(response, data)]

    def _keep_final(self, response: Response) -> list[Output]:
        """The final answer: keep its bytes for copies of the request, let the rest go."""
        self._sent(response)
        data = self._final = bytes(response)
        self._provisional = None
        self._release_request()
        return [self._send_kept(response, data)]

    def _send_kept(self, response: Response, data: bytes) -> SendMessage:
        return SendMessage(message=response, destination=self.destination, key=self.key, data=data)

    def _send_provisional(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Response)
        self._disarm(Timer.TRYING)
        return self._keep_provisional(item)

    def _resend_provisional(self, now: float, item: object) -> list[Output]:
        # §17.2.1, §17.2.2: a retransmitted request gets the last provisional again.
        if self._provisional is None:
            return []
        return [self._resend(self._provisional)]

    def _resend_final(self, now: float, item: object) -> list[Output]:
        assert self._final is not None
        return [self._resend(self._final)]


def _rebuilt(data: bytes | None) -> Response | None:
    if data is None:
        return None
    response = message_from_wire(data)
    assert isinstance(response, Response)
    return response


class ServerInviteTransaction(_ServerTransaction):
    """Figure 7 with RFC 6026: Proceeding, Completed, Confirmed, Accepted, Terminated."""

    __slots__ = ()

    _INVITE = True
    STATES = (_S.PROCEEDING, _S.COMPLETED, _S.CONFIRMED, _S.ACCEPTED, _S.TERMINATED)
    INPUTS: ClassVar[tuple[Input, ...]] = (_E.REQUEST, _E.ACK, *RESPONSE_EVENTS, _E.TRANSPORT_ERROR)
    INPUTS += (Timer.TRYING, Timer.G, Timer.H, Timer.I, Timer.L)

    def start(self, now: float) -> list[Output]:
        # §17.2.1: 100 Trying unless the TU answers within 200 ms.
        self._arm(Timer.TRYING, now, self.settings.trying_delay)
        return super().start(now)

    def _send_trying(self, now: float, item: object) -> list[Output]:
        # §8.2.6.1: no To tag, Timestamp copied (make_response does both).
        self._disarm(Timer.TRYING)
        return self._keep_provisional(make_response(self.request, 100))

    def _answer_copy(self, now: float, item: object) -> list[Output]:
        # Nothing sent yet (within the 200 ms): the peer is waiting, so say Trying now.
        if self._provisional is None:
            return self._send_trying(now, item)
        return self._resend_provisional(now, item)

    def _send_2xx(self, now: float, item: object) -> list[Output]:
        # RFC 6026 §8.5-8.7: the TU retransmits the 2xx; Timer L keeps us to absorb
        # INVITE copies and to pass ACKs and the TU's 2xx copies through.
        # The 2xx is not kept: INVITE copies are absorbed, the TU resends the 2xx itself.
        assert isinstance(item, Response)
        self._disarm(Timer.TRYING)
        self._sent(item)
        self._provisional = None
        self._release_request()
        self._arm(Timer.L, now, self.settings.sixty_four_t1)
        return [self._send(item)]

    def _pass_2xx(self, now: float, item: object) -> list[Output]:
        assert isinstance(item, Response)
        return [self._send(item)]

    def _send_final(self, now: float, item: object) -> list[Output]:
        # §17.2.1: 300-699 -> Completed; Timer G retransmits (datagrams), H gives up.
        assert isinstance(item, Response)
        self._disarm(Timer.TRYING)
        if not self.reliable:
            self._arm(Timer.G, now, self.settings.t1)
        self._arm(Timer.H, now, self.settings.sixty_four_t1)
        return self._keep_final(item)

    def _retransmit_final(self, now: float, item: object) -> list[Output]:
        self._interval = min(2 * self._interval, self.settings.t2)
        self._arm(Timer.G, now, self._interval)
        return self._resend_final(now, item)

    def _confirm(self, now: float, item: object) -> list[Output]:
        # §17.2.1: the ACK is absorbed; Timer I absorbs its retransmissions. Nothing is
        # resent from here on, so the final's bytes go too.
        self._disarm(Timer.G, Timer.H)
        self._final = None
        self._arm(Timer.I, now, self._wait(self.settings.t4))
        return []

    TRANSITIONS = transition_table(
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
    INPUTS = (_E.REQUEST, *RESPONSE_EVENTS, _E.TRANSPORT_ERROR, Timer.J)

    def _send_final(self, now: float, item: object) -> list[Output]:
        # §17.2.2: Timer J absorbs request retransmissions (zero on a stream).
        assert isinstance(item, Response)
        self._arm(Timer.J, now, self._wait(self.settings.sixty_four_t1))
        return self._keep_final(item)

    TRANSITIONS = transition_table(
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


ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
