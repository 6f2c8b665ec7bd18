"""An INVITE with Replaces from a phone (RFC 3891 §3), in memory."""

from __future__ import annotations

from pbx.sip.message import Request, Response
from tests.unit.calls.core_harness import Office, answered, sdp


def replaces_value(call_id: str, to_tag: str | None, from_tag: str | None) -> str:
    return f"{call_id};to-tag={to_tag};from-tag={from_tag}"


def naming(fork: Request, ok: Response) -> str:
    """How the callee's phone names its dialog with the switch (the switch is its UAC): the
    switch's tag is the to-tag seen from the switch (§3: the matcher's local tag)."""
    return replaces_value(fork.call_id, fork.from_.tag, ok.to.tag)


def test_replaces_naming_no_dialog_gets_481() -> None:
    office = Office("201", "202")
    a = office["201"]
    a.send(a.invite("202", headers=(("Replaces", "nope@x;to-tag=a;from-tag=b"),)))
    assert a.responses()[-1].status == 481


def test_replacing_a_confirmed_dialog_of_another_extension_gets_403() -> None:
    office = Office("201", "202", "203")
    c = office["203"]
    fork, ok = answered(office)
    c.send(c.invite("202", headers=(("Replaces", naming(fork, _callee_200(fork))),)))
    assert c.responses()[-1].status == 403
    assert not office["202"].requests("BYE")


def _callee_200(fork: Request) -> Response:
    """The 200 the callee (harness phone 202) answered the fork with: tag r202."""
    from pbx.sip.message import make_response

    return make_response(fork, 200, to_tag="r202")


def test_a_second_device_of_the_callee_takes_the_confirmed_call_over() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    fork, ok = answered(office)
    desk = office.add("202", 41202, name="202-desk")
    value = naming(fork, _callee_200(fork))
    desk.send(desk.invite("202", sdp(8000), headers=(("Replaces", value),)))
    assert desk.responses()[-1].status == 200
    assert b.requests("BYE"), "the replaced dialog ends"
    assert not a.requests("BYE"), "the caller stays"
    # The new device is now the caller's party: its BYE ends the caller's call.
    desk.in_dialog("BYE", desk.responses()[-1], 2)
    assert a.requests("BYE")


def test_early_only_on_a_confirmed_dialog_gets_486() -> None:
    office = Office("201", "202")
    fork, ok = answered(office)
    desk = office.add("202", 41202, name="202-desk")
    value = naming(fork, _callee_200(fork)) + ";early-only"
    desk.send(desk.invite("202", headers=(("Replaces", value),)))
    assert desk.responses()[-1].status == 486


def test_a_ringing_call_is_picked_up_by_another_device_of_the_extension() -> None:
    office = Office("201", "202")
    a, b = office["201"], office["202"]
    a.send(a.invite("202"))
    fork = b.last("INVITE")
    b.answer(fork, 180)
    desk = office.add("202", 41202, name="202-desk")
    value = replaces_value(fork.call_id, fork.from_.tag, "r202")
    desk.send(desk.invite("202", sdp(8000), headers=(("Replaces", value),)))
    assert desk.responses()[-1].status == 200
    assert a.responses(200), "the caller is answered"
    assert b.requests("CANCEL"), "the ringing phone stops"
