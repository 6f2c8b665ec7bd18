"""The gateway's dialog usages (sip_leg.py) on the real transaction layer, with time as a number:
the 2xx resend schedule and the 64*T1 give-up (§13.3.1.4), a retransmitted INVITE answered by
the transaction, CANCEL before and after the 200 (§9.2), and the UAC's ACK for 2xx copies and
its BYE for a 2xx that crossed our CANCEL."""

from __future__ import annotations

import itertools

import pytest

from gateway_fxo.sip_leg import (
    AckTimedOut,
    LegConfirmed,
    LegState,
    SendAck,
    SendRequest,
    SendResponse,
    UacInviteLeg,
    UasInviteLeg,
)
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_request, make_response, parse_message
from pbx.sip.transaction import SendMessage, TimerSettings
from pbx.sip.transaction_layer import Incoming, TransactionLayer, server_key
from pbx.sip.uri import SipUri

T = TimerSettings()
_branches = itertools.count()


def via(host: str = "127.0.0.1", port: int = 5060) -> Via:
    return Via(transport="UDP", host=host, port=port,
               params=(("branch", f"z9hG4bK{next(_branches)}"),))  # fmt: skip


def invite() -> Request:
    return make_request(
        "INVITE", SipUri(user="5550100", host="127.0.0.1", port=5070), via=via(),
        from_=NameAddress(uri=SipUri(user="201", host="127.0.0.1"), params=(("tag", "sw"),)),
        to=NameAddress(uri=SipUri(user="5550100", host="127.0.0.1")), call_id="c1", cseq=7,
        contact=NameAddress(uri=SipUri(host="127.0.0.1", port=5060)),
    )  # fmt: skip


def ack_for(response: Response) -> Request:
    return make_request(
        "ACK", SipUri(host="127.0.0.1", port=5070), via=via(), from_=response.from_,
        to=response.to, call_id=response.call_id, cseq=response.cseq.seq,
    )  # fmt: skip


class Uas:
    """A server INVITE transaction and its leg, wired as the agent wires them."""

    def __init__(self) -> None:
        self.layer = TransactionLayer(settings=T)
        self.request = invite()
        self.key = server_key(self.request)
        self.sent: list[tuple[float, Response]] = []
        self.layer.receive(Incoming(message=self.request, source="sw", reliable=False), 0.0)
        self.leg = UasInviteLeg(self.request, local_tag="gw", new_via=via,
                                contact=NameAddress(uri=SipUri(host="127.0.0.1", port=5070)),
                                settings=T)  # fmt: skip

    def carry_out(self, outputs: list[object], now: float) -> list[object]:
        for output in outputs:
            if isinstance(output, SendResponse):
                for out in self.layer.respond(self.key, output.response, now):
                    if isinstance(out, SendMessage) and isinstance(out.message, Response):
                        self.sent.append((now, out.message))
        return outputs

    def respond(self, status: int, now: float) -> list[object]:
        return self.carry_out(list(self.leg.respond(status, now)), now)

    def run_until(self, end: float) -> list[object]:
        """Fire the leg's timers up to ``end`` as the agent's one call_at would."""
        fired: list[object] = []
        while (deadline := self.leg.next_deadline()) is not None and deadline <= end:
            fired += self.carry_out(list(self.leg.handle_timer(deadline)), deadline)
        return fired


def test_the_2xx_is_resent_at_t1_doubling_to_t2_until_the_ack() -> None:
    uas = Uas()
    uas.respond(200, 0.0)
    uas.run_until(20.0)
    times = [t for t, r in uas.sent if r.status == 200]
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]
    out = uas.leg.receive(ack_for(uas.sent[0][1]), 20.0)
    assert out == [LegConfirmed()] and uas.leg.state is LegState.CONFIRMED
    assert uas.leg.next_deadline() is None
    assert uas.run_until(100.0) == []
    assert uas.leg.receive(ack_for(uas.sent[0][1]), 21.0) == []  # a copy of the ACK: absorbed


def test_without_an_ack_the_leg_gives_up_at_64_t1_and_sends_bye() -> None:
    uas = Uas()
    uas.respond(183, 0.0)  # early media first, as on a line call: the 2xx confirms the dialog
    uas.respond(200, 0.0)
    fired = uas.run_until(40.0)
    resends = [t for t, r in uas.sent if r.status == 200]
    assert uas.leg.dialog is not None
    assert resends[-1] < 32.0 and len(resends) == 11  # 0, .5, 1.5, 3.5, 7.5 ... 31.5
    assert AckTimedOut() in fired
    [bye] = [o.request for o in fired if isinstance(o, SendRequest)]
    assert bye.method == "BYE" and bye.to.tag == "sw" and bye.from_.tag == "gw"
    assert bye.call_id == "c1" and bye.uri == SipUri(host="127.0.0.1", port=5060)
    assert fired.index(AckTimedOut()) < fired.index(SendRequest(request=bye))
    assert uas.leg.state is LegState.TERMINATED and uas.leg.next_deadline() is None
    assert uas.leg.receive(ack_for(uas.sent[0][1]), 41.0) == []  # too late: nothing


