"""The forwarding decision for every situation, the loop stop and the outbound rule."""

from __future__ import annotations

import pytest

from pbx.routing.dialplan import LinePlan
from pbx.routing.forwarding import (
    MAX_HOPS,
    Context,
    Forward,
    PassOn,
    Redirect,
    Reject,
    Ring,
    Situation,
    Target,
    decide,
    forward_allowed,
    situation_after,
)
from pbx.sip.diversion import DiversionReason
from pbx.store.records import ForwardingRecord

EXTENSIONS = {"201", "202", "203", "204", "205", "206", "207", "208"}


def context(*, may_dial_out: bool = True, visited: tuple[str, ...] = ()) -> Context:
    return Context(
        plan=LinePlan(), is_extension=EXTENSIONS.__contains__, may_dial_out=may_dial_out,
        visited=visited,
    )  # fmt: skip


def record(**fields: object) -> ForwardingRecord:
    return ForwardingRecord(number="201", **fields)  # type: ignore[arg-type]


EXT_202 = Target("extension", "202", "202")


def test_nothing_set_rings_and_passes_failures_on() -> None:
    assert decide(record(), Situation.INCOMING, context()) == Ring()
    assert decide(record(), Situation.BUSY, context()) == PassOn()
    assert decide(record(), Situation.NO_ANSWER, context()) == PassOn()
    assert decide(record(), Situation.UNREGISTERED, context()) == Reject(
        480, "Temporarily Unavailable"
    )


@pytest.mark.parametrize("situation", [Situation.INCOMING, Situation.UNREGISTERED])
def test_forward_always_takes_every_call(situation: Situation) -> None:
    decision = decide(record(always="202", dnd=True), situation, context())
    assert decision == Forward(EXT_202, DiversionReason.UNCONDITIONAL)


def test_do_not_disturb_is_busy_or_the_busy_target() -> None:
    assert decide(record(dnd=True), Situation.INCOMING, context()) == Reject(486, "Busy Here")
    assert decide(record(dnd=True, busy="202"), Situation.INCOMING, context()) == Forward(
        EXT_202, DiversionReason.DO_NOT_DISTURB
    )


def test_busy_no_answer_and_unregistered_each_have_their_target() -> None:
    forwards = record(busy="202", no_answer="203", after=15, unregistered="204")
    assert decide(forwards, Situation.BUSY, context()) == Forward(
        EXT_202, DiversionReason.USER_BUSY
    )
    assert decide(forwards, Situation.INCOMING, context()) == Ring(
        15, Target("extension", "203", "203")
    )
    assert decide(forwards, Situation.NO_ANSWER, context()) == Forward(
        Target("extension", "203", "203"), DiversionReason.NO_ANSWER
    )
    assert decide(forwards, Situation.UNREGISTERED, context()) == Forward(
        Target("extension", "204", "204"), DiversionReason.UNAVAILABLE
    )


def test_outside_numbers_only_for_an_extension_allowed_out() -> None:
    outside = record(always="95551234")
    assert decide(outside, Situation.INCOMING, context()) == Forward(
        Target("line", "5551234", "95551234"), DiversionReason.UNCONDITIONAL
    )
    refused = decide(outside, Situation.INCOMING, context(may_dial_out=False))
    assert isinstance(refused, Ring) and "Outbound Calls Not Allowed" in refused.skipped


def test_emergency_numbers_and_gone_extensions_are_skipped() -> None:
    emergency = decide(record(always="911"), Situation.INCOMING, context())
    assert isinstance(emergency, Ring) and "emergency" in emergency.skipped
    gone = decide(record(busy="299"), Situation.BUSY, context())
    assert isinstance(gone, PassOn) and "299" in gone.skipped


def test_redirect_answers_302_for_every_kind_of_target() -> None:
    uri = "sip:bob@elsewhere.example.com"
    assert decide(record(always=uri, redirect=True), Situation.INCOMING, context()) == Redirect(
        Target("uri", uri, uri), DiversionReason.UNCONDITIONAL
    )
    assert decide(record(busy="202", redirect=True), Situation.BUSY, context()) == Redirect(
        EXT_202, DiversionReason.USER_BUSY
    )
    # A URI without redirect cannot be called by the switch: skipped.
    not_redirecting = decide(record(always=uri), Situation.INCOMING, context())
    assert isinstance(not_redirecting, Ring) and "redirect" in not_redirecting.skipped


def test_a_loop_is_stopped_where_it_would_close() -> None:
    # 201 -> 202 -> 201: at 202, forwarding back to 201 is refused and 202 rings.
    back = ForwardingRecord(number="202", always="201")
    stopped = decide(back, Situation.INCOMING, context(visited=("201", "202")))
    assert isinstance(stopped, Ring) and "loop" in stopped.skipped
    to_itself = decide(record(always="201"), Situation.INCOMING, context())
    assert isinstance(to_itself, Ring) and "loop" in to_itself.skipped


def test_the_hop_bound_stops_a_long_chain() -> None:
    chain = tuple(str(n) for n in range(201, 201 + MAX_HOPS + 1))  # 201..206: five forwards
    last = ForwardingRecord(number=chain[-1], always="208")
    stopped = decide(last, Situation.INCOMING, context(visited=chain))
    assert isinstance(stopped, Ring) and "more than 5" in stopped.skipped
    one_fewer = ForwardingRecord(number=chain[-2], always="208")
    assert isinstance(decide(one_fewer, Situation.INCOMING, context(visited=chain[:-1])), Forward)


def test_forward_allowed_each_target_once_within_the_bound() -> None:
    assert forward_allowed(("201",), "202")
    assert not forward_allowed(("201", "202"), "201")
    assert forward_allowed(("a", "b", "c", "d", "e"), "f", max_hops=5)
    assert not forward_allowed(("a", "b", "c", "d", "e", "f"), "g", max_hops=5)
    assert not forward_allowed(("sip:x@a",), "sip:x@a")  # a 3xx to where we were


@pytest.mark.parametrize(
    ("status", "situation"),
    [(486, Situation.BUSY), (600, Situation.BUSY), (603, Situation.BUSY),
     (408, Situation.NO_ANSWER), (480, Situation.NO_ANSWER), (503, Situation.UNREGISTERED),
     (0, Situation.UNREGISTERED), (404, None), (487, None), (200, None)],
)  # fmt: skip
def test_a_final_answer_maps_to_its_situation(status: int, situation: Situation | None) -> None:
    assert situation_after(status) is situation
