"""The leg's transition table, checked for every (state, input) pair.

In the manner of python-hyper/h2's state machine tests: the expectation below is written out by
hand, separately from ``pbx.calls.leg_states.TRANSITIONS``, so that changing the table takes a
change here too, and every pair the table does not list is checked to be refused.
"""

from __future__ import annotations

import itertools

import pytest

from pbx.calls.leg_states import LIVE, TRANSITIONS, UNANSWERED, LegInput, LegState, next_state

S, I = LegState, LegInput  # noqa: E741 - short names keep the table readable

EXPECTED: dict[tuple[LegState, LegInput], LegState] = {
    # the INVITE goes out or comes in
    (S.NEW, I.INVITE_SENT): S.PROCEEDING,
    (S.NEW, I.INVITE_RECEIVED): S.PROCEEDING,
    # no provisional with a tag yet
    (S.PROCEEDING, I.PROVISIONAL_SENT): S.EARLY,
    (S.PROCEEDING, I.PROVISIONAL_RECEIVED): S.EARLY,
    (S.PROCEEDING, I.SUCCESS_SENT): S.CONFIRMED,
    (S.PROCEEDING, I.SUCCESS_RECEIVED): S.CONFIRMED,
    (S.PROCEEDING, I.FAILURE_SENT): S.TERMINATED,
    (S.PROCEEDING, I.FAILURE_RECEIVED): S.TERMINATED,
    (S.PROCEEDING, I.CANCEL_SENT): S.TERMINATING,
    (S.PROCEEDING, I.CANCEL_RECEIVED): S.TERMINATED,
    (S.PROCEEDING, I.GIVE_UP): S.TERMINATED,
    # an early dialog
    (S.EARLY, I.PROVISIONAL_SENT): S.EARLY,
    (S.EARLY, I.PROVISIONAL_RECEIVED): S.EARLY,
    (S.EARLY, I.SUCCESS_SENT): S.CONFIRMED,
    (S.EARLY, I.SUCCESS_RECEIVED): S.CONFIRMED,
    (S.EARLY, I.FAILURE_SENT): S.TERMINATED,
    (S.EARLY, I.FAILURE_RECEIVED): S.TERMINATED,
    (S.EARLY, I.CANCEL_SENT): S.TERMINATING,
    (S.EARLY, I.CANCEL_RECEIVED): S.TERMINATED,
    (S.EARLY, I.BYE_RECEIVED): S.TERMINATED,
    (S.EARLY, I.GIVE_UP): S.TERMINATED,
    (S.EARLY, I.IN_DIALOG_REQUEST): S.EARLY,
    # answered
    (S.CONFIRMED, I.SUCCESS_RECEIVED): S.CONFIRMED,
    (S.CONFIRMED, I.CANCEL_RECEIVED): S.CONFIRMED,
    (S.CONFIRMED, I.BYE_SENT): S.TERMINATING,
    (S.CONFIRMED, I.BYE_RECEIVED): S.TERMINATED,
    (S.CONFIRMED, I.GIVE_UP): S.TERMINATING,
    (S.CONFIRMED, I.IN_DIALOG_REQUEST): S.CONFIRMED,
    # our BYE or CANCEL is out
    (S.TERMINATING, I.SUCCESS_RECEIVED): S.TERMINATING,
    (S.TERMINATING, I.FAILURE_RECEIVED): S.TERMINATED,
    (S.TERMINATING, I.BYE_RECEIVED): S.TERMINATED,
    (S.TERMINATING, I.BYE_DONE): S.TERMINATED,
    (S.TERMINATING, I.GIVE_UP): S.TERMINATED,
}

del S, I

ALL_PAIRS = list(itertools.product(LegState, LegInput))


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=lambda v: v.name)
def test_every_pair_moves_as_written_or_is_refused(state: LegState, event: LegInput) -> None:
    assert next_state(state, event) == EXPECTED.get((state, event))


def test_the_table_lists_nothing_the_expectation_does_not() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize("event", list(LegInput), ids=lambda v: v.name)
def test_terminated_accepts_nothing(event: LegInput) -> None:
    assert next_state(LegState.TERMINATED, event) is None


@pytest.mark.parametrize("event", list(LegInput), ids=lambda v: v.name)
def test_new_accepts_only_the_invite(event: LegInput) -> None:
    expected = event in (LegInput.INVITE_SENT, LegInput.INVITE_RECEIVED)
    assert (next_state(LegState.NEW, event) is not None) is expected


def test_every_state_but_terminated_has_a_way_out() -> None:
    """No state but TERMINATED is a dead end: each reaches TERMINATED through the table."""
    reach = {LegState.TERMINATED}
    changed = True
    while changed:
        changed = False
        for (state, _), target in EXPECTED.items():
            if target in reach and state not in reach:
                reach.add(state)
                changed = True
    assert reach == set(LegState)


def test_every_state_a_give_up_can_end_is_left_by_it() -> None:
    """A give-up timer (no ACK, no PRACK, no answer) always moves a live leg on."""
    for state in (LegState.PROCEEDING, LegState.EARLY, LegState.CONFIRMED, LegState.TERMINATING):
        assert next_state(state, LegInput.GIVE_UP) in (LegState.TERMINATING, LegState.TERMINATED)


def test_the_state_groups() -> None:
    assert {LegState.PROCEEDING, LegState.EARLY} == UNANSWERED
    assert {LegState.PROCEEDING, LegState.EARLY, LegState.CONFIRMED} == LIVE
