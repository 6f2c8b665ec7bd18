"""An incoming leg (the switch is the UAS of the INVITE), driven directly with a fake clock."""

from __future__ import annotations

import pytest

from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.leg_states import LegState
from pbx.calls.outputs import Confirmed, Respond, StartClient, Transmit
from tests.unit.calls.leg_fakes import (
    PEER,
    SDP,
    T0,
    Caller,
    client_key,
    ended,
    make_setup,
    of_type,
    requests,
    responses,
    run_timers,
    server_key,
    statuses,
)

ANSWER = SDP.replace(b"4000", b"30000")


def started(caller: Caller, *, reliable_1xx: bool = False) -> IncomingLeg:
    leg = caller.leg(make_setup(), reliable_1xx=reliable_1xx)
    out = leg.start(T0)
    assert statuses(out) == [100]
    assert leg.state is LegState.PROCEEDING
    return leg


def answered(caller: Caller | None = None) -> tuple[Caller, IncomingLeg]:
    caller = caller or Caller()
    leg = started(caller)
    out = leg.answer(ANSWER, T0)
    assert statuses(out) == [200]
    assert leg.state is LegState.CONFIRMED
    return caller, leg


def test_the_100_carries_no_tag_and_the_answer_does() -> None:
    caller = Caller()
    leg = caller.leg(make_setup())
    trying = responses(leg.start(T0))[0]
    assert trying.to.tag is None
    ok = responses(leg.answer(ANSWER, T0))[0]
    assert ok.to.tag == "swt" and ok.body == ANSWER
    assert ok.contacts, "a 2xx to an INVITE carries our Contact (§12.1.1)"


# -- no ACK -------------------------------------------------------------------------------
def test_no_ack_the_2xx_is_resent_at_t1_doubling_to_t2_and_bye_after_64_t1() -> None:
    caller, leg = answered()
    fired = run_timers(leg, T0 + 64 * 0.5 - 0.01)
    resent = [when - T0 for when, out in fired for r in responses(out) if r.status == 200]
    assert resent == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    gaps = [b - a for a, b in zip([0.0, *resent], resent, strict=False)]
    assert gaps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert not any(requests(out, "BYE") for _, out in fired)
    assert leg.state is LegState.CONFIRMED

    out = leg.handle_timer(T0 + 32.0)
    assert ended(out) == ["no ACK"]
    (bye,) = requests(out, "BYE")
    assert bye.call_id == caller.invite.call_id
    assert bye.from_.tag == "swt" and bye.to.tag == "ct"
    assert bye.uri == caller.invite.contacts[0].uri
    assert leg.state is LegState.TERMINATING
    assert not run_timers(leg, T0 + 100), "nothing more is resent once we gave up"

    ok = caller.answer_to(bye)
    leg.on_response(client_key(bye), ok, T0 + 32.1)
    assert leg.state is LegState.TERMINATED


def test_the_ack_stops_the_resending_and_confirms_once() -> None:
    caller, leg = answered()
    out = leg.handle_timer(T0 + 0.5)
    assert statuses(out) == [200]
    ack = caller.request("ACK")
    out = leg.on_ack(ack, T0 + 0.6)
    assert of_type(out, Confirmed) == [Confirmed(leg="in", sdp=None)]
    assert leg.confirmed
    assert not leg.on_ack(ack, T0 + 0.7), "a retransmitted ACK is absorbed"
    fired = run_timers(leg, T0 + 60)
    assert not [o for _, out in fired for o in out], "no more copies, no BYE"


def test_the_2xx_copies_are_the_same_bytes() -> None:
    _, leg = answered()
    first = responses(leg.handle_timer(T0 + 0.5))[0]
    second = responses(leg.handle_timer(T0 + 1.5))[0]
    assert bytes(first) == bytes(second)
    (transmit,) = leg.handle_timer(T0 + 3.5)
    assert isinstance(transmit, Transmit) and transmit.flow is not None
    assert transmit.flow.remote == PEER, "a copy goes where the INVITE came from"


