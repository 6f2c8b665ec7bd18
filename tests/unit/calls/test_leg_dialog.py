"""What every leg does in its dialog, either way: re-INVITE and UPDATE with glare (§14.1), the
2xx to the peer's re-INVITE resent until ACK, the session check, BYE. Driven directly, with a
fake clock, on both kinds of leg."""

from __future__ import annotations

import pytest

from pbx.calls.leg import GLARE_RETRIES, Leg
from pbx.calls.leg_states import LegState
from pbx.calls.outputs import Output, PeerAck, PeerRequest, RequestAnswered, Transmit
from pbx.sip.message import Request, Response
from tests.unit.calls.leg_fakes import (
    PEER,
    SDP,
    T0,
    Callee,
    Caller,
    Randomness,
    client_key,
    ended,
    make_setup,
    of_type,
    reply,
    requests,
    responses,
    run_timers,
    server_key,
    statuses,
)

OFFER = SDP.replace(b"4000", b"6000")
ANSWER = SDP.replace(b"4000", b"7000")


class Across:
    """A confirmed leg and the peer across it, whichever kind the leg is."""

    def __init__(self, kind: str, *, allow: str = "INVITE, ACK, BYE", refresh: float = 900.0):
        self.randomness = Randomness()
        setup = make_setup(self.randomness, refresh=refresh)
        self.leg: Leg
        if kind == "incoming":
            self.caller = Caller(headers=[("Allow", allow)])
            leg = self.caller.leg(setup)
            leg.start(T0)
            leg.answer(ANSWER, T0)
            leg.on_ack(self.caller.request("ACK"), T0 + 0.01)
            self.leg = leg
        else:
            self.callee = Callee()
            out_leg = self.callee.leg(setup)
            out_leg.start(T0)
            ok = self.callee.answer(
                self.callee.invite, 200, body=ANSWER, headers=[("Allow", allow)]
            )
            out_leg.on_response(out_leg.invite_key, ok, T0)
            self.leg = out_leg
        assert self.leg.state is LegState.CONFIRMED
        self.kind = kind

    def request(self, method: str, body: bytes = b"", seq: int | None = None) -> Request:
        """A request the peer sends in the dialog."""
        if self.kind == "incoming":
            return self.caller.request(method, body=body, seq=seq)
        return self.callee.request(method, body=body, seq=seq)

    def receive(self, request: Request, now: float) -> list[Output]:
        return list(self.leg.on_request(server_key(request), request, now))

    def answer(self, request: Request, status: int, now: float, body: bytes = b"") -> list[Output]:
        """The peer answers a request the leg sent."""
        response: Response = reply(request, status, body=body)
        return list(self.leg.on_response(client_key(request), response, now))


KINDS = pytest.mark.parametrize("kind", ["incoming", "outgoing"])


def only_request(out: list[Output], method: str) -> Request:
    (found,) = requests(out, method)
    return found


# -- glare (§14.1) -------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "window"), [("incoming", (0.0, 2.0)), ("outgoing", (2.1, 4.0))])
def test_our_reinvite_gets_491_and_is_retried_after_the_14_1_delay(
    kind: str, window: tuple[float, float]
) -> None:
    """The side that chose the Call-ID (our outgoing leg) waits 2.1-4 s, the other 0-2 s."""
    side = Across(kind)
    leg = side.leg
    ref, out = leg.send("INVITE", T0 + 10, body=OFFER, content_type="application/sdp")
    first = only_request(out, "INVITE")
    assert first.body == OFFER

    out = side.answer(first, 491, T0 + 10.1)
    assert not of_type(out, RequestAnswered), "a 491 is retried, not reported"
    assert side.randomness.delays == [window]
    retry_at = T0 + 10.1 + (window[0] + window[1]) / 2
    assert leg.next_deadline() == pytest.approx(retry_at)
    assert leg.handle_timer(retry_at - 0.01) == []

    out = leg.handle_timer(retry_at)
    second = only_request(out, "INVITE")
    assert second.cseq.seq == first.cseq.seq + 1, "a new request: a new CSeq"
    assert second.top_via.branch != first.top_via.branch
    assert second.body == OFFER and second.call_id == first.call_id

    out = side.answer(second, 200, retry_at + 0.1, body=ANSWER)
    assert [a.cseq.seq for a in requests(out, "ACK")] == [second.cseq.seq]
    (answered,) = of_type(out, RequestAnswered)
    assert isinstance(answered, RequestAnswered)
    assert (answered.ref, answered.status, answered.method) == (ref, 200, "INVITE")


