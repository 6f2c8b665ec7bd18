"""An outgoing leg (the switch is the UAC of the INVITE), driven directly with a fake clock."""

from __future__ import annotations

from dataclasses import replace

from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.calls.leg_states import LegState
from pbx.calls.outputs import (
    Answered,
    CancelClient,
    Failed,
    Output,
    Progress,
    StartClient,
    Transmit,
)
from pbx.sip.message import Response
from tests.unit.calls.leg_fakes import (
    SDP,
    T0,
    Callee,
    cancels,
    client_key,
    ended,
    make_setup,
    of_type,
    reply,
    requests,
    run_timers,
    wire_request,
)

ANSWER = SDP.replace(b"4000", b"5000")


def started() -> tuple[Callee, OutgoingLeg]:
    callee = Callee()
    leg = callee.leg(make_setup())
    out = leg.start(T0)
    assert [o.request for o in out if isinstance(o, StartClient)] == [callee.invite]
    assert leg.state is LegState.PROCEEDING
    return callee, leg


def receive(leg: OutgoingLeg, response: Response, now: float) -> list[Output]:
    return leg.on_response(leg.invite_key, response, now)


def test_a_100_changes_nothing_a_180_makes_the_early_dialog() -> None:
    callee, leg = started()
    assert receive(leg, callee.answer(callee.invite, 100, tag=None), T0 + 0.1) == []
    assert leg.state is LegState.PROCEEDING
    out = receive(leg, callee.answer(callee.invite, 180), T0 + 0.2)
    assert of_type(out, Progress) == [Progress(leg="out", status=180, sdp=None)]
    assert leg.state is LegState.EARLY
    assert leg.dialog is not None and leg.dialog.early and leg.dialog.id.remote_tag == "ce"


def test_a_reliable_provisional_gets_one_prack_per_rseq() -> None:
    callee, leg = started()
    reliable = [("Require", "100rel"), ("RSeq", "1")]
    early = callee.answer(callee.invite, 183, body=ANSWER, headers=reliable)
    out = receive(leg, early, T0 + 0.1)
    (prack,) = requests(out, "PRACK")
    assert prack.headers.get("rack") == "1 1 INVITE"
    assert prack.to.tag == "ce" and prack.cseq.seq == 2
    assert str(prack.uri) == "sip:202@127.0.0.1:40201", "to the 183's Contact"
    assert of_type(out, Progress) == [Progress(leg="out", status=183, sdp=ANSWER)]

    again = receive(leg, early, T0 + 0.6)
    assert not requests(again, "PRACK"), "a retransmitted 183 (same RSeq) is PRACKed once"

    second = callee.answer(callee.invite, 180, headers=[("Require", "100rel"), ("RSeq", "2")])
    (prack2,) = requests(receive(leg, second, T0 + 1), "PRACK")
    assert prack2.headers.get("rack") == "2 1 INVITE" and prack2.cseq.seq == 3


def test_an_unreliable_provisional_gets_no_prack() -> None:
    callee, leg = started()
    out = receive(leg, callee.answer(callee.invite, 183, body=ANSWER), T0 + 0.1)
    assert not requests(out, "PRACK")


def test_the_2xx_is_acked_and_every_copy_gets_the_same_ack() -> None:
    callee, leg = started()
    receive(leg, callee.answer(callee.invite, 180), T0 + 0.1)
    ok = callee.answer(callee.invite, 200, body=ANSWER, headers=[("Allow", "INVITE, UPDATE")])
    out = receive(leg, ok, T0 + 1)
    (ack,) = requests(out, "ACK")
    assert ack.cseq.seq == 1 and ack.cseq.method == "ACK" and ack.to.tag == "ce"
    assert str(ack.uri) == "sip:202@127.0.0.1:40201"
    (answered,) = of_type(out, Answered)
    assert isinstance(answered, Answered) and answered.sdp == ANSWER
    assert leg.state is LegState.CONFIRMED
    assert leg.peer_allows_update

    for when in (T0 + 1.5, T0 + 2.5):
        copy = receive(leg, ok, when)
        assert [bytes(a) for a in requests(copy, "ACK")] == [bytes(ack)], "§13.2.2.4"
        assert not of_type(copy, Answered), "a copy is not a second answer"
    assert isinstance(out[0], Transmit), "an ACK for a 2xx goes outside any transaction"


def test_a_3xx_fails_the_leg_with_its_contacts() -> None:
    callee, leg = started()
    moved = callee.answer(
        callee.invite,
        302,
        headers=[("Contact", "<sip:303@192.0.2.9>, <sip:304@192.0.2.9;transport=tcp>")],
    )
    out = receive(leg, moved, T0 + 1)
    (failed,) = of_type(out, Failed)
    assert isinstance(failed, Failed) and failed.status == 302
    assert failed.contacts == ("sip:303@192.0.2.9", "sip:304@192.0.2.9;transport=tcp")
    assert leg.state is LegState.TERMINATED


def test_a_4xx_fails_the_leg_without_contacts() -> None:
    callee, leg = started()
    out = receive(leg, callee.answer(callee.invite, 486), T0 + 1)
    assert of_type(out, Failed) == [Failed(leg="out", status=486, reason="Busy Here")]
    assert leg.state is LegState.TERMINATED
    assert receive(leg, callee.answer(callee.invite, 486), T0 + 2) == [], "told once"


