"""The line's call logic as one pure transition table: (state, input) -> (next state, actions).

The agent (agent.py) turns what the line card, the tone detector, its timers and the switch say
into ``LineInput`` values, looks the pair up with ``step`` and carries the actions out in order;
nothing here does I/O or knows the time. A pair that is not in the table is *ignored*: it is a
stale input (a ring timer or a line event of a call already over, a dial-tone report after the
switch cancelled), and ``step`` returns the same state with no actions and ``ignored=True``.
The SIP details (which transaction a 487 goes on, the 200 to a CANCEL, retransmissions) are the
agent's and the transaction layer's; the table says what happens to the *line*.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class LineMachineState(enum.Enum):
    IDLE = "idle"
    """On hook, no call."""
    DOWN = "down"
    """No line (card lost, no voltage): calls are refused until it is back."""
    RINGING = "ringing"
    """The line rings; the call is not offered to the switch yet (fewer rings than set)."""
    OFFERING = "offering"
    """Our INVITE for the ringing line is at the switch; the line still rings."""
    ANSWERING = "answering"
    """The switch answered the inbound call (200, ACKed); the line is going off hook."""
    SEIZING = "seizing"
    """The switch's INVITE asked us to dial: going off hook."""
    AWAITING_DIAL_TONE = "awaiting dial tone"
    DIALLING = "dialling"
    """Playing the digits down the line."""
    EARLY = "early"
    """Dialled; 183 with SDP sent, the line's audio (ringback, announcements) is early media
    until the far end is heard to answer."""
    CONNECTED = "connected"
    """Answered on both sides (the 2xx resend until ACK is the SIP leg's)."""
    RELEASING = "releasing"
    """The call is over; the line is going on hook."""


class LineInput(enum.Enum):
    RING = "ring"
    """A ring burst that does not reach the rings to answer after."""
    ANSWER_RING = "answer ring"
    """The ring burst that reaches ``answer_after_rings``: offer the call to the switch."""
    RING_GONE = "ring gone"
    """No ring for ``ring_gone`` seconds: the caller gave up."""
    SWITCH_ANSWERED = "switch answered"
    SWITCH_REFUSED = "switch refused"
    """A final response >= 300 to our INVITE, or none at all (Timer B)."""
    SWITCH_INVITE = "switch invite"
    """A new INVITE from the switch (dial out); retransmissions never get here."""
    SWITCH_CANCEL = "switch cancel"
    """A CANCEL matching the switch's INVITE, before our final response to it."""
    SWITCH_BYE = "switch bye"
    ACK_TIMEOUT = "ack timeout"
    """§13.3.1.4: 64*T1 of resending our 2xx without an ACK."""
    OFF_HOOK_DONE = "off hook done"
    OFF_HOOK_FAILED = "off hook failed"
    ON_HOOK_DONE = "on hook done"
    DIAL_TONE = "dial tone"
    """Dial tone heard, or the wait for it is over (we dial anyway)."""
    DIALLED = "dialled"
    FAR_ANSWER = "far answer"
    """The far party was heard (speech, not a tone), the line reversed polarity where that is
    the answer signal, or the early-media limit passed."""
    FAR_BUSY = "far busy"
    FAR_CONGESTION = "far congestion"
    FAR_HANGUP = "far hangup"
    """The line side ended the call (supervision: tones, loop drop, silence, length)."""
    LINE_LOST = "line lost"
    LINE_BACK = "line back"
    STOP = "stop"
    """The gateway is stopping."""


