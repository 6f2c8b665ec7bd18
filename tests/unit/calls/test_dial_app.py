"""The dial application through the call core, in memory with a fake clock: no answer, late
offers either way, forking, busy, and requests for dialogs nobody has."""

from __future__ import annotations

from typing import Any

from pbx.apps.context import CallPolicy
from pbx.sip.message import make_response
from pbx.sip.sdp import SessionDescription
from tests.unit.calls.core_harness import Office, Phone, answered, sdp


def port_of(body: bytes) -> int:
    return SessionDescription.parse(body.decode()).media[0].port


def remotes(office: Office, side: str) -> list[Any]:
    """Where the relay was told to send ``side``'s media, in order."""
    return [kw.get("remote") for relay in office.relays for s, kw in relay.updates if s == side]


def records(office: Office) -> list[Any]:
    return [r for r in office.rows if type(r).__name__ == "CallRecord"]


def second_contact(office: Office, number: str, port: int) -> Phone:
    """A second registered contact of ``number`` (a desk phone and a softphone)."""
    first = office[number]
    other = office.add(number, port=port)
    office.phones[number] = first
    office.phones[f"{number}@{port}"] = other
    return other


# -- no answer ---------------------------------------------------------------------------
def test_no_answer_the_ring_timeout_gives_the_caller_408_and_cancels_the_fork() -> None:
    office = Office("201", "202", policy=CallPolicy(ring_timeout=20.0))
    a, b = office["201"], office["202"]
    a.send(a.invite("202"))
    fork = b.last("INVITE")
    b.answer(fork, 180)
    assert [r.status for r in a.responses()] == [100, 180]
    office.advance(19.9)
    assert not b.requests("CANCEL") and not a.responses(408)
    office.advance(0.2)
    assert [r.status for r in a.responses()][-1] == 408
    cancel = b.last("CANCEL")
    assert cancel.top_via.branch == fork.top_via.branch, "§9.1: the CANCEL matches the INVITE"
    b.answer(cancel, 200)
    b.answer(fork, 487)
    (record,) = records(office)
    assert record.status == 408 and record.end_reason == "ring timeout"
    assert not office.core.calls()


def test_no_answer_cancels_every_fork_that_rang() -> None:
    office = Office("201", "202", policy=CallPolicy(ring_timeout=20.0))
    a, b = office["201"], office["202"]
    other = second_contact(office, "202", 41202)
    a.send(a.invite("202"))
    b.answer(b.last("INVITE"), 180, tag="desk")
    other.answer(other.last("INVITE"), 180, tag="soft")
    office.advance(21.0)
    assert b.requests("CANCEL") and other.requests("CANCEL")
    assert a.responses(408)


def test_no_answer_from_a_silent_fork_its_cancel_waits_for_its_first_provisional() -> None:
    office = Office("201", "202", policy=CallPolicy(ring_timeout=20.0))
    a, b = office["201"], office["202"]
    a.send(a.invite("202"))
    fork = b.last("INVITE")
    office.advance(20.1)  # (the fork sends nothing: not even a 100)
    assert a.responses(408)
    assert not b.requests("CANCEL"), "§9.1: no CANCEL before a provisional"
    b.answer(fork, 180)
    assert b.requests("CANCEL"), "the CANCEL goes once the fork rings"


# -- late offers ---------------------------------------------------------------------------
def test_a_late_offer_the_2xx_offers_and_the_answer_in_the_ack_reaches_the_relay() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    a.send(a.invite("202", body=b""))
    fork = b.last("INVITE")
    assert fork.body, "the switch offers to the callee itself"
    b.answer(fork, 200, sdp(5000))
    ok = a.responses(200)[-1]
    assert ok.body and ok.content_type == "application/sdp", "the 2xx carries our offer"
    assert port_of(ok.body) == 30000, "the offer names the relay's caller side"
    assert ("127.0.0.1", 4010) not in remotes(office, "a")
    a.in_dialog("ACK", ok, 1, sdp(4010))
    assert remotes(office, "a")[-1] == ("127.0.0.1", 4010)
    assert remotes(office, "b")[-1] == ("127.0.0.1", 5000)
    assert office.core.calls(), "the call is up"