# -- reliable provisionals (RFC 3262) ------------------------------------------------------
def test_no_prack_the_reliable_183_is_resent_then_500_after_64_t1() -> None:
    caller = Caller(headers=[("Require", "100rel")])
    leg = started(caller, reliable_1xx=True)
    (early,) = responses(leg.progress(183, T0, sdp=ANSWER))
    assert early.headers.get("rseq") == "1"
    assert "100rel" in early.option_tags("require")
    assert leg.state is LegState.EARLY

    fired = run_timers(leg, T0 + 31.99)
    resent = [when - T0 for when, out in fired for r in responses(out) if r.status == 183]
    assert resent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5], "RFC 3262 §3: T1 doubling, no T2 cap"
    assert all(bytes(r) == bytes(early) for _, out in fired for r in responses(out))

    out = leg.handle_timer(T0 + 32.0)
    assert statuses(out) == [500]
    assert isinstance(out[0], Respond) and out[0].key == server_key(caller.invite)
    assert ended(out) == ["no PRACK"]
    assert leg.state is LegState.TERMINATED
    assert leg.next_deadline() is None
    assert leg.answer(ANSWER, T0 + 33) == [], "no 2xx after the 500"


def test_the_prack_stops_the_183_and_lets_the_held_2xx_go() -> None:
    caller = Caller(headers=[("Require", "100rel")])
    leg = started(caller, reliable_1xx=True)
    leg.progress(183, T0, sdp=ANSWER)
    assert leg.answer(ANSWER, T0 + 0.1) == [], "§3: no 2xx while an SDP 1xx awaits PRACK"
    prack = caller.request("PRACK", headers=[("RAck", "1 1 INVITE")])
    out = leg.on_request(server_key(prack), prack, T0 + 0.2)
    assert [(r.status, r.cseq.method) for r in responses(out)] == [(200, "PRACK"), (200, "INVITE")]
    assert leg.state is LegState.CONFIRMED
    fired = run_timers(leg, T0 + 0.75)
    assert [r.status for _, out in fired for r in responses(out)] == [200]
    assert all(r.cseq.method == "INVITE" for _, out in fired for r in responses(out))


@pytest.mark.parametrize("rack", ["2 1 INVITE", "1 2 INVITE", "1 1 UPDATE", ""])
def test_a_prack_with_the_wrong_rack_gets_481(rack: str) -> None:
    caller = Caller(headers=[("Require", "100rel")])
    leg = started(caller, reliable_1xx=True)
    leg.progress(183, T0, sdp=ANSWER)
    headers = [("RAck", rack)] if rack else []
    prack = caller.request("PRACK", headers=headers)
    out = leg.on_request(server_key(prack), prack, T0 + 0.2)
    assert statuses(out) == [481]
    assert leg.state is LegState.EARLY
    assert [r.status for r in responses(leg.handle_timer(T0 + 0.5))] == [183], "still resent"


def test_a_second_reliable_provisional_waits_for_the_first_prack() -> None:
    caller = Caller(headers=[("Require", "100rel")])
    leg = started(caller, reliable_1xx=True)
    leg.progress(180, T0)
    assert leg.progress(183, T0 + 0.1, sdp=ANSWER) == [], "§3: one outstanding at a time"
    prack = caller.request("PRACK", headers=[("RAck", "1 1 INVITE")])
    out = leg.on_request(server_key(prack), prack, T0 + 0.2)
    sent = responses(out)
    assert [r.status for r in sent] == [200, 183]
    assert sent[1].headers.get("rseq") == "2"


# -- late offer ----------------------------------------------------------------------------
def test_a_late_offer_our_offer_in_the_2xx_the_answer_in_the_ack() -> None:
    caller = Caller(body=b"")
    leg = started(caller)
    assert leg.offered_late
    (ok,) = responses(leg.answer(SDP, T0))
    assert ok.body == SDP and ok.content_type == "application/sdp"
    answer = SDP.replace(b"4000", b"4010")
    out = leg.on_ack(caller.request("ACK", body=answer), T0 + 0.1)
    assert of_type(out, Confirmed) == [Confirmed(leg="in", sdp=answer)]


def test_an_ack_with_sdp_after_an_early_offer_carries_no_answer() -> None:
    caller, leg = answered()
    out = leg.on_ack(caller.request("ACK", body=SDP), T0 + 0.1)
    assert of_type(out, Confirmed) == [Confirmed(leg="in", sdp=None)]


# -- CANCEL and BYE before the answer -----------------------------------------------------
def test_cancel_before_the_2xx_gets_200_and_the_invite_487() -> None:
    caller = Caller()
    leg = started(caller)
    leg.progress(180, T0)
    cancel = caller.request("CANCEL")
    out = leg.on_cancel(server_key(cancel), cancel, T0 + 1)
    assert [(r.status, r.cseq.method) for r in responses(out)] == [(200, "CANCEL"), (487, "INVITE")]
    invite_reply = [o for o in out if isinstance(o, Respond)][1]
    assert invite_reply.key == server_key(caller.invite)
    assert ended(out) == ["cancelled"]
    assert leg.state is LegState.TERMINATED
    assert leg.answer(ANSWER, T0 + 2) == [], "no 2xx after the 487"


