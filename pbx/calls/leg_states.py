"""The states of a leg and the one table that moves it between them.

A leg is one INVITE dialog usage, incoming (we are its UAS) or outgoing (its UAC). Every change
of state goes through :func:`next_state`, so the table below is all there is to it; inputs a
state does not list are refused (the leg answers or ignores them as its docstrings say), and
``tests/unit/calls/test_leg_states.py`` checks every (state, input) pair.
"""

from __future__ import annotations

import enum


class LegState(enum.Enum):
    NEW = "new"
    PROCEEDING = "proceeding"
    """The INVITE is sent or received; no provisional with a tag yet."""
    EARLY = "early"
    """An early dialog: a provisional with a To tag was sent or received."""
    CONFIRMED = "confirmed"
    """A 2xx was sent or received (the ACK may still be awaited)."""
    TERMINATING = "terminating"
    """We sent BYE or CANCEL and wait for its outcome."""
    TERMINATED = "terminated"


class LegInput(enum.Enum):
    INVITE_SENT = "invite sent"
    INVITE_RECEIVED = "invite received"
    PROVISIONAL_SENT = "1xx sent"
    PROVISIONAL_RECEIVED = "1xx received"
    SUCCESS_SENT = "2xx sent"
    SUCCESS_RECEIVED = "2xx received"
    FAILURE_SENT = "3xx-6xx sent"
    FAILURE_RECEIVED = "3xx-6xx received"
    CANCEL_SENT = "CANCEL sent"
    CANCEL_RECEIVED = "CANCEL received"
    BYE_SENT = "BYE sent"
    BYE_RECEIVED = "BYE received"
    BYE_DONE = "BYE answered or timed out"
    GIVE_UP = "give-up timer (no ACK, no PRACK, no answer, session expired)"
    IN_DIALOG_REQUEST = "request in the dialog (re-INVITE, UPDATE, INFO, PRACK...)"


S, I = LegState, LegInput  # noqa: E741 - short names keep the table readable

TRANSITIONS: dict[tuple[LegState, LegInput], LegState] = {
    (S.NEW, I.INVITE_SENT): S.PROCEEDING,
    (S.NEW, I.INVITE_RECEIVED): S.PROCEEDING,
    (S.PROCEEDING, I.PROVISIONAL_SENT): S.EARLY,
    (S.PROCEEDING, I.PROVISIONAL_RECEIVED): S.EARLY,
    (S.PROCEEDING, I.SUCCESS_SENT): S.CONFIRMED,
    (S.PROCEEDING, I.SUCCESS_RECEIVED): S.CONFIRMED,
    (S.PROCEEDING, I.FAILURE_SENT): S.TERMINATED,
    (S.PROCEEDING, I.FAILURE_RECEIVED): S.TERMINATED,
    (S.PROCEEDING, I.CANCEL_SENT): S.TERMINATING,
    (S.PROCEEDING, I.CANCEL_RECEIVED): S.TERMINATED,
    (S.PROCEEDING, I.GIVE_UP): S.TERMINATED,
    (S.EARLY, I.PROVISIONAL_SENT): S.EARLY,
    (S.EARLY, I.PROVISIONAL_RECEIVED): S.EARLY,
    (S.EARLY, I.SUCCESS_SENT): S.CONFIRMED,
    (S.EARLY, I.SUCCESS_RECEIVED): S.CONFIRMED,
    (S.EARLY, I.FAILURE_SENT): S.TERMINATED,
    (S.EARLY, I.FAILURE_RECEIVED): S.TERMINATED,
    (S.EARLY, I.CANCEL_SENT): S.TERMINATING,
    (S.EARLY, I.CANCEL_RECEIVED): S.TERMINATED,
    (S.EARLY, I.BYE_RECEIVED): S.TERMINATED,  # §15: the caller may end an early dialog
    (S.EARLY, I.GIVE_UP): S.TERMINATED,
    (S.EARLY, I.IN_DIALOG_REQUEST): S.EARLY,  # PRACK, UPDATE, INFO on an early dialog
    (S.CONFIRMED, I.SUCCESS_RECEIVED): S.CONFIRMED,  # a retransmitted 2xx: ACKed again
    (S.CONFIRMED, I.CANCEL_RECEIVED): S.CONFIRMED,  # §9.2: too late, no effect
    (S.CONFIRMED, I.BYE_SENT): S.TERMINATING,
    (S.CONFIRMED, I.BYE_RECEIVED): S.TERMINATED,
    (S.CONFIRMED, I.GIVE_UP): S.TERMINATING,  # we send BYE
    (S.CONFIRMED, I.IN_DIALOG_REQUEST): S.CONFIRMED,
    (S.TERMINATING, I.SUCCESS_RECEIVED): S.TERMINATING,  # 2xx after our CANCEL: ACK, BYE
    (S.TERMINATING, I.FAILURE_RECEIVED): S.TERMINATED,  # the 487 to our CANCELled INVITE
    (S.TERMINATING, I.BYE_RECEIVED): S.TERMINATED,
    (S.TERMINATING, I.BYE_DONE): S.TERMINATED,
    (S.TERMINATING, I.GIVE_UP): S.TERMINATED,
}
"""(state, input) -> the next state; a pair that is not here is refused in that state."""

del S, I


def next_state(state: LegState, event: LegInput) -> LegState | None:
    """The state after ``event`` in ``state``; None when the table refuses the pair."""
    return TRANSITIONS.get((state, event))


LIVE = frozenset({LegState.PROCEEDING, LegState.EARLY, LegState.CONFIRMED})
UNANSWERED = frozenset({LegState.PROCEEDING, LegState.EARLY})
