"""Transfer in memory: REFER from either party, NOTIFY progress, the join, the failures."""

from __future__ import annotations

import pytest

from pbx.sip.message import Request, Response
from pbx.sip.refer import escape_hvalue, parse_sipfrag
from tests.unit.calls.core_harness import Office, Phone, answered, sdp


def refer(phone: Phone, peer: Request | Response, seq: int, target: str) -> Request:
    return phone.in_dialog("REFER", peer, seq, headers=(("Refer-To", f"<sip:{target}@127.0.0.1>"),))


def frags(phone: Phone) -> list[int]:
    return [parse_sipfrag(n.body).status for n in phone.requests("NOTIFY")]


@pytest.mark.parametrize("transferor", ["201", "202"])
def test_a_blind_transfer_joins_the_other_party_to_the_target(transferor: str) -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork, ok = answered(office)
    x = office[transferor]
    y = b if x is a else a
    dialog_peer: Request | Response = ok if x is a else fork
    refer(x, dialog_peer, 5, "203")
    assert x.responses(202), [m for m in x.got if isinstance(m, Response)]
    assert frags(x) == [100]
    invite = c.last("INVITE")
    assert invite.headers.get("referred-by"), "RFC 3892: Referred-By on the new INVITE"
    c.answer(invite, 180)
    assert frags(x) == [100, 180]
    c.answer(invite, 200, sdp(6000))
    assert frags(x)[-1] == 200
    assert "terminated" in (x.requests("NOTIFY")[-1].headers.get("subscription-state") or "")
    moved = y.last("INVITE")
    assert moved.to.tag is not None and b"a=sendrecv" in moved.body, "a re-INVITE, resumed"
    y.answer(moved, 200, sdp(7000, 3))
    assert x.requests("BYE"), "the transferor is released"
    assert not y.requests("BYE") and not c.requests("BYE")
    # The new call is a call: the target hangs up, the transferee is hung up.
    c.in_dialog("BYE", invite, 2)
    assert y.requests("BYE")
    assert not office.open_relays(), "the call's relay is closed at its end"


def test_a_blind_transfer_to_a_busy_target_keeps_the_call() -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork, ok = answered(office)
    refer(a, ok, 5, "203")
    c.answer(c.last("INVITE"), 486)
    assert frags(a)[-1] == 486
    assert not a.requests("BYE") and not b.requests("BYE")
    # The call goes on: a BYE from the transferor ends it as before.
    a.in_dialog("BYE", ok, 6)
    assert b.requests("BYE")


def test_a_refer_to_a_number_nobody_has_is_refused_and_the_call_stays() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    refer(a, ok, 5, "299")
    assert a.responses()[-1].status == 404
    assert not a.requests("BYE") and not b.requests("BYE")


def test_a_refer_outside_any_dialog_we_know_gets_481() -> None:
    office = Office("201", "202")
    a = office["201"]
    fork, ok = answered(office)
    stray = Response(headers=ok.headers.with_set("Call-ID", "nope@test"), body=b"", status=200,
                     reason="OK")  # fmt: skip
    refer(a, stray, 5, "202")
    assert a.responses()[-1].status == 481


def test_the_transferor_hanging_up_early_does_not_stop_the_transfer() -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork, ok = answered(office)
    refer(a, ok, 5, "203")
    a.in_dialog("BYE", ok, 6)
    assert not b.requests("BYE")
    invite = c.last("INVITE")
    c.answer(invite, 200, sdp(6000))
    b.answer(b.last("INVITE"), 200, sdp(7000, 3))
    assert not b.requests("BYE") and not c.requests("BYE")