class LineAction(enum.Enum):
    OFFER = "offer"
    """Open RTP and INVITE the switch with the caller ID."""
    CANCEL_OFFER = "cancel offer"
    ARM_RING_GONE = "arm ring gone"
    DISARM_RING_GONE = "disarm ring gone"
    FORGET_CALLER = "forget caller"
    ACCEPT = "accept"
    """Take the switch's INVITE: open RTP (the 100 Trying is the transaction's)."""
    REJECT_LINE_BUSY = "reject line busy"
    """486 to the *new* INVITE: the line is in use."""
    REJECT_LINE_DOWN = "reject line down"
    """503 to the *new* INVITE: there is no line."""
    OFF_HOOK = "off hook"
    ON_HOOK = "on hook"
    AWAIT_DIAL_TONE = "await dial tone"
    DIAL = "dial"
    EARLY_MEDIA = "early media"
    """183 Session Progress with our SDP; listen for the far end's answer."""
    ANSWER = "answer"
    """200 to the switch's INVITE (the leg resends it until the ACK)."""
    REFUSE_BUSY = "refuse busy"
    """486 to the call's INVITE."""
    REFUSE_CONGESTION = "refuse congestion"
    """503 to the call's INVITE."""
    REFUSE_GONE = "refuse gone"
    """480 to the call's INVITE: the line side gave up before an answer."""
    REFUSE_LINE_DOWN = "refuse line down"
    """503 Phone Line Down to the call's INVITE."""
    REFUSE_CANCELLED = "refuse cancelled"
    """487 to the call's INVITE (after a CANCEL, or a BYE before the answer)."""
    BYE = "bye"
    START_SUPERVISION = "start supervision"
    STOP_MEDIA = "stop media"
    """Close the call's RTP and stop playing; the call is forgotten."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    state: LineMachineState
    actions: tuple[LineAction, ...] = ()
    ignored: bool = False
    """True when the pair is not in the table: nothing happened."""


_S = LineMachineState
_I = LineInput
_A = LineAction

# What leaving each state for good costs, on a line lost or a gateway stopping.
_ABANDON: dict[LineMachineState, tuple[LineAction, ...]] = {
    _S.IDLE: (),
    _S.RINGING: (_A.DISARM_RING_GONE, _A.FORGET_CALLER),
    _S.OFFERING: (_A.DISARM_RING_GONE, _A.CANCEL_OFFER, _A.STOP_MEDIA, _A.FORGET_CALLER),
    _S.ANSWERING: (_A.BYE, _A.STOP_MEDIA, _A.ON_HOOK),
    _S.SEIZING: (_A.REFUSE_LINE_DOWN, _A.STOP_MEDIA, _A.ON_HOOK),
    _S.AWAITING_DIAL_TONE: (_A.REFUSE_LINE_DOWN, _A.STOP_MEDIA, _A.ON_HOOK),
    _S.DIALLING: (_A.REFUSE_LINE_DOWN, _A.STOP_MEDIA, _A.ON_HOOK),
    _S.EARLY: (_A.REFUSE_LINE_DOWN, _A.STOP_MEDIA, _A.ON_HOOK),
    _S.CONNECTED: (_A.BYE, _A.STOP_MEDIA, _A.ON_HOOK),
    _S.RELEASING: (_A.FORGET_CALLER,),  # the on hook is already under way
}

# An outbound call not answered yet, ended from the SIP side or the line side.
_DIALLING_STATES = (_S.SEIZING, _S.AWAITING_DIAL_TONE, _S.DIALLING, _S.EARLY)
_CANCELLED = (_A.REFUSE_CANCELLED, _A.STOP_MEDIA, _A.ON_HOOK)
_RELEASE_BY_US = (_A.BYE, _A.STOP_MEDIA, _A.ON_HOOK)


def _rows() -> Iterable[tuple[tuple[LineMachineState, LineInput], Transition]]:
    def row(
        state: LineMachineState, event: LineInput, target: LineMachineState, *actions: LineAction
    ) -> tuple[tuple[LineMachineState, LineInput], Transition]:
        return (state, event), Transition(state=target, actions=actions)

    # Inbound: the line rings, we offer the call after N rings, the switch answers or not.
    yield row(_S.IDLE, _I.RING, _S.RINGING, _A.ARM_RING_GONE)
    yield row(_S.IDLE, _I.ANSWER_RING, _S.OFFERING, _A.ARM_RING_GONE, _A.OFFER)
    yield row(_S.RINGING, _I.RING, _S.RINGING, _A.ARM_RING_GONE)
    yield row(_S.RINGING, _I.ANSWER_RING, _S.OFFERING, _A.ARM_RING_GONE, _A.OFFER)
    yield row(_S.RINGING, _I.RING_GONE, _S.IDLE, _A.FORGET_CALLER)
    yield row(_S.OFFERING, _I.RING, _S.OFFERING, _A.ARM_RING_GONE)
    yield row(_S.OFFERING, _I.ANSWER_RING, _S.OFFERING, _A.ARM_RING_GONE)
    yield row(_S.OFFERING, _I.RING_GONE, _S.IDLE, _A.CANCEL_OFFER, _A.STOP_MEDIA, _A.FORGET_CALLER)
    yield row(_S.OFFERING, _I.SWITCH_ANSWERED, _S.ANSWERING, _A.DISARM_RING_GONE, _A.OFF_HOOK)
    # Refused: the line rings on unanswered until the caller gives up (no second offer).
    yield row(_S.OFFERING, _I.SWITCH_REFUSED, _S.RINGING, _A.STOP_MEDIA)
    yield row(_S.ANSWERING, _I.OFF_HOOK_DONE, _S.CONNECTED, _A.START_SUPERVISION)
    yield row(_S.ANSWERING, _I.OFF_HOOK_FAILED, _S.IDLE, _A.BYE, _A.STOP_MEDIA)
    yield row(_S.ANSWERING, _I.SWITCH_BYE, _S.RELEASING, _A.STOP_MEDIA, _A.ON_HOOK)
    # Outbound: the switch asks us to dial.
    yield row(_S.IDLE, _I.SWITCH_INVITE, _S.SEIZING, _A.ACCEPT, _A.OFF_HOOK)
    yield row(_S.DOWN, _I.SWITCH_INVITE, _S.DOWN, _A.REJECT_LINE_DOWN)
    for busy in _S:
        if busy not in (_S.IDLE, _S.DOWN):
            yield row(busy, _I.SWITCH_INVITE, busy, _A.REJECT_LINE_BUSY)
    yield row(_S.SEIZING, _I.OFF_HOOK_DONE, _S.AWAITING_DIAL_TONE, _A.AWAIT_DIAL_TONE)
    yield row(_S.SEIZING, _I.OFF_HOOK_FAILED, _S.IDLE, _A.REFUSE_LINE_DOWN, _A.STOP_MEDIA)
    yield row(_S.AWAITING_DIAL_TONE, _I.DIAL_TONE, _S.DIALLING, _A.DIAL)
    yield row(_S.DIALLING, _I.DIALLED, _S.EARLY, _A.EARLY_MEDIA)
    yield row(_S.EARLY, _I.FAR_ANSWER, _S.CONNECTED, _A.ANSWER, _A.START_SUPERVISION)
    busy_refusal = (_A.REFUSE_BUSY, _A.STOP_MEDIA, _A.ON_HOOK)
    yield row(_S.EARLY, _I.FAR_BUSY, _S.RELEASING, *busy_refusal)
    congested = (_A.REFUSE_CONGESTION, _A.STOP_MEDIA, _A.ON_HOOK)
    yield row(_S.EARLY, _I.FAR_CONGESTION, _S.RELEASING, *congested)
    for state in _DIALLING_STATES:
        # §9.2: a CANCEL before our final response: 487 to the INVITE (the agent sends the
        # CANCEL its 200). A BYE in an early dialog ends the call the same way (§15).
        yield row(state, _I.SWITCH_CANCEL, _S.RELEASING, *_CANCELLED)
        yield row(state, _I.SWITCH_BYE, _S.RELEASING, *_CANCELLED)
        gone = (_A.REFUSE_GONE, _A.STOP_MEDIA, _A.ON_HOOK)
        yield row(state, _I.FAR_HANGUP, _S.RELEASING, *gone)
    # Answered: either side hangs up; the switch never ACKs our 200 (§13.3.1.4).
    # (A CANCEL after our 200 has no effect, §9.2: the pair is not in the table.)
    yield row(_S.CONNECTED, _I.SWITCH_BYE, _S.RELEASING, _A.STOP_MEDIA, _A.ON_HOOK)
    yield row(_S.CONNECTED, _I.FAR_HANGUP, _S.RELEASING, *_RELEASE_BY_US)
    yield row(_S.CONNECTED, _I.ACK_TIMEOUT, _S.RELEASING, *_RELEASE_BY_US)
    yield row(_S.RELEASING, _I.ON_HOOK_DONE, _S.IDLE, _A.FORGET_CALLER)
    # The line goes away and comes back; the gateway stops.
    for state, actions in _ABANDON.items():
        if state is not _S.DOWN:
            yield row(state, _I.LINE_LOST, _S.DOWN, *actions)
            if state is not _S.IDLE:
                yield row(state, _I.STOP, _S.IDLE, *actions)
    yield row(_S.DOWN, _I.LINE_BACK, _S.IDLE)


TABLE: dict[tuple[LineMachineState, LineInput], Transition] = dict(_rows())
"""Every pair with an effect; all others are ignored (see ``step``)."""

STATUS: dict[LineMachineState, str] = {
    _S.IDLE: "idle",
    _S.DOWN: "down",
    _S.RINGING: "ringing",
    _S.OFFERING: "ringing",
    _S.ANSWERING: "ringing",
    _S.SEIZING: "in use",
    _S.AWAITING_DIAL_TONE: "in use",
    _S.DIALLING: "in use",
    _S.EARLY: "in use",
    _S.CONNECTED: "in use",
    _S.RELEASING: "in use",
}
"""The line status each state shows (the web admin's dashboard, ``pbx line status``)."""


def step(state: LineMachineState, event: LineInput) -> Transition:
    """The transition for ``event`` in ``state``; a pair not in the table is ignored."""
    found = TABLE.get((state, event))
    return found if found is not None else Transition(state=state, ignored=True)