@KINDS
def test_glare_retries_end_after_a_few_and_the_owner_gets_the_491(kind: str) -> None:
    side = Across(kind)
    leg = side.leg
    ref, out = leg.send("UPDATE", T0 + 10, body=OFFER, content_type="application/sdp")
    now = T0 + 10
    for _ in range(GLARE_RETRIES):
        update = only_request(out, "UPDATE")
        now += 0.1
        assert not of_type(side.answer(update, 491, now), RequestAnswered)
        deadline = leg.next_deadline()
        assert deadline is not None
        now = deadline
        out = leg.handle_timer(now)
    last = only_request(out, "UPDATE")
    out = side.answer(last, 491, now + 0.1)
    assert [(r.ref, r.status) for r in of_type(out, RequestAnswered)] == [(ref, 491)]
    assert len(side.randomness.delays) == GLARE_RETRIES
    assert leg.state is LegState.CONFIRMED, "a lost glare is no reason to end the call"


@KINDS
@pytest.mark.parametrize("theirs", ["INVITE", "UPDATE"])
def test_the_peers_offer_while_our_reinvite_is_pending_gets_491(kind: str, theirs: str) -> None:
    side = Across(kind)
    leg = side.leg
    _, out = leg.send("INVITE", T0 + 10, body=OFFER, content_type="application/sdp")
    ours = only_request(out, "INVITE")
    peer = side.request(theirs, body=SDP)
    out = side.receive(peer, T0 + 10.05)
    assert statuses(out) == [491]
    assert not of_type(out, PeerRequest)

    side.answer(ours, 200, T0 + 10.1, body=ANSWER)
    again = side.request(theirs, body=SDP)
    out = side.receive(again, T0 + 12)
    assert [type(o).__name__ for o in out] == ["PeerRequest"], "no offer of ours is pending now"


@KINDS
def test_a_second_offer_while_the_peers_is_unanswered_gets_491(kind: str) -> None:
    side = Across(kind)
    first = side.request("INVITE", body=SDP)
    assert of_type(side.receive(first, T0 + 10), PeerRequest)
    update = side.request("UPDATE", body=SDP)
    assert statuses(side.receive(update, T0 + 10.1)) == [491]


# -- the 2xx to the peer's re-INVITE -------------------------------------------------------
@KINDS
def test_the_2xx_to_the_peers_reinvite_is_resent_until_its_ack(kind: str) -> None:
    side = Across(kind)
    leg = side.leg
    reinvite = side.request("INVITE", body=SDP)
    (event,) = of_type(side.receive(reinvite, T0 + 10), PeerRequest)
    assert isinstance(event, PeerRequest) and event.sdp == SDP
    out = leg.reply(event.ref, 200, T0 + 10.2, body=ANSWER)
    (ok,) = responses(out)
    assert ok.status == 200 and ok.body == ANSWER and ok.contacts

    copies = leg.handle_timer(T0 + 10.7)
    (copy,) = copies
    assert isinstance(copy, Transmit) and bytes(copy.message) == bytes(ok)
    assert copy.flow is not None or copy.destination is not None, "the edge must know where"
    if copy.destination is not None:
        assert (copy.destination.host, copy.destination.port) == PEER
    else:
        assert copy.flow is not None and copy.flow.remote == PEER

    ack = side.request("ACK", seq=reinvite.cseq.seq)
    out = list(leg.on_ack(ack, T0 + 11))
    assert out == [PeerAck(leg=leg.id, ref=event.ref, sdp=None)]
    assert not [o for _, fired in run_timers(leg, T0 + 100) for o in fired]