def test_no_response_at_all_fails_with_408() -> None:
    _, leg = started()
    out = leg.on_client_failure(leg.invite_key, T0 + 32)
    assert of_type(out, Failed) == [Failed(leg="out", status=408, reason="no response")]
    assert leg.state is LegState.TERMINATED


# -- CANCEL --------------------------------------------------------------------------------
def test_hangup_before_the_answer_cancels_and_the_487_ends_it() -> None:
    callee, leg = started()
    receive(leg, callee.answer(callee.invite, 180), T0 + 0.1)
    out = leg.hangup(T0 + 1)
    assert out == [CancelClient(key=leg.invite_key)]
    assert leg.state is LegState.TERMINATING
    out = receive(leg, callee.answer(callee.invite, 487), T0 + 1.1)
    assert not of_type(out, Failed), "the owner asked for the end: no Failed"
    assert leg.state is LegState.TERMINATED


def test_a_2xx_after_our_cancel_is_acked_then_byed() -> None:
    callee, leg = started()
    receive(leg, callee.answer(callee.invite, 180), T0 + 0.1)
    leg.hangup(T0 + 1)
    ok = callee.answer(callee.invite, 200, body=ANSWER)
    out = receive(leg, ok, T0 + 1.05)
    assert [r.method for r in requests(out)] == ["ACK", "BYE"]
    ack, bye = requests(out)
    assert ack.to.tag == bye.to.tag == "ce" and bye.cseq.seq == 2
    assert not of_type(out, Answered)
    assert leg.state is LegState.TERMINATING
    leg.on_response(client_key(bye), reply(bye), T0 + 1.1)
    assert leg.state is LegState.TERMINATED


def test_a_2xx_after_our_cancel_without_a_provisional_is_acked_then_byed() -> None:
    callee, leg = started()
    leg.hangup(T0 + 1)
    out = receive(leg, callee.answer(callee.invite, 200, body=ANSWER), T0 + 1.05)
    assert [r.method for r in requests(out)] == ["ACK", "BYE"]


def test_a_cancelled_invite_that_never_ends_is_given_up_after_64_t1() -> None:
    callee, leg = started()
    receive(leg, callee.answer(callee.invite, 180), T0 + 0.1)
    leg.hangup(T0 + 1)
    assert run_timers(leg, T0 + 1 + 31.9) == []
    assert leg.state is LegState.TERMINATING
    run_timers(leg, T0 + 1 + 32)
    assert leg.state is LegState.TERMINATED
    assert leg.next_deadline() is None


def test_cancel_is_sent_once() -> None:
    callee, leg = started()
    leg.hangup(T0 + 1)
    assert cancels(leg.hangup(T0 + 2)) == []


# -- forks behind a proxy ----------------------------------------------------------------
def test_a_2xx_from_a_second_fork_after_the_first_is_acked_and_byed() -> None:
    callee, leg = started()
    receive(leg, callee.answer(callee.invite, 200, body=ANSWER), T0 + 1)
    out = receive(leg, callee.answer(callee.invite, 200, body=ANSWER, tag="other"), T0 + 1.2)
    assert [(r.method, r.to.tag) for r in requests(out)] == [("ACK", "other"), ("BYE", "other")]
    assert not of_type(out, Answered) and not ended(out)
    assert leg.state is LegState.CONFIRMED
    assert leg.dialog is not None and leg.dialog.id.remote_tag == "ce", "the first stays"


def test_the_2xx_of_another_early_dialog_is_the_one_that_counts() -> None:
    callee, leg = started()
    receive(leg, callee.answer(callee.invite, 180, tag="early"), T0 + 0.5)
    out = receive(leg, callee.answer(callee.invite, 200, body=ANSWER, tag="ce"), T0 + 1)
    (ack,) = requests(out, "ACK")
    assert ack.to.tag == "ce"
    assert leg.dialog is not None and leg.dialog.id.remote_tag == "ce"
    assert of_type(out, Answered)


def test_the_ack_carries_the_credentials_of_an_invite_sent_again_after_a_challenge() -> None:
    """§13.2.2.4: the ACK for the 2xx has the INVITE's Proxy-Authorization (and the same ACK
    goes for every copy of the 2xx)."""
    callee = Callee()
    invite = callee.invite
    header = ("Proxy-Authorization", 'Digest username="line"')
    with_credentials = wire_request(replace(invite, headers=invite.headers.with_added(*header)))
    leg = OutgoingLeg(id="out", setup=make_setup(), transport="UDP", reliable=False,
                      destination=callee.leg(make_setup()).destination,
                      invite=with_credentials)  # fmt: skip
    leg.start(T0)
    ok = callee.answer(with_credentials, 200, body=ANSWER)
    (ack,) = requests(receive(leg, ok, T0 + 1), "ACK")
    assert ack.headers.get("proxy-authorization") == 'Digest username="line"'
    assert requests(receive(leg, ok, T0 + 1.5), "ACK") == [ack]
