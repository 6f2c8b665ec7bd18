"""Server transactions (RFC 3261 §17.2, Figures 7 and 8, with RFC 6026) on a fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from pbx.sip.message import Response
from pbx.sip.transaction import (
    DeliverMessage,
    SendMessage,
    Timer,
    TransactionTerminated,
    TransactionTimeout,
    TransportFailure,
)
from tests.unit.sip.transaction_machines import (
    ACK_FOR_486,
    DEST,
    INVITE,
    OPTIONS,
    S,
    kinds,
    reply,
    run_clock,
    send_times,
    sent,
    server_invite,
    server_options,
    wire,
)

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
    assert wire(s.receive(INVITE, 0.5)) == [bytes(ringing)]
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
    assert wire(s.receive(INVITE, 0.3)) == [bytes(busy)]
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
    assert wire(s.receive(OPTIONS, 0.5)) == [bytes(trying)]
    ok = reply(OPTIONS, 200)
    assert sent(s.respond(ok, 1.0)) == [ok]
    assert s.state.value == "Completed" and s.timer_deadline(Timer.J) == 33.0
    assert wire(s.receive(OPTIONS, 2.0)) == [bytes(ok)]
    assert s.respond(reply(OPTIONS, 500), 2.0) == []  # §17.2.2: discarded
    assert s.handle_timer(33.0) == [TransactionTerminated(key=s.key)]


def test_timer_j_is_zero_over_tcp() -> None:
    s = server_options(reliable=True)
    s.start(0.0)
    ok = reply(OPTIONS, 200)
    assert s.respond(ok, 0.0) == [
        SendMessage(message=ok, destination=DEST, key=s.key, data=bytes(ok)),
        TransactionTerminated(key=s.key),
    ]