def test_a_late_offer_with_no_answer_in_the_ack_ends_the_call() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    a.send(a.invite("202", body=b""))
    b.answer(b.last("INVITE"), 200, sdp(5000))
    a.in_dialog("ACK", a.responses(200)[-1], 1)
    assert a.requests("BYE") and b.requests("BYE")


def test_a_reinvite_without_sdp_is_crossed_the_answer_in_its_ack_goes_on() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    a.in_dialog("INVITE", ok, 2)
    crossed = b.last("INVITE")
    assert crossed.cseq.seq == 2 and not crossed.body, "no offer in, no offer across"
    b.answer(crossed, 200, sdp(5004, 2))
    reply = a.responses(200)[-1]
    assert reply.cseq.method == "INVITE" and reply.cseq.seq == 2
    assert reply.body and port_of(reply.body) == 30000, "the other leg's offer, to the relay"
    assert not [ack for ack in b.requests("ACK") if ack.cseq.seq == 2], "the ACK waits"

    a.in_dialog("ACK", ok, 2, sdp(4004, 2))
    (ack,) = [ack for ack in b.requests("ACK") if ack.cseq.seq == 2]
    assert ack.body and port_of(ack.body) == 30002, "the answer, rewritten to the relay"
    assert remotes(office, "a")[-1] == ("127.0.0.1", 4004)
    assert remotes(office, "b")[-1] == ("127.0.0.1", 5004)


def test_copies_of_our_200_to_the_callees_reinvite_go_back_to_the_callee() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    b.in_dialog("INVITE", fork, 2, sdp(5006, 2))
    crossed = a.last("INVITE")
    a.answer(crossed, 200, sdp(4006, 2), tag="t201")
    first = [r for r in b.responses(200) if r.cseq.seq == 2]
    assert len(first) == 1
    office.advance(0.6)  # no ACK from the callee within T1
    copies = [r for r in b.responses(200) if r.cseq.seq == 2]
    assert len(copies) == 2 and bytes(copies[1]) == bytes(copies[0])


# -- forking -------------------------------------------------------------------------------
def test_two_contacts_ring_the_first_200_wins_and_the_other_is_cancelled() -> None:
    office = Office("201", "202")
    a, desk = office["201"], office["202"]
    soft = second_contact(office, "202", 41202)
    a.send(a.invite("202"))
    desk_invite, soft_invite = desk.last("INVITE"), soft.last("INVITE")
    assert desk_invite.call_id == soft_invite.call_id
    assert desk_invite.top_via.branch != soft_invite.top_via.branch
    desk.answer(desk_invite, 180, tag="desk")
    soft.answer(soft_invite, 180, tag="soft")
    soft.answer(soft_invite, 200, sdp(5002), tag="soft")
    assert a.responses(200), "the first 200 goes to the caller"
    assert soft.requests("ACK")
    cancel = desk.last("CANCEL")
    assert cancel.top_via.branch == desk_invite.top_via.branch
    assert not soft.requests("CANCEL")

    # The desk phone answered as the CANCEL crossed it: its 200 is ACKed and it is sent away.
    desk.answer(cancel, 200)
    desk.answer(desk_invite, 200, sdp(5000), tag="desk")
    (ack,) = desk.requests("ACK")
    (bye,) = desk.requests("BYE")
    assert ack.to.tag == bye.to.tag == "desk" and ack.cseq.seq == 1
    assert len(a.responses(200)) == 1, "the caller hears of one answer only"
    assert not soft.requests("BYE"), "the winner stays"
    assert office.core.calls()


def test_a_late_200_from_a_fork_that_never_rang_is_acked_and_byed() -> None:
    office = Office("201", "202")
    a, desk = office["201"], office["202"]
    soft = second_contact(office, "202", 41202)
    a.send(a.invite("202"))
    desk_invite, soft_invite = desk.last("INVITE"), soft.last("INVITE")
    soft.answer(soft_invite, 200, sdp(5002), tag="soft")
    assert not desk.requests("CANCEL"), "§9.1: no CANCEL before a provisional"
    desk.answer(desk_invite, 200, sdp(5000), tag="desk")
    assert desk.requests("ACK") and desk.requests("BYE")
    assert len(a.responses(200)) == 1


