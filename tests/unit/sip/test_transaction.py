"""The four transaction state machines of RFC 3261 §17 (with RFC 6026), on a fake clock."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.transaction import (
    AnyTransaction,
    ClientInviteTransaction,
    ClientKey,
    ClientNonInviteTransaction,
    DeliverMessage,
    Input,
    Output,
    SendMessage,
    ServerInviteTransaction,
    ServerKey,
    ServerNonInviteTransaction,
    Timer,
    TimerSettings,
    Transaction,
    TransactionEvent,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    TransportErrorReported,
    TransportFailure,
    build_ack_for_non_2xx,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "sip"
S = TransactionState
E = TransactionEvent
DEST = ("192.0.2.20", 5060)  # opaque to the machines


def load(name: str) -> Request:
    message = parse_message((DATA / name).read_bytes())
    assert isinstance(message, Request)
    return message


INVITE = load("invite_alice_via_proxy.sip")
OPTIONS = load("options_from_phone.sip")
ACK_FOR_486 = build_ack_for_non_2xx(INVITE, make_response(INVITE, 486, to_tag="b1"))


def reply(request: Request, status: int, tag: str = "b1") -> Response:
    return make_response(request, status, to_tag=tag)


def client_invite(
    *, reliable: bool = False, t: TimerSettings | None = None
) -> ClientInviteTransaction:
    return ClientInviteTransaction(
        INVITE,
        key=ClientKey("z9hG4bKinv1", "INVITE"),
        destination=DEST,
        reliable=reliable,
        settings=t,
    )


def client_options(*, reliable: bool = False) -> ClientNonInviteTransaction:
    return ClientNonInviteTransaction(
        OPTIONS, key=ClientKey("z9hG4bKopt77", "OPTIONS"), destination=DEST, reliable=reliable
    )


def server_invite(*, reliable: bool = False) -> ServerInviteTransaction:
    key = ServerKey("z9hG4bKinv1", "192.0.2.10:5060", "INVITE")
    return ServerInviteTransaction(INVITE, key=key, destination=DEST, reliable=reliable)


def server_options(*, reliable: bool = False) -> ServerNonInviteTransaction:
    key = ServerKey("z9hG4bKopt77", "192.0.2.40:5062", "OPTIONS")
    return ServerNonInviteTransaction(OPTIONS, key=key, destination=DEST, reliable=reliable)


def sent(out: list[Output]) -> list[Request | Response]:
    return [o.message for o in out if isinstance(o, SendMessage)]


def kinds(out: list[Output]) -> list[str]:
    return [type(o).__name__ for o in out]


def run_clock(machine: Transaction, until: float) -> list[tuple[float, list[Output]]]:
    """Fire every deadline up to ``until``; what happened when."""
    log = []
    while (deadline := machine.next_deadline()) is not None and deadline <= until:
        log.append((deadline, machine.handle_timer(deadline)))
    return log


def send_times(log: list[tuple[float, list[Output]]]) -> list[float]:
    return [round(t, 6) for t, out in log for o in out if isinstance(o, SendMessage)]


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


# ---------------------------------------------------------------------------
# Client INVITE (Figure 5)


def test_invite_retransmits_on_timer_a_doubling_then_times_out_on_timer_b() -> None:
    c = client_invite()
    assert sent(c.start(0.0)) == [INVITE]
    log = run_clock(c, 100.0)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    last_time, last = log[-1]
    assert last_time == 32.0  # Timer B = 64*T1
    assert last == [
        TransactionTimeout(key=c.key, timer=Timer.B),
        TransactionTerminated(key=c.key),
    ]
    assert c.state is S.TERMINATED and c.next_deadline() is None


def test_invite_over_tcp_is_sent_once_and_still_times_out() -> None:
    c = client_invite(reliable=True)
    c.start(10.0)
    assert c.timer_deadline(Timer.A) is None
    log = run_clock(c, 100.0)
    assert send_times(log) == []
    assert log[-1][0] == 42.0
    assert kinds(log[-1][1]) == ["TransactionTimeout", "TransactionTerminated"]


def test_timers_follow_t1_and_t2_settings() -> None:
    c = client_invite(t=TimerSettings(t1=0.1, t2=1.0))
    c.start(0.0)
    log = run_clock(c, 100.0)
    assert send_times(log) == [0.1, 0.3, 0.7, 1.5, 3.1, 6.3]  # no cap on Timer A
    assert log[-1][0] == pytest.approx(6.4)


def test_provisional_stops_retransmissions_and_timer_b() -> None:
    c = client_invite()
    c.start(0.0)
    c.handle_timer(0.5)
    ringing = reply(INVITE, 180)
    assert c.receive(ringing, 0.7) == [DeliverMessage(message=ringing, key=c.key)]
    assert c.state is S.PROCEEDING
    assert c.next_deadline() is None  # RFC 3261: no timer in Proceeding
    progress = reply(INVITE, 183)
    assert c.receive(progress, 1.0) == [DeliverMessage(message=progress, key=c.key)]


def test_non_2xx_final_is_acked_by_the_transaction_and_absorbed_after() -> None:
    c = client_invite()
    c.start(0.0)
    busy = reply(INVITE, 486)
    out = c.receive(busy, 1.0)
    assert kinds(out) == ["SendMessage", "DeliverMessage"]
    ack = sent(out)[0]
    assert ack == c.ack
    assert c.state is S.COMPLETED
    assert c.timer_deadline(Timer.D) == 33.0
    # A retransmitted 486 gets the same ACK again and does not reach the TU.
    assert c.receive(busy, 2.0) == [SendMessage(message=ack, destination=DEST, key=c.key)]
    assert c.receive(reply(INVITE, 180), 2.0) == []
    assert c.handle_timer(32.9) == []
    assert c.handle_timer(33.0) == [TransactionTerminated(key=c.key)]


def test_timer_d_is_zero_over_tcp() -> None:
    c = client_invite(reliable=True)
    c.start(0.0)
    out = c.receive(reply(INVITE, 404), 1.0)
    assert kinds(out) == ["SendMessage", "DeliverMessage", "TransactionTerminated"]
    assert c.state is S.TERMINATED


def test_ack_for_non_2xx_follows_17_1_1_3() -> None:
    busy = reply(INVITE, 486, tag="uas-tag")
    ack = build_ack_for_non_2xx(INVITE, busy)
    parsed = parse_message(bytes(ack))
    assert isinstance(parsed, Request)
    assert parsed.method == "ACK"
    assert str(parsed.uri) == str(INVITE.uri)
    assert [str(v) for v in parsed.vias] == [str(INVITE.top_via)]  # one Via, same branch
    assert parsed.top_via.branch == "z9hG4bKinv1"
    assert parsed.headers.get_all("route") == INVITE.headers.get_all("route")
    assert parsed.to.tag == "uas-tag"
    assert parsed.from_ == INVITE.from_
    assert parsed.call_id == INVITE.call_id
    assert (parsed.cseq.seq, parsed.cseq.method) == (314159, "ACK")
    assert parsed.max_forwards == 69
    assert parsed.body == b"" and parsed.headers.get("require") is None


def test_2xx_goes_to_accepted_and_its_retransmissions_to_the_tu() -> None:
    """RFC 6026 §8.4: Accepted until Timer M, passing every 2xx up."""
    c = client_invite()
    c.start(0.0)
    ok = reply(INVITE, 200)
    assert c.receive(ok, 2.0) == [DeliverMessage(message=ok, key=c.key)]
    assert c.state is S.ACCEPTED
    assert c.timer_deadline(Timer.M) == 34.0 and c.timer_deadline(Timer.A) is None
    assert c.receive(ok, 3.0) == [DeliverMessage(message=ok, key=c.key)]
    other_fork = reply(INVITE, 200, tag="fork2")
    assert c.receive(other_fork, 3.5) == [DeliverMessage(message=other_fork, key=c.key)]
    assert c.receive(reply(INVITE, 486), 4.0) == []
    assert c.handle_timer(34.0) == [TransactionTerminated(key=c.key)]


def test_transport_error_while_calling_is_reported_and_terminates() -> None:
    c = client_invite()
    c.start(0.0)
    out = c.receive(TransportFailure(reason="ICMP unreachable"), 0.1)
    assert out == [
        TransportErrorReported(key=c.key, reason="ICMP unreachable"),
        TransactionTerminated(key=c.key),
    ]


def test_transport_error_in_accepted_is_reported_but_keeps_the_state() -> None:
    c = client_invite()
    c.start(0.0)
    c.receive(reply(INVITE, 200), 0.1)
    assert kinds(c.receive(TransportFailure(), 0.2)) == ["TransportErrorReported"]
    assert c.state is S.ACCEPTED


def test_cancel_sent_bounds_a_proceeding_invite_by_64_t1() -> None:
    """§9.1: no final response 64*T1 after the CANCEL: the INVITE is given up."""
    c = client_invite()
    c.start(0.0)
    c.receive(reply(INVITE, 180), 1.0)
    assert c.cancel_sent(5.0) == []
    assert run_clock(c, 100.0) == [
        (
            37.0,
            [TransactionTimeout(key=c.key, timer=Timer.CANCEL), TransactionTerminated(key=c.key)],
        )
    ]


def test_487_after_cancel_completes_normally() -> None:
    c = client_invite()
    c.start(0.0)
    c.receive(reply(INVITE, 180), 1.0)
    c.cancel_sent(2.0)
    out = c.receive(reply(INVITE, 487), 2.1)
    assert kinds(out) == ["SendMessage", "DeliverMessage"]
    assert c.timer_deadline(Timer.CANCEL) is None


def test_start_twice_and_wrong_method_are_refused() -> None:
    c = client_invite()
    c.start(0.0)
    with pytest.raises(RuntimeError):
        c.start(1.0)
    with pytest.raises(ValueError):
        ClientInviteTransaction(
            OPTIONS, key=ClientKey("z9hG4bKopt77", "OPTIONS"), destination=DEST, reliable=False
        )
    with pytest.raises(ValueError):
        ClientNonInviteTransaction(
            INVITE, key=ClientKey("z9hG4bKinv1", "INVITE"), destination=DEST, reliable=False
        )


def test_a_client_transaction_ignores_requests() -> None:
    c = client_invite()
    c.start(0.0)
    assert c.receive(INVITE, 0.1) == []


# ---------------------------------------------------------------------------
# Client non-INVITE (Figure 6)


def test_timer_e_doubles_up_to_t2_then_f_times_out() -> None:
    n = client_options()
    n.start(0.0)
    log = run_clock(n, 100.0)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (
        32.0,
        [TransactionTimeout(key=n.key, timer=Timer.F), TransactionTerminated(key=n.key)],
    )


def test_timer_e_is_t2_in_proceeding() -> None:
    n = client_options()
    n.start(0.0)
    n.handle_timer(0.5)
    n.receive(reply(OPTIONS, 100), 0.7)
    assert n.state is S.PROCEEDING
    log = run_clock(n, 100.0)
    # The pending E (1.5) still fires, then every T2 until F.
    assert send_times(log) == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert log[-1][0] == 32.0


def test_non_invite_over_tcp_no_retransmissions_and_k_zero() -> None:
    n = client_options(reliable=True)
    n.start(0.0)
    assert n.timer_deadline(Timer.E) is None and n.timer_deadline(Timer.F) == 32.0
    ok = reply(OPTIONS, 200)
    assert n.receive(ok, 1.0) == [
        DeliverMessage(message=ok, key=n.key),
        TransactionTerminated(key=n.key),
    ]


def test_final_response_completes_and_timer_k_absorbs_copies() -> None:
    n = client_options()
    n.start(0.0)
    ok = reply(OPTIONS, 200)
    assert n.receive(ok, 1.0) == [DeliverMessage(message=ok, key=n.key)]
    assert n.state is S.COMPLETED and n.timer_deadline(Timer.K) == 6.0  # T4
    assert n.receive(ok, 2.0) == []
    assert n.receive(reply(OPTIONS, 500), 2.0) == []
    assert n.handle_timer(6.0) == [TransactionTerminated(key=n.key)]


def test_provisionals_reach_the_tu() -> None:
    n = client_options()
    n.start(0.0)
    trying = reply(OPTIONS, 100)
    assert n.receive(trying, 0.1) == [DeliverMessage(message=trying, key=n.key)]
    assert n.receive(trying, 0.2) == [DeliverMessage(message=trying, key=n.key)]


# ---------------------------------------------------------------------------
# Server INVITE (Figure 7)


def test_server_invite_passes_the_request_up_and_sends_100_after_200_ms() -> None:
    s = server_invite()
    assert s.start(0.0) == [DeliverMessage(message=INVITE, key=s.key)]
    assert s.next_deadline() == 0.2
    out = s.handle_timer(0.2)
    (trying,) = sent(out)
    assert isinstance(trying, Response) and trying.status == 100
    assert trying.to.tag is None  # §8.2.6.2: no tag on a 100
    assert trying.headers.get("timestamp") == "54"  # §8.2.6.1
    assert trying.top_via == INVITE.top_via and len(trying.vias) == 2
    assert s.state is S.PROCEEDING and s.next_deadline() is None


def test_no_100_when_the_tu_answers_within_200_ms() -> None:
    s = server_invite()
    s.start(0.0)
    ringing = reply(INVITE, 180)
    assert sent(s.respond(ringing, 0.1)) == [ringing]
    assert s.handle_timer(1.0) == [] and s.next_deadline() is None


def test_retransmitted_invite_gets_the_last_provisional() -> None:
    s = server_invite()
    s.start(0.0)
    # Before 200 ms nothing was sent: answer the copy with a 100 at once.
    (first,) = sent(s.receive(INVITE, 0.1))
    assert isinstance(first, Response) and first.status == 100
    assert s.next_deadline() is None
    ringing = reply(INVITE, 180)
    s.respond(ringing, 0.3)
    assert sent(s.receive(INVITE, 0.5)) == [ringing]
    assert s.receive(ACK_FOR_486, 0.6) == []  # an ACK before any final: ignored


def test_non_2xx_final_retransmits_on_g_up_to_t2_until_h() -> None:
    s = server_invite()
    s.start(0.0)
    busy = reply(INVITE, 486)
    assert sent(s.respond(busy, 0.0)) == [busy]
    assert s.state is S.COMPLETED
    log = run_clock(s, 100.0)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (
        32.0,
        [TransactionTimeout(key=s.key, timer=Timer.H), TransactionTerminated(key=s.key)],
    )


def test_completed_resends_the_final_on_a_copy_and_ack_confirms() -> None:
    s = server_invite()
    s.start(0.0)
    busy = reply(INVITE, 486)
    s.respond(busy, 0.0)
    assert sent(s.receive(INVITE, 0.3)) == [busy]
    assert s.respond(reply(INVITE, 500), 0.4) == []  # a second final is discarded
    assert s.receive(ACK_FOR_486, 0.6) == []  # absorbed: not for the TU
    assert s.state is S.CONFIRMED
    assert s.timer_deadline(Timer.G) is None and s.timer_deadline(Timer.H) is None
    assert s.timer_deadline(Timer.I) == 5.6  # T4
    assert s.receive(ACK_FOR_486, 1.0) == [] and s.receive(INVITE, 1.0) == []
    assert s.handle_timer(5.6) == [TransactionTerminated(key=s.key)]


def test_over_tcp_no_g_and_timer_i_is_zero() -> None:
    s = server_invite(reliable=True)
    s.start(0.0)
    s.respond(reply(INVITE, 603), 0.0)
    assert s.timer_deadline(Timer.G) is None and s.timer_deadline(Timer.H) == 32.0
    assert s.receive(ACK_FOR_486, 0.1) == [TransactionTerminated(key=s.key)]


def test_2xx_takes_the_server_to_accepted_for_timer_l() -> None:
    """RFC 6026 §8.5-8.7: copies absorbed, ACKs and the TU's 2xx copies pass through."""
    s = server_invite()
    s.start(0.0)
    ok = reply(INVITE, 200)
    assert sent(s.respond(ok, 1.0)) == [ok]
    assert s.state is S.ACCEPTED and s.timer_deadline(Timer.L) == 33.0
    assert s.receive(INVITE, 1.5) == []
    assert sent(s.respond(ok, 1.5)) == [ok]  # the TU retransmits its 2xx (§13.3.1.4)
    assert s.respond(reply(INVITE, 486), 1.6) == []
    ack = dataclasses.replace(ACK_FOR_486)
    assert s.receive(ack, 2.0) == [DeliverMessage(message=ack, key=s.key)]
    assert s.handle_timer(33.0) == [TransactionTerminated(key=s.key)]