@KINDS
def test_no_ack_for_the_2xx_to_the_peers_reinvite_ends_the_call(kind: str) -> None:
    side = Across(kind)
    leg = side.leg
    reinvite = side.request("INVITE", body=SDP)
    (event,) = of_type(side.receive(reinvite, T0 + 10), PeerRequest)
    assert isinstance(event, PeerRequest)
    leg.reply(event.ref, 200, T0 + 10, body=ANSWER)
    fired = run_timers(leg, T0 + 10 + 31.99)
    assert len([o for _, out in fired for o in out if isinstance(o, Transmit)]) == 10
    assert not any(requests(out, "BYE") for _, out in fired)
    out = leg.handle_timer(T0 + 10 + 32)
    assert ended(out) == ["no ACK"]
    assert requests(out, "BYE")
    assert leg.state is LegState.TERMINATING


@KINDS
def test_a_reinvite_without_sdp_our_offer_in_the_2xx_its_answer_in_the_ack(kind: str) -> None:
    side = Across(kind)
    leg = side.leg
    reinvite = side.request("INVITE")
    (event,) = of_type(side.receive(reinvite, T0 + 10), PeerRequest)
    assert isinstance(event, PeerRequest) and event.sdp is None
    leg.reply(event.ref, 200, T0 + 10, body=OFFER)
    ack = side.request("ACK", body=ANSWER, seq=reinvite.cseq.seq)
    assert list(leg.on_ack(ack, T0 + 10.1)) == [PeerAck(leg=leg.id, ref=event.ref, sdp=ANSWER)]


@KINDS
def test_our_reinvite_without_sdp_the_owner_acks_the_offer_in_its_2xx(kind: str) -> None:
    side = Across(kind)
    leg = side.leg
    ref, out = leg.send("INVITE", T0 + 10)
    reinvite = only_request(out, "INVITE")
    assert not reinvite.body
    out = side.answer(reinvite, 200, T0 + 10.1, body=OFFER)
    assert not requests(out, "ACK"), "the 2xx offers: the ACK waits for the owner's answer"
    (answered,) = of_type(out, RequestAnswered)
    assert isinstance(answered, RequestAnswered) and answered.response is not None
    assert answered.response.body == OFFER
    peer = side.request("INVITE", body=SDP)
    assert statuses(side.receive(peer, T0 + 10.15)) == [491], "our answer is still owed"

    (ack,) = requests(leg.ack(ref, ANSWER, T0 + 10.2), "ACK")
    assert ack.body == ANSWER and ack.cseq.seq == reinvite.cseq.seq
    copy = side.answer(reinvite, 200, T0 + 10.6, body=OFFER)
    assert [bytes(a) for a in requests(copy, "ACK")] == [bytes(ack)]


@KINDS
@pytest.mark.parametrize("status", [408, 481])
def test_our_reinvite_answered_408_or_481_ends_the_dialog(kind: str, status: int) -> None:
    """§12.2.1.2: a 481 (or a 408) to a request in the dialog means the dialog is gone."""
    side = Across(kind)
    leg = side.leg
    ref, out = leg.send("INVITE", T0 + 10, body=OFFER, content_type="application/sdp")
    out = side.answer(only_request(out, "INVITE"), status, T0 + 10.1)
    assert [r.status for r in of_type(out, RequestAnswered)] == [status]
    assert ended(out) == ["dialog gone"]
    assert requests(out, "BYE")


