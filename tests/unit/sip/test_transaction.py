"""The four transaction state machines of RFC 3261 §17 (with RFC 6026): every table pair,
the timer settings, and random interleavings on a fake clock."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.sip.transaction import (
    Input,
    Output,
    SendMessage,
    Timer,
    TimerSettings,
    Transaction,
    TransactionState,
    TransactionTerminated,
    TransportFailure,
)
from pbx.sip.transaction_client import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
)
from pbx.sip.transaction_layer import AnyTransaction
from pbx.sip.transaction_server import ServerInviteTransaction, ServerNonInviteTransaction
from tests.unit.sip.transaction_machines import (
    ACK_FOR_486,
    DEST,
    INVITE,
    OPTIONS,
    E,
    S,
    client_invite,
    client_options,
    reply,
    server_invite,
    server_options,
)

# ---------------------------------------------------------------------------
# The tables: every (state, input) pair, driven through the machine

MACHINES: dict[str, type[Transaction]] = {
    "client_invite": ClientInviteTransaction,
    "client_non_invite": ClientNonInviteTransaction,
    "server_invite": ServerInviteTransaction,
    "server_non_invite": ServerNonInviteTransaction,
}


@pytest.mark.parametrize("machine", MACHINES.values(), ids=MACHINES.keys())
def test_each_table_lists_every_state_input_pair(machine: type[Transaction]) -> None:
    assert set(machine.TRANSITIONS) == set(itertools.product(machine.STATES, machine.INPUTS))
    for action, target in machine.TRANSITIONS.values():
        assert target in machine.STATES
        assert callable(getattr(machine, action))
    # Terminated is final: every input leaves it there, doing nothing.
    for event in machine.INPUTS:
        assert machine.TRANSITIONS[(S.TERMINATED, event)] == ("_ignore", S.TERMINATED)


def reach(name: str, state: TransactionState) -> Transaction:
    """A machine of kind ``name`` brought to ``state`` through its public API (UDP)."""
    machine: Transaction
    if name == "client_invite":
        c = client_invite()
        c.start(0.0)
        steps = {
            S.PROCEEDING: reply(INVITE, 180),
            S.COMPLETED: reply(INVITE, 486),
            S.ACCEPTED: reply(INVITE, 200),
        }
        if state in steps:
            c.receive(steps[state], 0.0)
        machine = c
    elif name == "client_non_invite":
        n = client_options()
        n.start(0.0)
        steps = {S.PROCEEDING: reply(OPTIONS, 100), S.COMPLETED: reply(OPTIONS, 200)}
        if state in steps:
            n.receive(steps[state], 0.0)
        machine = n
    elif name == "server_invite":
        si = server_invite()
        si.start(0.0)
        if state in (S.COMPLETED, S.CONFIRMED):
            si.respond(reply(INVITE, 486), 0.0)
        if state is S.CONFIRMED:
            si.receive(ACK_FOR_486, 0.0)
        if state is S.ACCEPTED:
            si.respond(reply(INVITE, 200), 0.0)
        machine = si
    else:
        sn = server_options()
        sn.start(0.0)
        if state is S.PROCEEDING:
            sn.respond(reply(OPTIONS, 100), 0.0)
        if state is S.COMPLETED:
            sn.respond(reply(OPTIONS, 200), 0.0)
        machine = sn
    if state is S.TERMINATED:
        machine.process_input(E.TRANSPORT_ERROR, 0.0, TransportFailure(reason="test"))
    assert machine.state is state
    return machine


def item_for(name: str, event: Input) -> object:
    request = INVITE if "invite" in name and "non" not in name else OPTIONS
    if isinstance(event, Timer):
        return event
    return {
        E.REQUEST: request,
        E.ACK: ACK_FOR_486,
        E.RESPONSE_1XX: reply(request, 180 if request is INVITE else 100),
        E.RESPONSE_2XX: reply(request, 200),
        E.RESPONSE_300_699: reply(request, 486),
        E.CANCEL_SENT: None,
        E.TRANSPORT_ERROR: TransportFailure(reason="test"),
    }[event]


PAIRS = [
    (name, state, event)
    for name, machine in MACHINES.items()
    for state, event in itertools.product(machine.STATES, machine.INPUTS)
]


@pytest.mark.parametrize(
    ("name", "state", "event"), PAIRS, ids=[f"{n}-{s.value}-{e.value}" for n, s, e in PAIRS]
)
def test_every_pair_goes_where_the_table_says(
    name: str, state: TransactionState, event: Input
) -> None:
    machine = reach(name, state)
    action, target = machine.TRANSITIONS[(state, event)]
    out = machine.process_input(event, 0.0, item_for(name, event))
    assert machine.state is target
    terminated = [o for o in out if isinstance(o, TransactionTerminated)]
    assert len(terminated) == (1 if target is S.TERMINATED and state is not S.TERMINATED else 0)
    if action == "_ignore":
        assert out == terminated
    if target is S.TERMINATED:
        assert machine.next_deadline() is None
    for o in out:
        if isinstance(o, SendMessage):
            assert o.destination == DEST and o.key == machine.key


def test_timer_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        TimerSettings(t1=0)
    with pytest.raises(ValueError):
        TimerSettings(t1=5, t2=4)
    with pytest.raises(ValueError):
        TimerSettings(timer_d=-1)
    assert TimerSettings().sixty_four_t1 == 32.0


# ---------------------------------------------------------------------------
# Random interleavings: no exception, no illegal state, one Terminated


def _check_outputs(machine: Transaction, out: list[Output], now: float, fired: bool) -> None:
    for o in out:
        if isinstance(o, SendMessage):
            assert o.destination == DEST and o.key == machine.key
    deadline = machine.next_deadline()
    if fired:
        assert deadline is None or deadline > now
    assert machine.state in machine.STATES


def _drive(machine: AnyTransaction, steps: list[tuple[str, int, float]]) -> list[Output]:
    now = 0.0
    every = machine.start(now)
    request = machine.request
    for action, status, dt in steps:
        now += dt
        before = machine.state
        out: list[Output]
        if action == "timer":
            out = machine.handle_timer(now)
        elif action == "error":
            out = machine.receive(TransportFailure(), now)
        elif action == "copy":
            out = machine.receive(request, now)
        elif action == "ack":
            out = machine.receive(ACK_FOR_486, now)
        elif isinstance(machine, ServerInviteTransaction | ServerNonInviteTransaction):
            out = machine.respond(reply(request, status), now)
        else:
            out = machine.receive(reply(request, status), now)
        if before is S.TERMINATED:
            assert out == []
        _check_outputs(machine, out, now, fired=action == "timer")
        every += out
    return every


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["timer", "timer", "timer", "error", "copy", "ack", "response"]),
        st.sampled_from([100, 180, 183, 200, 202, 302, 404, 486, 503, 603]),
        st.sampled_from([0.0, 0.05, 0.2, 0.5, 1.0, 4.0, 16.0, 40.0]),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps=STEPS, name=st.sampled_from(list(MACHINES)), reliable=st.booleans())
def test_random_interleavings_stay_legal(
    steps: list[tuple[str, int, float]], name: str, reliable: bool
) -> None:
    factories: dict[str, Callable[..., AnyTransaction]] = {
        "client_invite": client_invite,
        "client_non_invite": client_options,
        "server_invite": server_invite,
        "server_non_invite": server_options,
    }
    machine = factories[name](reliable=reliable)
    every = _drive(machine, steps)
    terminated = [o for o in every if isinstance(o, TransactionTerminated)]
    assert len(terminated) == (1 if machine.state is S.TERMINATED else 0)
    if terminated:
        assert every.index(terminated[0]) == len(every) - 1  # the last word
    # Time alone ends every machine except those waiting for a final response
    # from the TU (server) or the far end (client INVITE in Proceeding).
    waiting = (name == "client_invite" and machine.state is S.PROCEEDING) or (
        name.startswith("server") and machine.state in (S.PROCEEDING, S.TRYING)
    )
    if not waiting:
        machine.handle_timer(1e6)
        assert machine.state is S.TERMINATED