def test_an_attended_transfer_joins_the_two_remote_parties() -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork1, ok1 = answered(office, "201", "202")  # call 1: A-B
    fork2, ok2 = answered(office, "201", "203")  # call 2: A-C (the consultation)
    replaces = escape_hvalue(f"{ok2.call_id};to-tag={ok2.to.tag};from-tag={ok2.from_.tag}")
    a.in_dialog(
        "REFER", ok1, 5, headers=(("Refer-To", f"<sip:203@127.0.0.1?Replaces={replaces}>"),)
    )
    assert a.responses(202)
    moved = b.last("INVITE")
    assert moved.cseq.seq >= 2
    b.answer(moved, 200, sdp(7000, 3))
    byes = a.requests("BYE")
    assert {r.call_id for r in byes} == {ok1.call_id, ok2.call_id}, "both of A's legs released"
    assert not b.requests("BYE") and not c.requests("BYE")
    assert frags(a)[-1] == 200
    assert len(office.open_relays()) == 1, "the first call's relay is closed at the join"


def test_a_semi_attended_transfer_joins_when_the_target_answers() -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork1, ok1 = answered(office, "201", "202")
    a.send(a.invite("203"))
    ringing_invite = c.last("INVITE")
    c.answer(ringing_invite, 180)
    early = a.responses(180)[-1]
    replaces = escape_hvalue(f"{early.call_id};to-tag={early.to.tag};from-tag={early.from_.tag}")
    a.in_dialog(
        "REFER", ok1, 5, headers=(("Refer-To", f"<sip:203@127.0.0.1?Replaces={replaces}>"),)
    )
    assert a.responses(202)
    assert a.responses(487), "the consultation INVITE ends"
    c.answer(ringing_invite, 200, sdp(6000))
    moved = b.last("INVITE")
    b.answer(moved, 200, sdp(7000, 3))
    assert any(r.call_id == ok1.call_id for r in a.requests("BYE"))
    assert not b.requests("BYE") and not c.requests("BYE")


def test_replaces_naming_no_dialog_fails_in_the_notify_and_keeps_the_call() -> None:
    office = Office("201", "202", "203")
    a, b = office["201"], office["202"]
    fork1, ok1 = answered(office, "201", "202")
    a.in_dialog(
        "REFER", ok1, 5,
        headers=(("Refer-To", "<sip:203@127.0.0.1?Replaces=x%3Bto-tag%3Dy%3Bfrom-tag%3Dz>"),),
    )  # fmt: skip
    assert a.responses(202) and frags(a) == [481]
    assert not a.requests("BYE") and not b.requests("BYE")


def test_a_target_that_never_answers_fails_the_transfer_after_the_ring_timeout() -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork, ok = answered(office)
    refer(a, ok, 5, "203")
    c.answer(c.last("INVITE"), 180)
    for notify in a.requests("NOTIFY"):  # a phone answers its NOTIFYs (else Timer F ends it)
        a.answer(notify)
    office.advance(office.core.policy.ring_timeout + 1)
    assert c.requests("CANCEL"), "the target stops ringing"
    assert frags(a)[-1] == 408
    assert not a.requests("BYE") and not b.requests("BYE")


def test_a_target_that_declines_fails_the_transfer_and_without_the_transferor_ends_it() -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork, ok = answered(office)
    refer(a, ok, 5, "203")
    a.in_dialog("BYE", ok, 6)  # the transferor hangs up at once
    c.answer(c.last("INVITE"), 603)
    assert b.requests("BYE"), "nobody is left for the transferee: its call ends"


def test_the_records_say_who_transferred_to_whom() -> None:
    office = Office("201", "202", "203")
    a, b, c = office["201"], office["202"], office["203"]
    fork, ok = answered(office)
    refer(a, ok, 5, "203")
    invite = c.last("INVITE")
    c.answer(invite, 200, sdp(6000))
    b.answer(b.last("INVITE"), 200, sdp(7000, 3))
    c.in_dialog("BYE", invite, 2)
    records = [r for r in office.rows if type(r).__name__ == "CallRecord"]
    first, second = records
    assert (first.caller, first.callee, first.end_reason) == ("201", "202", "transferred")
    assert (first.transferred_by, first.transferred_to) == ("201", "203")
    assert (second.caller, second.callee, second.status) == ("202", "203", 200)
    assert (second.transferred_by, second.transferred_to) == ("201", "203")
