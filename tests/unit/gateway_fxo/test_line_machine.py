"""The line's transition table, tested for every (state, input) pair (as h2's
tests/test_state_machines.py does for streams).

EXPECTED below is written out by hand, apart from the module's table: each row is what the pair
must do. Every pair not listed must be *ignored* (same state, no actions, ``ignored=True``):
stale inputs of a call that is over, and the inputs a state has no use for (a CANCEL after our
200 among them, §9.2).
"""

from __future__ import annotations

import itertools

import pytest

from gateway_fxo.line_machine import (
    STATUS,
    TABLE,
    LineAction,
    LineInput,
    LineMachineState,
    Transition,
    step,
)

S = LineMachineState
I = LineInput  # noqa: E741 - short names keep the table one row a line
A = LineAction

DIALLING_OUT = (S.SEIZING, S.AWAITING_DIAL_TONE, S.DIALLING, S.EARLY)
REFUSED_DOWN = (A.REFUSE_LINE_DOWN, A.STOP_MEDIA, A.ON_HOOK)
LEFT = {  # what leaving a state for good does (line lost, gateway stopping)
    S.IDLE: (),
    S.RINGING: (A.DISARM_RING_GONE, A.FORGET_CALLER),
    S.OFFERING: (A.DISARM_RING_GONE, A.CANCEL_OFFER, A.STOP_MEDIA, A.FORGET_CALLER),
    S.ANSWERING: (A.BYE, A.STOP_MEDIA, A.ON_HOOK),
    S.SEIZING: REFUSED_DOWN,
    S.AWAITING_DIAL_TONE: REFUSED_DOWN,
    S.DIALLING: REFUSED_DOWN,
    S.EARLY: REFUSED_DOWN,
    S.CONNECTED: (A.BYE, A.STOP_MEDIA, A.ON_HOOK),
    S.RELEASING: (A.FORGET_CALLER,),
}

EXPECTED: dict[tuple[S, I], tuple[S, tuple[A, ...]]] = {
    (S.IDLE, I.RING): (S.RINGING, (A.ARM_RING_GONE,)),
    (S.IDLE, I.ANSWER_RING): (S.OFFERING, (A.ARM_RING_GONE, A.OFFER)),
    (S.RINGING, I.RING): (S.RINGING, (A.ARM_RING_GONE,)),
    (S.RINGING, I.ANSWER_RING): (S.OFFERING, (A.ARM_RING_GONE, A.OFFER)),
    (S.RINGING, I.RING_GONE): (S.IDLE, (A.FORGET_CALLER,)),
    (S.OFFERING, I.RING): (S.OFFERING, (A.ARM_RING_GONE,)),
    (S.OFFERING, I.ANSWER_RING): (S.OFFERING, (A.ARM_RING_GONE,)),
    (S.OFFERING, I.RING_GONE): (S.IDLE, (A.CANCEL_OFFER, A.STOP_MEDIA, A.FORGET_CALLER)),
    (S.OFFERING, I.SWITCH_ANSWERED): (S.ANSWERING, (A.DISARM_RING_GONE, A.OFF_HOOK)),
    (S.OFFERING, I.SWITCH_REFUSED): (S.RINGING, (A.STOP_MEDIA,)),
    (S.ANSWERING, I.OFF_HOOK_DONE): (S.CONNECTED, (A.START_SUPERVISION,)),
    (S.ANSWERING, I.OFF_HOOK_FAILED): (S.IDLE, (A.BYE, A.STOP_MEDIA)),
    (S.ANSWERING, I.SWITCH_BYE): (S.RELEASING, (A.STOP_MEDIA, A.ON_HOOK)),
    (S.IDLE, I.SWITCH_INVITE): (S.SEIZING, (A.ACCEPT, A.OFF_HOOK)),
    (S.DOWN, I.SWITCH_INVITE): (S.DOWN, (A.REJECT_LINE_DOWN,)),
    (S.SEIZING, I.OFF_HOOK_DONE): (S.AWAITING_DIAL_TONE, (A.AWAIT_DIAL_TONE,)),
    (S.SEIZING, I.OFF_HOOK_FAILED): (S.IDLE, (A.REFUSE_LINE_DOWN, A.STOP_MEDIA)),
    (S.AWAITING_DIAL_TONE, I.DIAL_TONE): (S.DIALLING, (A.DIAL,)),
    (S.DIALLING, I.DIALLED): (S.EARLY, (A.EARLY_MEDIA,)),
    (S.EARLY, I.FAR_ANSWER): (S.CONNECTED, (A.ANSWER, A.START_SUPERVISION)),
    (S.EARLY, I.FAR_BUSY): (S.RELEASING, (A.REFUSE_BUSY, A.STOP_MEDIA, A.ON_HOOK)),
    (S.EARLY, I.FAR_CONGESTION): (S.RELEASING, (A.REFUSE_CONGESTION, A.STOP_MEDIA, A.ON_HOOK)),
    (S.CONNECTED, I.SWITCH_BYE): (S.RELEASING, (A.STOP_MEDIA, A.ON_HOOK)),
    (S.CONNECTED, I.FAR_HANGUP): (S.RELEASING, (A.BYE, A.STOP_MEDIA, A.ON_HOOK)),
    (S.CONNECTED, I.ACK_TIMEOUT): (S.RELEASING, (A.BYE, A.STOP_MEDIA, A.ON_HOOK)),
    (S.RELEASING, I.ON_HOOK_DONE): (S.IDLE, (A.FORGET_CALLER,)),
    (S.DOWN, I.LINE_BACK): (S.IDLE, ()),
}
for _state in S:
    if _state not in (S.IDLE, S.DOWN):
        EXPECTED[(_state, I.SWITCH_INVITE)] = (_state, (A.REJECT_LINE_BUSY,))
