"""Forwarding, do not disturb, redirect, 3xx following and feature codes through the call core,
with a fake clock: what each phone gets, in order, and the call's record."""

from __future__ import annotations

from pbx.sip.diversion import parse_diversion
from pbx.sip.message import Request
from pbx.store.calls import CallRecord
from tests.unit.calls.core_harness import Office, Phone, sdp


def diversion(invite: Request) -> list[tuple[str, str]]:
    """(diverting user, reason) of each Diversion entry, most recent first."""
    entries = parse_diversion(invite.headers.get_all("Diversion"))
    return [(getattr(e.uri, "user", ""), e.reason) for e in entries]


def records(office: Office) -> list[CallRecord]:
    return [r for r in office.rows if isinstance(r, CallRecord)]


def answer_and_ack(office: Office, caller: Phone, callee: Phone) -> None:
    callee.answer(callee.last("INVITE"), 200, sdp(5000))
    ok = caller.responses(200)[-1]
    caller.in_dialog("ACK", ok, 1)


def test_forward_always_rings_the_target_with_diversion_unconditional() -> None:
    office = Office("201", "202", "203")
    office.directory.forward("201", always="202")
    caller = office["203"]
    caller.send(caller.invite("201"))
    assert not office["201"].got, "forward always: the phones of 201 do not ring"
    fork = office["202"].last("INVITE")
    assert diversion(fork) == [("201", "unconditional")]
    answer_and_ack(office, caller, office["202"])
    caller.in_dialog("BYE", caller.responses(200)[-1], 2)
    (record,) = records(office)
    assert (record.callee, record.forwarded_from) == ("202", "201")


def test_a_call_not_forwarded_has_no_diversion_and_no_forwarded_from() -> None:
    office = Office("201", "202")
    office["202"].send(office["202"].invite("201"))
    fork = office["201"].last("INVITE")
    assert "Diversion" not in fork.headers
    office["202"].send(office["202"].invite("201"))  # (a second call; the first rings on)
    office["201"].answer(fork, 486)
    office["201"].answer(office["201"].requests("INVITE")[-1], 486)
    assert all(r.forwarded_from is None for r in records(office))


def test_dnd_gives_486_and_rings_nobody() -> None:
    office = Office("201", "203")
    office.directory.forward("201", dnd=True)
    caller = office["203"]
    caller.send(caller.invite("201"))
    assert [r.status for r in caller.responses()][-1] == 486
    assert not office["201"].got


def test_dnd_with_a_busy_target_rings_it_with_reason_do_not_disturb() -> None:
    office = Office("201", "202", "203")
    office.directory.forward("201", dnd=True, busy="202")
    office["203"].send(office["203"].invite("201"))
    assert not office["201"].got
    assert diversion(office["202"].last("INVITE")) == [("201", "do-not-disturb")]


def test_busy_phones_forward_to_the_busy_target() -> None:
    office = Office("201", "202", "203")
    office.directory.forward("201", busy="202")
    caller = office["203"]
    caller.send(caller.invite("201"))
    office["201"].answer(office["201"].last("INVITE"), 486)
    assert not caller.responses(486), "the caller does not hear the busy"
    fork = office["202"].last("INVITE")
    assert diversion(fork) == [("201", "user-busy")]
    answer_and_ack(office, caller, office["202"])
    assert caller.responses(200)
    caller.in_dialog("BYE", caller.responses(200)[-1], 2)
    (record,) = records(office)
    assert (record.callee, record.forwarded_from) == ("202", "201")


def test_busy_without_a_busy_target_passes_the_486_on() -> None:
    office = Office("201", "203")
    office.directory.forward("201", no_answer="203", after=10)
    caller = office["203"]
    caller.send(office["203"].invite("201"))
    office["201"].answer(office["201"].last("INVITE"), 486)
    assert caller.responses(486)


def test_no_answer_cancels_the_phones_after_forward_after_and_rings_the_target() -> None:
    office = Office("201", "202", "203")
    office.directory.forward("201", no_answer="202", after=10)
    caller, first = office["203"], office["201"]
    caller.send(caller.invite("201"))
    first.answer(first.last("INVITE"), 180)
    office.advance(9.5)
    assert not first.requests("CANCEL") and not office["202"].got
    office.advance(1.0)
    assert first.requests("CANCEL"), "after 10 s the phones of 201 stop ringing"
    fork = office["202"].last("INVITE")
    assert diversion(fork) == [("201", "no-answer")]
    first.answer(first.last("INVITE"), 487)  # the cancelled INVITE ends
    assert not [r for r in caller.responses() if r.status >= 300]
    answer_and_ack(office, caller, office["202"])
    assert caller.responses(200)[-1].cseq.method == "INVITE"