def test_busy_from_every_fork_is_busy_for_the_caller() -> None:
    office = Office("201", "202")
    a, desk = office["201"], office["202"]
    soft = second_contact(office, "202", 41202)
    a.send(a.invite("202"))
    desk.answer(desk.last("INVITE"), 486, tag="desk")
    assert not [r for r in a.responses() if r.status >= 300], "the other fork still rings"
    soft.answer(soft.last("INVITE"), 486, tag="soft")
    assert [r.status for r in a.responses()][-1] == 486
    (record,) = records(office)
    assert record.status == 486
    assert not office.core.calls()


def test_one_busy_fork_and_one_that_declines_is_busy() -> None:
    office = Office("201", "202")
    a, desk = office["201"], office["202"]
    soft = second_contact(office, "202", 41202)
    a.send(a.invite("202"))
    desk.answer(desk.last("INVITE"), 603, tag="desk")
    soft.answer(soft.last("INVITE"), 486, tag="soft")
    assert [r.status for r in a.responses()][-1] == 486


# -- dialogs nobody has ----------------------------------------------------------------------
def test_an_in_dialog_request_for_an_unknown_dialog_gets_481() -> None:
    office = Office("201", "202")
    a = office["201"]
    stray = a.invite("202", call_id="nobody@test")
    never = make_response(stray, 200, to_tag="gone")  # as if the switch had answered it once
    for seq, method in enumerate(("BYE", "INFO", "INVITE", "UPDATE"), start=2):
        a.in_dialog(method, never, seq)
        assert a.responses()[-1].status == 481, method


def test_a_request_in_an_ended_call_gets_481() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    a.in_dialog("BYE", ok, 2)
    b.answer(b.last("BYE"))
    a.in_dialog("INFO", ok, 3)
    assert a.responses()[-1].status == 481


# -- glare across the bridge ------------------------------------------------------------------
def test_a_crossed_reinvite_that_meets_glare_is_retried_and_its_answer_comes_back() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    a.in_dialog("INVITE", ok, 2, sdp(4002, 2))
    crossed = b.last("INVITE")
    b.answer(crossed, 491)
    assert 2 in [ack.cseq.seq for ack in b.requests("ACK")], "the 491 is ACKed (§17.1.1.3)"
    assert not [r for r in a.responses() if r.cseq.seq == 2 and r.status >= 200], "no 491 yet"
    office.advance(2.0)
    assert len(b.requests("INVITE")) == 2, "§14.1: the switch chose the Call-ID: 2.1 s at least"
    office.advance(2.0)
    retry = b.last("INVITE")
    assert retry.cseq.seq == 3 and retry.body
    b.answer(retry, 200, sdp(5000, 2))
    assert [ack.cseq.seq for ack in b.requests("ACK") if ack.cseq.seq == 3] == [3]
    (reply,) = [r for r in a.responses() if r.cseq.seq == 2 and r.status >= 200]
    assert reply.status == 200 and reply.body


# -- give-ups the application hears of ---------------------------------------------------------
def test_no_prack_from_the_caller_500_to_it_and_the_callee_is_cancelled() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    a.send(a.invite("202", headers=(("Require", "100rel"), ("Supported", "100rel"))))
    fork = b.last("INVITE")
    b.answer(fork, 183, sdp(5000))
    (early,) = a.responses(183)
    assert early.headers.get("rseq") == "1" and early.body
    office.advance(31.9)
    assert len(a.responses(183)) == 7, "sent, then resent at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s"
    assert not a.responses(500)
    office.advance(0.2)
    assert a.responses(500), "RFC 3262 §3: no PRACK in 64*T1"
    assert b.requests("CANCEL")
    (record,) = records(office)
    assert record.status == 500 and record.end_reason == "no PRACK from caller"


def test_a_session_check_nobody_answers_ends_the_call_on_both_sides() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    answered(office)
    office.advance(900.5)
    assert a.requests("OPTIONS") and b.requests("OPTIONS"), "each leg checks its peer"
    assert not a.requests("BYE") and not b.requests("BYE")
    office.advance(40.0)  # the checks time out (64*T1)
    assert a.requests("BYE") and b.requests("BYE")
    assert not office.core.calls()
    (record,) = records(office)
    assert record.end_reason == "session refresh failed"