# -- the session check -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "allow", "method"),
    [
        ("outgoing", "INVITE, ACK, BYE", "OPTIONS"),
        ("outgoing", "INVITE, ACK, BYE, UPDATE", "UPDATE"),
        ("incoming", "INVITE, ACK, BYE", "OPTIONS"),
    ],
)
def test_the_session_check_goes_out_and_a_200_keeps_the_call(
    kind: str, allow: str, method: str
) -> None:
    side = Across(kind, allow=allow, refresh=60.0)
    leg = side.leg
    fired = run_timers(leg, T0 + 60.5)
    checks = [r for _, out in fired for r in requests(out, method)]
    assert len(checks) == 1 and not checks[0].body
    assert checks[0].cseq.method == method
    out = side.answer(checks[0], 200, T0 + 60.6)
    assert out == [], "the check is the leg's own business"
    assert leg.state is LegState.CONFIRMED
    deadline = leg.next_deadline()
    assert deadline is not None and deadline == pytest.approx(T0 + 60 + 60)


@KINDS
@pytest.mark.parametrize("outcome", ["481", "timeout"])
def test_a_failed_session_check_sends_bye_and_ends(kind: str, outcome: str) -> None:
    side = Across(kind, refresh=60.0)
    leg = side.leg
    fired = run_timers(leg, T0 + 60.5)
    (check,) = [r for _, out in fired for r in requests(out, "OPTIONS")]
    if outcome == "481":
        out = side.answer(check, 481, T0 + 60.6)
    else:
        out = list(leg.on_client_failure(client_key(check), T0 + 60 + 32))
    assert ended(out) == ["session refresh failed"]
    assert not of_type(out, RequestAnswered), "no answer to a request the owner never sent"
    (bye,) = requests(out, "BYE")
    assert leg.state is LegState.TERMINATING
    assert leg.next_deadline() is None, "no more checks once ending"
    side.answer(bye, 200, T0 + 100)
    assert leg.state is LegState.TERMINATED


@pytest.mark.parametrize("answer", [True, False], ids=["bye answered", "bye timed out"])
def test_our_bye_ends_the_leg_answered_or_not(answer: bool) -> None:
    side = Across("outgoing")
    leg = side.leg
    bye = only_request(list(leg.hangup(T0 + 5)), "BYE")
    assert leg.state is LegState.TERMINATING
    if answer:
        side.answer(bye, 200, T0 + 5.1)
    else:
        leg.on_client_failure(client_key(bye), T0 + 37)
    assert leg.state is LegState.TERMINATED


# -- the peer's other requests ----------------------------------------------------------------
@KINDS
def test_the_peers_bye_gets_200_and_ends_the_leg(kind: str) -> None:
    side = Across(kind)
    out = side.receive(side.request("BYE"), T0 + 5)
    assert statuses(out) == [200]
    assert ended(out) == ["hung up"]
    assert side.leg.state is LegState.TERMINATED
    after = side.request("INFO")
    assert statuses(side.receive(after, T0 + 6)) == [481]


@KINDS
def test_options_gets_200_and_an_unknown_method_405_with_allow(kind: str) -> None:
    side = Across(kind)
    (ok,) = responses(side.receive(side.request("OPTIONS"), T0 + 5))
    assert ok.status == 200 and "UPDATE" in (ok.headers.get("allow") or "")
    (refused,) = responses(side.receive(side.request("SUBSCRIBE"), T0 + 6))
    assert refused.status == 405 and refused.headers.get("allow")


@KINDS
def test_a_request_with_an_old_cseq_gets_500(kind: str) -> None:
    side = Across(kind)
    side.receive(side.request("INFO", seq=10), T0 + 5)
    assert statuses(side.receive(side.request("INFO", seq=10), T0 + 6)) == [500]


def test_a_request_for_the_owner_is_answered_by_reply_once() -> None:
    side = Across("outgoing")
    (event,) = of_type(side.receive(side.request("INFO"), T0 + 5), PeerRequest)
    assert isinstance(event, PeerRequest)
    assert statuses(side.leg.reply(event.ref, 200, T0 + 5.1)) == [200]
    assert side.leg.reply(event.ref, 200, T0 + 5.2) == []