CANCELLED = (A.REFUSE_CANCELLED, A.STOP_MEDIA, A.ON_HOOK)
for _state in DIALLING_OUT:
    EXPECTED[(_state, I.SWITCH_CANCEL)] = (S.RELEASING, CANCELLED)
    EXPECTED[(_state, I.SWITCH_BYE)] = (S.RELEASING, CANCELLED)
    EXPECTED[(_state, I.FAR_HANGUP)] = (S.RELEASING, (A.REFUSE_GONE, A.STOP_MEDIA, A.ON_HOOK))
for _state, _actions in LEFT.items():
    EXPECTED[(_state, I.LINE_LOST)] = (S.DOWN, _actions)
    if _state is not S.IDLE:
        EXPECTED[(_state, I.STOP)] = (S.IDLE, _actions)

ALL_PAIRS = list(itertools.product(S, I))


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=lambda v: v.name)
def test_every_pair_does_what_the_table_says_or_is_ignored(state: S, event: I) -> None:
    result = step(state, event)
    if (state, event) in EXPECTED:
        target, actions = EXPECTED[(state, event)]
        assert result == Transition(state=target, actions=actions)
        assert not result.ignored
    else:
        assert result == Transition(state=state, ignored=True), "an undefined pair is ignored"


def test_the_table_has_no_row_the_expectations_lack() -> None:
    assert set(TABLE) == set(EXPECTED)


@pytest.mark.parametrize("state", list(S), ids=lambda s: s.name)
def test_every_state_is_reachable_from_idle_and_leads_back_to_it(state: S) -> None:
    def reachable(start: S) -> set[S]:
        seen, todo = {start}, [start]
        while todo:
            here = todo.pop()
            for (source, _), transition in TABLE.items():
                if source is here and transition.state not in seen:
                    seen.add(transition.state)
                    todo.append(transition.state)
        return seen

    assert state in reachable(S.IDLE)
    assert S.IDLE in reachable(state)


@pytest.mark.parametrize(("state", "event"), list(TABLE), ids=lambda v: v.name)
def test_off_hook_is_always_followed_by_on_hook_and_media_is_always_stopped(
    state: S, event: I
) -> None:
    """Whatever ends a call where the line is (or is going) off hook goes on hook, and whatever
    leaves the states that own RTP closes it: no line is left off hook by a path of the table."""
    off_hook_states = {S.ANSWERING, *DIALLING_OUT, S.CONNECTED}
    media_states = {S.OFFERING, *off_hook_states}
    result = step(state, event)
    leaves_call = result.state in (S.IDLE, S.DOWN, S.RINGING, S.RELEASING)
    if state in off_hook_states and leaves_call and event is not I.OFF_HOOK_FAILED:
        assert A.ON_HOOK in result.actions
    if state in media_states and leaves_call:
        assert A.STOP_MEDIA in result.actions
    assert set(result.actions) <= set(A)


def test_every_state_has_a_status() -> None:
    assert set(STATUS) == set(S)
    assert set(STATUS.values()) == {"idle", "ringing", "in use", "down"}