def test_server_transport_errors() -> None:
    s = server_invite()
    s.start(0.0)
    assert kinds(s.receive(TransportFailure(reason="reset"), 0.1)) == [
        "TransportErrorReported",
        "TransactionTerminated",
    ]
    accepted = server_invite()
    accepted.start(0.0)
    accepted.respond(reply(INVITE, 200), 0.0)
    assert kinds(accepted.receive(TransportFailure(), 0.1)) == ["TransportErrorReported"]
    assert accepted.state is S.ACCEPTED


def test_respond_refuses_a_response_to_another_request() -> None:
    s = server_invite()
    s.start(0.0)
    with pytest.raises(ValueError):
        s.respond(reply(OPTIONS, 200), 0.0)


# ---------------------------------------------------------------------------
# Server non-INVITE (Figure 8)


def test_server_non_invite_trying_discards_copies() -> None:
    s = server_options()
    assert s.start(0.0) == [DeliverMessage(message=OPTIONS, key=s.key)]
    assert s.next_deadline() is None  # no automatic 100 for non-INVITE
    assert s.receive(OPTIONS, 0.5) == []


def test_server_non_invite_resends_the_last_response() -> None:
    s = server_options()
    s.start(0.0)
    trying = reply(OPTIONS, 100)
    s.respond(trying, 0.1)
    assert s.state.value == "Proceeding"
    assert sent(s.receive(OPTIONS, 0.5)) == [trying]
    ok = reply(OPTIONS, 200)
    assert sent(s.respond(ok, 1.0)) == [ok]
    assert s.state.value == "Completed" and s.timer_deadline(Timer.J) == 33.0
    assert sent(s.receive(OPTIONS, 2.0)) == [ok]
    assert s.respond(reply(OPTIONS, 500), 2.0) == []  # §17.2.2: discarded
    assert s.handle_timer(33.0) == [TransactionTerminated(key=s.key)]


def test_timer_j_is_zero_over_tcp() -> None:
    s = server_options(reliable=True)
    s.start(0.0)
    ok = reply(OPTIONS, 200)
    assert s.respond(ok, 0.0) == [
        SendMessage(message=ok, destination=DEST, key=s.key),
        TransactionTerminated(key=s.key),
    ]


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
