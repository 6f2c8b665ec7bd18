"""The call core in memory: a call set up, answered, crossed and ended, with a fake clock."""

from __future__ import annotations

from tests.unit.calls.core_harness import Office, answered, sdp


def test_a_call_is_answered_acked_and_hung_up() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    assert [r.status for r in a.responses()] == [100, 200]
    assert b.requests("ACK"), "the switch ACKs the callee's 200"
    a.in_dialog("BYE", ok, 2)
    assert b.requests("BYE")
    assert a.responses(200)[-1].cseq.method == "BYE"
    b.answer(b.last("BYE"))
    records = [r for r in office.rows if type(r).__name__ == "CallRecord"]
    assert len(records) == 1 and records[0].end_reason == "caller hung up"


def test_a_copy_of_the_200_to_a_crossed_reinvite_gets_the_same_ack() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    a.in_dialog("INVITE", ok, 2, sdp(4002, 2))
    crossed = b.last("INVITE")
    assert crossed.cseq.seq == 2 and crossed.body.startswith(b"v=0")
    b.answer(crossed, 200, sdp(5000, 2))
    acks = b.requests("ACK")
    assert len(acks) == 2 and acks[-1].cseq.seq == 2
    b.answer(crossed, 200, sdp(5000, 2))
    assert bytes(b.requests("ACK")[-1]) == bytes(acks[-1])


def test_no_ack_for_the_200_ends_the_call_after_64_t1() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    a.send(a.invite("202"))
    b.answer(b.last("INVITE"), 200, sdp(5000))
    office.advance(31.0)
    copies = a.responses(200)
    assert len(copies) >= 8, [r.status for r in copies]
    assert not b.requests("BYE")
    office.advance(2.0)
    assert b.requests("BYE"), "no ACK in 64*T1: the callee is released"


def test_a_copy_of_the_200_after_the_call_ended_gets_the_same_ack_from_what_is_left() -> None:
    """§13.2.2.4 until the INVITE transaction's Timer M: the call is over and forgotten, its
    leg is not kept (only the ACK's bytes are), yet a copy of the 200 is ACKed the same."""
    from pbx.calls.leg import Leg

    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    callee_ok = b.answer(fork, 200, sdp(5000))  # the same 200 again (harness: same tag)
    first_ack = b.requests("ACK")[-1]
    a.in_dialog("BYE", ok, 2)
    b.answer(b.last("BYE"))
    assert not office.core.calls()
    assert not any(isinstance(v, Leg) for v in office.core._by_client.values())
    b.send(callee_ok)
    assert bytes(b.requests("ACK")[-1]) == bytes(first_ack)


def test_every_way_a_call_ends_closes_its_relay() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)  # answered, then the caller hangs up
    a.in_dialog("BYE", ok, 2)
    a.send(a.invite("202"))  # rings until the ring timeout
    b.answer(b.last("INVITE"), 180)
    a.send(a.invite("202"))  # busy
    b.answer(b.last("INVITE"), 486)
    office.advance(120)  # the first ringing one times out
    assert office.relays and not office.open_relays(), office.open_relays()


def test_ended_calls_leave_nothing_in_the_core_but_their_transactions() -> None:
    """Hundreds of calls, all over: no application, leg or deadline of theirs is kept (the
    session checks' deadlines were 15 minutes away), only transactions running their timers."""
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    for i in range(300):
        a.send(a.invite("202", call_id=f"many-{i}@test"))
        fork = b.last("INVITE")
        b.answer(fork, 200, sdp(5000))
        ok = a.responses(200)[-1]
        a.in_dialog("ACK", ok, 1, branch=f"ack{i}")
        a.in_dialog("BYE", ok, 2, branch=f"bye{i}")
        b.answer(b.last("BYE"))
    core = office.core
    assert not core.calls() and not core._apps and not core._owner and not core._legs_by_call_id
    assert len(core._heap) <= 64, len(core._heap)
    office.advance(40)  # Timer M and the rest run out
    assert not core._by_client and len(core.tl) == 0