def test_no_answer_forward_longer_than_the_ring_timeout_fires_at_the_ring_timeout() -> None:
    from pbx.apps.context import CallPolicy

    office = Office("201", "202", "203", policy=CallPolicy(ring_timeout=30.0))
    office.directory.forward("201", no_answer="202", after=60)
    office["203"].send(office["203"].invite("201"))
    office.advance(30.5)
    assert office["202"].requests("INVITE"), "the ring timeout is a no answer too"
    assert not office["203"].responses(408)


def test_unregistered_forwards_with_reason_unavailable() -> None:
    office = Office("201", "202", "203")
    office.directory.bindings["201"] = []
    office.directory.forward("201", unregistered="202")
    office["203"].send(office["203"].invite("201"))
    assert diversion(office["202"].last("INVITE")) == [("201", "unavailable")]


def test_unregistered_without_a_target_is_480() -> None:
    office = Office("201", "203")
    office.directory.bindings["201"] = []
    office["203"].send(office["203"].invite("201"))
    assert office["203"].responses(480)


def test_a_chain_of_forwards_carries_every_diversion_most_recent_first() -> None:
    office = Office("201", "202", "203", "204")
    office.directory.forward("201", always="202")
    office.directory.forward("202", always="203")
    office["204"].send(office["204"].invite("201"))
    assert not office["201"].got and not office["202"].got
    assert diversion(office["203"].last("INVITE")) == [
        ("202", "unconditional"),
        ("201", "unconditional"),
    ]


def test_a_forward_always_loop_stops_where_it_closes() -> None:
    office = Office("201", "202", "203")
    office.directory.forward("201", always="202")
    office.directory.forward("202", always="201")
    office["203"].send(office["203"].invite("201"))
    assert not office["201"].got, "201 is not rung again: each target once"
    assert len(office["202"].requests("INVITE")) == 1


def test_a_loop_with_nobody_to_ring_is_482_loop_detected() -> None:
    office = Office("201", "202", "203")
    office.directory.bindings["201"] = []
    office.directory.bindings["202"] = []
    office.directory.forward("201", unregistered="202")
    office.directory.forward("202", unregistered="201")
    office["203"].send(office["203"].invite("201"))
    final = office["203"].responses()[-1]
    assert (final.status, final.reason) == (482, "Loop Detected")


def test_a_busy_loop_ends_with_the_busy_not_a_second_ring() -> None:
    office = Office("201", "202", "203")
    office.directory.forward("201", busy="202")
    office.directory.forward("202", busy="201")
    caller = office["203"]
    caller.send(caller.invite("201"))
    office["201"].answer(office["201"].last("INVITE"), 486)
    office["202"].answer(office["202"].last("INVITE"), 486)
    assert len(office["201"].requests("INVITE")) == 1
    assert caller.responses()[-1].status == 486


def test_forwards_stop_after_max_hops() -> None:
    numbers = [str(n) for n in range(201, 210)]
    office = Office(*numbers)
    for here, there in zip(numbers, numbers[1:], strict=False):
        office.directory.forward(here, always=there)
    office["209"].send(office["209"].invite("201"))
    rung = [n for n in numbers if office[n].requests("INVITE")]
    assert rung == ["206"], "five forwards: 201 -> ... -> 206 rings, 207 is not reached"


def test_forward_always_to_an_outside_number_goes_out_on_the_line() -> None:
    office = Office("201", "203")
    line = office.add("line1", port=41999)
    office.directory.forward("201", always="95551234")
    office["203"].send(office["203"].invite("201"))
    fork = line.last("INVITE")
    assert getattr(fork.uri, "user", None) == "5551234"
    assert diversion(fork) == [("201", "unconditional")]


def test_an_outside_forward_of_an_extension_not_allowed_out_is_skipped() -> None:
    from dataclasses import replace

    office = Office("201", "203")
    office.add("line1", port=41999)
    office.directory.extensions["201"] = replace(
        office.directory.extensions["201"], outbound_allowed=False
    )
    office.directory.forward("201", always="95551234")
    office["203"].send(office["203"].invite("201"))
    assert office["201"].requests("INVITE"), "no permission to call out: its phones ring"
    assert not office["line1"].got


def test_redirect_mode_answers_302_with_the_targets_contact() -> None:
    office = Office("201", "203")
    office.directory.forward("201", always="sip:bob@example.net", redirect=True)
    office["203"].send(office["203"].invite("201"))
    final = office["203"].responses()[-1]
    assert final.status == 302
    assert [str(c.uri) for c in final.contacts] == ["sip:bob@example.net"]
    assert not office["201"].got


