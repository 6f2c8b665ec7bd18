"""Client transactions (RFC 3261 §17.1, Figures 5 and 6, with RFC 6026) on a fake clock."""

from __future__ import annotations

import pytest

from pbx.sip.message import Request, parse_message
from pbx.sip.transaction import (
    ClientKey,
    DeliverMessage,
    SendMessage,
    Timer,
    TimerSettings,
    TransactionTerminated,
    TransactionTimeout,
    TransportErrorReported,
    TransportFailure,
)
from pbx.sip.transaction_client import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    build_ack_for_non_2xx,
)
from tests.unit.sip.transaction_machines import (
    DEST,
    INVITE,
    OPTIONS,
    S,
    client_invite,
    client_options,
    kinds,
    reply,
    run_clock,
    send_times,
    sent,
)

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
    assert c.ack is not None and bytes(c.ack) == bytes(ack)
    assert c.state is S.COMPLETED
    assert c.timer_deadline(Timer.D) == 33.0
    # A retransmitted 486 gets the same ACK again, byte for byte, and does not reach the TU.
    (again,) = c.receive(busy, 2.0)
    assert isinstance(again, SendMessage) and again.destination == DEST and again.key == c.key
    assert again.data == bytes(ack) == bytes(again.message)
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