def test_cancel_of_a_reliable_183_stops_its_resending() -> None:
    caller = Caller(headers=[("Require", "100rel")])
    leg = started(caller, reliable_1xx=True)
    leg.progress(183, T0, sdp=ANSWER)
    cancel = caller.request("CANCEL")
    leg.on_cancel(server_key(cancel), cancel, T0 + 0.1)
    assert not run_timers(leg, T0 + 60)


def test_cancel_after_the_2xx_gets_200_and_changes_nothing() -> None:
    caller, leg = answered()
    cancel = caller.request("CANCEL")
    out = leg.on_cancel(server_key(cancel), cancel, T0 + 0.1)
    assert [(r.status, r.cseq.method) for r in responses(out)] == [(200, "CANCEL")]
    assert not ended(out)
    assert leg.state is LegState.CONFIRMED
    assert statuses(leg.handle_timer(T0 + 0.5)) == [200], "the 2xx is still resent until ACK"


def test_bye_on_the_early_dialog_gets_200_and_the_invite_487() -> None:
    caller = Caller()
    leg = started(caller)
    leg.progress(180, T0)
    bye = caller.request("BYE")
    out = leg.on_request(server_key(bye), bye, T0 + 1)
    assert [(r.status, r.cseq.method) for r in responses(out)] == [(200, "BYE"), (487, "INVITE")]
    assert ended(out) == ["hung up"]
    assert leg.state is LegState.TERMINATED


def test_a_request_before_any_dialog_gets_481() -> None:
    caller = Caller()
    leg = started(caller)  # only the 100: no early dialog yet
    bye = caller.request("BYE")
    assert statuses(leg.on_request(server_key(bye), bye, T0 + 1)) == [481]
    assert leg.state is LegState.PROCEEDING


def test_reject_sends_the_status_and_ends_the_leg() -> None:
    caller = Caller()
    leg = started(caller)
    out = leg.reject(486, T0 + 1)
    assert statuses(out) == [486]
    assert leg.state is LegState.TERMINATED
    assert leg.reject(486, T0 + 2) == [] and leg.answer(ANSWER, T0 + 2) == []


def test_hangup_of_an_answered_leg_sends_bye_and_no_ended() -> None:
    caller, leg = answered()
    leg.on_ack(caller.request("ACK"), T0 + 0.1)
    out = leg.hangup(T0 + 5)
    assert [o.request.method for o in out if isinstance(o, StartClient)] == ["BYE"]
    assert not ended(out), "an end the owner asked for is not reported back"
    assert leg.state is LegState.TERMINATING


# -- a hang-up before the ACK: the BYE waits for it (§15) ------------------------------------
def test_a_hangup_before_the_ack_waits_for_it_then_byes() -> None:
    caller, leg = answered()
    assert leg.hangup(T0 + 1) == [], "§15: no BYE before the ACK for our 2xx"
    assert leg.state is LegState.CONFIRMED
    out = leg.on_ack(caller.request("ACK"), T0 + 2)
    assert of_type(out, Confirmed) and [r.method for r in requests(out)] == ["BYE"]
    assert not ended(out) and leg.state is LegState.TERMINATING
    assert leg.on_ack(caller.request("ACK"), T0 + 3) == [], "a copy of the ACK: no second BYE"


def test_a_hangup_before_an_ack_that_never_comes_byes_at_the_64_t1_give_up() -> None:
    caller, leg = answered()
    leg.hangup(T0 + 1)
    fired = run_timers(leg, T0 + 64 * 0.5 + 1)
    byes = [(when, r) for when, out in fired for r in requests(out, "BYE")]
    assert [when for when, _ in byes] == [T0 + 32.0]
    assert not any(ended(out) for _, out in fired), "the owner asked for this end"
    assert leg.state is LegState.TERMINATING


def test_over_a_reliable_transport_a_held_bye_waits_64_t1_for_the_ack() -> None:
    caller = Caller()
    leg = caller.leg(make_setup())
    leg.reliable = True
    leg.start(T0)
    leg.answer(ANSWER, T0)
    assert leg.hangup(T0 + 1) == [] and leg.next_deadline() == T0 + 1 + 32.0
    assert run_timers(leg, T0 + 32.9) == []
    ((_, out),) = run_timers(leg, T0 + 33.0)
    assert [r.method for r in requests(out)] == ["BYE"]