def test_redirect_to_an_extension_names_it_at_the_switch() -> None:
    office = Office("201", "202", "203")
    office.directory.forward("201", busy="202", redirect=True)
    caller = office["203"]
    caller.send(caller.invite("201"))
    office["201"].answer(office["201"].last("INVITE"), 486)
    final = caller.responses()[-1]
    assert final.status == 302 and [str(c.uri) for c in final.contacts] == ["sip:202@127.0.0.1"]
    assert not office["202"].got


def test_a_3xx_from_a_phone_naming_an_extension_rings_it() -> None:
    office = Office("201", "202", "203")
    caller = office["203"]
    caller.send(caller.invite("201"))
    office["201"].answer(
        office["201"].last("INVITE"), 302, headers=(("Contact", "<sip:202@127.0.0.1>"),)
    )
    fork = office["202"].last("INVITE")
    assert diversion(fork) == [("201", "deflection")]
    answer_and_ack(office, caller, office["202"])
    assert caller.responses(200)


def test_a_3xx_to_another_server_is_passed_to_the_caller_not_followed() -> None:
    office = Office("201", "203")
    caller = office["203"]
    caller.send(caller.invite("201"))
    office["201"].answer(
        office["201"].last("INVITE"), 302, headers=(("Contact", "<sip:bob@example.net>"),)
    )
    final = caller.responses()[-1]
    # (The harness's phone puts its own Contact first: 201 itself, visited, not followed.)
    assert final.status == 302 and "sip:bob@example.net" in [str(c.uri) for c in final.contacts]


def test_3xx_following_takes_each_target_once() -> None:
    office = Office("201", "202", "203")
    caller = office["203"]
    caller.send(caller.invite("201"))
    office["201"].answer(
        office["201"].last("INVITE"), 302, headers=(("Contact", "<sip:202@127.0.0.1>"),)
    )
    office["202"].answer(
        office["202"].last("INVITE"), 302, headers=(("Contact", "<sip:201@127.0.0.1>"),)
    )
    assert len(office["201"].requests("INVITE")) == 1, "201 was visited: not rung again"
    assert caller.responses()[-1].status == 302


# -- feature codes ----------------------------------------------------------------------


def dial_code(office: Office, phone: Phone, code: str) -> int:
    phone.send(phone.invite(code))
    final = [r for r in phone.responses() if r.status >= 200][-1]
    if final.status == 200:
        assert b"a=inactive" in final.body
        phone.in_dialog("ACK", final, 1)
        bye = phone.last("BYE")
        phone.answer(bye)
    return final.status


def test_star_72_turns_forward_always_on_and_calls_follow_it() -> None:
    office = Office("201", "202", "203")
    assert dial_code(office, office["201"], "*72202") == 200
    record = office.directory.extensions["201"].forwarding
    assert record is not None and record.always == "202"
    assert not office["202"].got, "a feature code rings nobody"
    office["203"].send(office["203"].invite("201"))
    assert office["202"].requests("INVITE") and not office["201"].requests("INVITE")
    assert not office.core.calls()[:-1], "the feature-code call is over"


def test_star_73_turns_it_off() -> None:
    office = Office("201", "202")
    office.directory.forward("201", always="202")
    assert dial_code(office, office["201"], "*73") == 200
    record = office.directory.extensions["201"].forwarding
    assert record is not None and record.always is None


def test_star_78_and_79_switch_do_not_disturb() -> None:
    office = Office("201", "203")
    assert dial_code(office, office["201"], "*78") == 200
    office["203"].send(office["203"].invite("201"))
    assert office["203"].responses()[-1].status == 486
    assert dial_code(office, office["201"], "*79") == 200
    record = office.directory.extensions["201"].forwarding
    assert record is not None and not record.dnd


def test_a_refused_feature_code_gets_its_status_and_changes_nothing() -> None:
    office = Office("201")
    assert dial_code(office, office["201"], "*72999") == 404
    assert dial_code(office, office["201"], "*72") == 484
    assert office.directory.extensions["201"].forwarding is None
    assert not office.core.calls()


def test_a_feature_code_invite_without_sdp_gets_an_inactive_offer() -> None:
    office = Office("201", "202")
    phone = office["201"]
    phone.send(phone.invite("*72202", body=b""))
    ok = phone.responses(200)[-1]
    assert b"a=inactive" in ok.body and b"m=audio 9 " in ok.body
    phone.in_dialog("ACK", ok, 1, sdp(4000))
    assert phone.requests("BYE")