def test_a_bye_asked_for_before_the_ack_waits_for_it() -> None:
    uas = Uas()
    uas.respond(200, 0.0)
    assert uas.leg.hang_up(1.0) == []  # §15: not before the ACK
    out = uas.leg.receive(ack_for(uas.sent[0][1]), 2.0)
    assert out[0] == LegConfirmed() and isinstance(out[1], SendRequest)
    assert out[1].request.method == "BYE"


def test_a_retransmitted_invite_gets_the_last_provisional_then_the_final_from_the_transaction(
) -> None:  # fmt: skip
    uas = Uas()
    copy = Incoming(message=uas.request, source="sw", reliable=False)
    uas.respond(183, 0.0)
    again = uas.layer.receive(copy, 1.0)
    [resent] = [o.message for o in again if isinstance(o, SendMessage)]
    assert isinstance(resent, Response) and resent.status == 183 and resent.to.tag == "gw"
    uas.respond(486, 2.0)
    again = uas.layer.receive(copy, 2.1)
    [resent] = [o.message for o in again if isinstance(o, SendMessage)]
    assert isinstance(resent, Response) and resent.status == 486
    assert uas.respond(200, 4.0) == []  # one final response only


@pytest.mark.parametrize("answered", [False, True], ids=["before-200", "after-200"])
def test_cancel_gets_487_before_the_200_and_changes_nothing_after_it(answered: bool) -> None:
    uas = Uas()
    uas.respond(183, 0.0)
    if answered:
        uas.respond(200, 1.0)
    cancel = make_request(
        "CANCEL", uas.request.uri, via=uas.request.top_via, from_=uas.request.from_,
        to=uas.request.to, call_id="c1", cseq=7,
    )  # fmt: skip
    assert uas.layer.find_invite_for_cancel(cancel) is not None  # §9.2: the CANCEL matches
    assert uas.leg.answered is answered
    # What the agent does (Agent._on_cancel): 487 only when no final response went yet.
    if not uas.leg.answered:
        uas.respond(487, 2.0)
    finals = [r.status for _, r in uas.sent if r.status >= 200]
    assert finals == ([200] if answered else [487])
    assert uas.leg.state is (LegState.ACCEPTED if answered else LegState.TERMINATED)


def test_the_uac_acks_every_2xx_copy_and_byes_a_2xx_that_crossed_its_cancel() -> None:
    request = make_request(
        "INVITE", SipUri(user="inbound", host="127.0.0.1", port=5060), via=via(port=5070),
        from_=NameAddress(uri=SipUri(user="555", host="127.0.0.1"), params=(("tag", "gw"),)),
        to=NameAddress(uri=SipUri(user="inbound", host="127.0.0.1")), call_id="c2", cseq=2,
        contact=NameAddress(uri=SipUri(host="127.0.0.1", port=5070)),
    )  # fmt: skip
    ok = make_response(request, 200, to_tag="sw",
                       headers=[("Contact", "<sip:127.0.0.1:5060>")])  # fmt: skip
    leg = UacInviteLeg(request, new_via=via, ack_headers=[("Proxy-Authorization", "Digest x")])
    out = leg.receive(ok, 0.0)
    assert isinstance(out[0], SendAck) and out[1] == LegConfirmed()
    ack = out[0].ack
    assert ack.cseq.seq == 2 and ack.cseq.method == "ACK" and ack.to.tag == "sw"
    assert ack.headers.get("proxy-authorization") == "Digest x"
    assert leg.receive(ok, 0.5) == [SendAck(ack=ack)]  # the same ACK again for a copy
    assert parse_message(bytes(ack)).cseq == ack.cseq  # it serializes
    crossed = UacInviteLeg(request, new_via=via)
    assert crossed.hang_up(0.0) == []  # not answered yet: the agent CANCELs
    out = crossed.receive(ok, 0.1)
    assert isinstance(out[0], SendAck) and isinstance(out[1], SendRequest)
    assert out[1].request.method == "BYE" and LegConfirmed() not in out
