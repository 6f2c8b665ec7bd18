"""The transaction layer: matching (§17.1.3, §17.2.3), CANCEL (§9), timers, memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_request, make_response, parse_message
from pbx.sip.transaction import (
    ClientKey,
    DeliverMessage,
    LegacyServerKey,
    Output,
    SendMessage,
    ServerKey,
    Timer,
    TransactionState,
    TransactionTerminated,
    TransactionTimeout,
    TransportErrorReported,
)
from pbx.sip.transaction_layer import (
    Incoming,
    TransactionLayer,
    build_cancel,
    client_key,
    client_key_of_response,
    invite_key_for_cancel,
    server_key,
)
from pbx.sip.transaction_server import ServerInviteTransaction
from pbx.sip.uri import parse_uri

DATA = Path(__file__).resolve().parents[2] / "data" / "sip"
S = TransactionState
FLOW = ("udp", ("192.0.2.10", 5060))  # what the transport would pass: opaque here
PEER = ("192.0.2.20", 5060)


def load(name: str) -> Request:
    message = parse_message((DATA / name).read_bytes())
    assert isinstance(message, Request)
    return message


INVITE = load("invite_alice_via_proxy.sip")
OPTIONS = load("options_from_phone.sip")
LEGACY_INVITE = load("invite_rfc2543_no_cookie.sip")
NO_BRANCH_INVITE = load("invite_rfc2543_no_branch.sip")


def incoming(message: Request | Response, *, reliable: bool = False) -> Incoming:
    return Incoming(message=message, source=FLOW, reliable=reliable)


def reply(request: Request, status: int, tag: str = "b1") -> Response:
    return make_response(request, status, to_tag=tag)


def with_branch(request: Request, branch: str, host: str = "192.0.2.10:5060") -> Request:
    via = f"SIP/2.0/UDP {host};branch={branch}"
    return dataclasses.replace(
        request, headers=request.headers.without("via").with_added("Via", via, first=True)
    )


def our_request(method: str, branch: str, *, cseq: int = 1) -> Request:
    return make_request(
        method,
        parse_uri("sip:1002@192.0.2.20"),
        via=Via(transport="UDP", host="192.0.2.1", port=5060, params=(("branch", branch),)),
        from_=NameAddress(uri=parse_uri("sip:pbx@192.0.2.1")).with_tag("pbx1"),
        to=NameAddress(uri=parse_uri("sip:1002@192.0.2.20")),
        call_id=f"call-{branch}",
        cseq=cseq,
        contact=NameAddress(uri=parse_uri("sip:pbx@192.0.2.1:5060")),
    )


def delivered(out: list[Output]) -> list[DeliverMessage]:
    return [o for o in out if isinstance(o, DeliverMessage)]


def wire(out: list[Output]) -> list[bytes]:
    """What each SendMessage puts on the wire (its ``data`` is its message's bytes)."""
    sends = [o for o in out if isinstance(o, SendMessage)]
    assert all(o.data is None or o.data == bytes(o.message) for o in sends)
    return [o.data if o.data is not None else bytes(o.message) for o in sends]


def sent(out: list[Output]) -> list[Request | Response]:
    return [o.message for o in out if isinstance(o, SendMessage)]


def statuses(out: list[Output]) -> list[int]:
    return [m.status for m in sent(out) if isinstance(m, Response)]


def layer_is_empty(layer: TransactionLayer) -> bool:
    return len(layer) == 0 and layer.next_deadline() is None and not layer._heap


# ---------------------------------------------------------------------------
# Keys


def test_server_key_uses_branch_sent_by_and_method() -> None:
    assert server_key(INVITE) == ServerKey("z9hG4bKinv1", "192.0.2.10:5060", "INVITE")
    ack = dataclasses.replace(INVITE, method="ACK")
    assert server_key(ack) == server_key(INVITE)
    cancel = build_cancel(INVITE)
    assert server_key(cancel) == ServerKey("z9hG4bKinv1", "192.0.2.10:5060", "CANCEL")
    assert invite_key_for_cancel(cancel) == server_key(INVITE)


def test_legacy_key_without_the_magic_cookie() -> None:
    key = server_key(LEGACY_INVITE)
    assert isinstance(key, LegacyServerKey)
    assert (key.call_id, key.cseq, key.from_tag, key.to_tag, key.method) == (
        "2543-call@192.0.2.30",
        7,
        "old1",
        None,
        "INVITE",
    )
    assert isinstance(server_key(NO_BRANCH_INVITE), LegacyServerKey)


def test_client_keys() -> None:
    request = our_request("OPTIONS", "z9hG4bKc1")
    assert client_key(request) == ClientKey("z9hG4bKc1", "OPTIONS")
    assert client_key_of_response(reply(request, 200)) == client_key(request)
    with pytest.raises(ValueError):
        client_key(LEGACY_INVITE)


# ---------------------------------------------------------------------------
# Server side


def test_new_request_makes_a_server_transaction_and_copies_are_absorbed() -> None:
    layer = TransactionLayer()
    out = layer.receive(incoming(OPTIONS), 0.0)
    key = server_key(OPTIONS)
    assert out == [DeliverMessage(message=OPTIONS, key=key, source=FLOW)]
    assert len(layer) == 1 and layer.state(key) is S.TRYING
    assert layer.receive(incoming(OPTIONS), 0.1) == []
    ok = reply(OPTIONS, 200)
    assert layer.respond(key, ok, 0.2) == [
        SendMessage(message=ok, destination=FLOW, key=key, data=bytes(ok))
    ]
    assert wire(layer.receive(incoming(OPTIONS), 0.3)) == [bytes(ok)]
    assert layer.next_deadline() == pytest.approx(32.2)
    assert layer.handle_timer(32.2) == [TransactionTerminated(key=key)]
    assert layer_is_empty(layer)
    assert layer.respond(key, ok, 40.0) == []  # gone: nothing to do


def test_same_branch_from_another_sent_by_is_another_transaction() -> None:
    layer = TransactionLayer()
    layer.receive(incoming(OPTIONS), 0.0)
    other = with_branch(OPTIONS, "z9hG4bKopt77", host="192.0.2.99:5060")
    assert len(delivered(layer.receive(incoming(other), 0.0))) == 1
    assert len(layer) == 2


def test_ack_for_non_2xx_confirms_the_invite_transaction() -> None:
    layer = TransactionLayer()
    layer.receive(incoming(INVITE), 0.0)
    key = server_key(INVITE)
    busy = reply(INVITE, 486)
    layer.respond(key, busy, 0.1)
    ack = dataclasses.replace(
        INVITE,
        method="ACK",
        headers=INVITE.headers.with_set("CSeq", "314159 ACK").with_set(
            "To", busy.headers.get("to") or ""
        ),
    )
    assert layer.receive(incoming(ack), 0.2) == []
    assert layer.state(key) is S.CONFIRMED
    assert layer.handle_timer(5.2) == [TransactionTerminated(key=key)]


def test_ack_for_2xx_has_its_own_branch_and_goes_to_the_tu() -> None:
    layer = TransactionLayer()
    layer.receive(incoming(INVITE), 0.0)
    key = server_key(INVITE)
    layer.respond(key, reply(INVITE, 200), 0.1)
    ack = with_branch(dataclasses.replace(INVITE, method="ACK"), "z9hG4bKack2")
    assert layer.receive(incoming(ack), 0.2) == [DeliverMessage(message=ack, key=None, source=FLOW)]
    # An ACK that reuses the INVITE's branch matches and is passed up too (RFC 6026).
    same = dataclasses.replace(INVITE, method="ACK")
    assert layer.receive(incoming(same), 0.3) == [
        DeliverMessage(message=same, key=key, source=FLOW)
    ]
    assert layer.receive(incoming(INVITE), 0.4) == []  # absorbed in Accepted


def test_100_trying_comes_from_the_layer_timer() -> None:
    layer = TransactionLayer()
    layer.receive(incoming(INVITE), 10.0)
    assert layer.next_deadline() == pytest.approx(10.2)
    (trying,) = sent(layer.handle_timer(10.2))
    assert isinstance(trying, Response) and trying.status == 100


def test_cancel_is_its_own_transaction_and_finds_the_invite() -> None:
    layer = TransactionLayer()
    layer.receive(incoming(INVITE), 0.0)
    cancel = build_cancel(INVITE)
    out = layer.receive(incoming(cancel), 1.0)
    cancel_key = server_key(cancel)
    assert out == [DeliverMessage(message=cancel, key=cancel_key, source=FLOW)]
    invite_tx = layer.find_invite_for_cancel(cancel)
    assert isinstance(invite_tx, ServerInviteTransaction) and invite_tx.key == server_key(INVITE)
    # The TU's §9.2 answer: 200 to the CANCEL, 487 to the INVITE.
    assert statuses(layer.respond(cancel_key, reply(cancel, 200), 1.0)) == [200]
    assert statuses(layer.respond(invite_tx.key, reply(INVITE, 487), 1.0)) == [487]
    stray = with_branch(cancel, "z9hG4bKnothing")
    assert layer.find_invite_for_cancel(stray) is None


def test_rfc2543_matching_of_copies_acks_and_cancels() -> None:
    layer = TransactionLayer()
    for invite in (LEGACY_INVITE, NO_BRANCH_INVITE):
        assert len(delivered(layer.receive(incoming(invite), 0.0))) == 1
        assert delivered(layer.receive(incoming(invite), 0.1)) == []  # a copy: 100 at most
        key = server_key(invite)
        busy = reply(invite, 486, tag="ours")
        layer.respond(key, busy, 0.2)
        # An ACK with some other To tag is not for this transaction.
        wrong = dataclasses.replace(
            invite,
            method="ACK",
            headers=invite.headers.with_set("CSeq", f"{invite.cseq.seq} ACK").with_set(
                "To", (invite.headers.get("to") or "") + ";tag=someone-else"
            ),
        )
        assert delivered(layer.receive(incoming(wrong), 0.3))[0].key is None
        right = dataclasses.replace(
            wrong, headers=wrong.headers.with_set("To", busy.headers.get("to") or "")
        )
        assert layer.receive(incoming(right), 0.3) == []
        assert layer.state(key) is S.CONFIRMED
    legacy_cancel = build_cancel(NO_BRANCH_INVITE)
    assert layer.find_invite_for_cancel(legacy_cancel) is not None


def test_transport_error_on_a_server_response() -> None:
    layer = TransactionLayer()
    layer.receive(incoming(INVITE), 0.0)
    key = server_key(INVITE)
    layer.respond(key, reply(INVITE, 180), 0.1)
    assert layer.transport_error(key, 0.1, "connection reset") == [
        TransportErrorReported(key=key, reason="connection reset"),
        TransactionTerminated(key=key),
    ]
    assert layer_is_empty(layer)
    assert layer.transport_error(key, 0.2) == []


# ---------------------------------------------------------------------------
# Client side


def test_responses_reach_their_client_transaction_and_strays_are_dropped() -> None:
    layer = TransactionLayer()
    request = our_request("OPTIONS", "z9hG4bKc1")
    out = layer.send_request(request, PEER, 0.0, reliable=False)
    key = client_key(request)
    assert out == [SendMessage(message=request, destination=PEER, key=key)]
    ok = reply(request, 200)
    assert layer.receive(incoming(ok), 0.1) == [DeliverMessage(message=ok, key=key, source=FLOW)]
    assert layer.receive(incoming(reply(our_request("OPTIONS", "z9hG4bKzz"), 200)), 0.1) == []
    no_branch = dataclasses.replace(
        ok, headers=ok.headers.with_set("Via", "SIP/2.0/UDP 192.0.2.1:5060")
    )
    assert layer.receive(incoming(no_branch), 0.1) == []
    assert layer.handle_timer(5.1) == [TransactionTerminated(key=key)]
    assert layer_is_empty(layer)


def test_send_request_refuses_duplicates() -> None:
    layer = TransactionLayer()
    request = our_request("INVITE", "z9hG4bKdup")
    layer.send_request(request, PEER, 0.0, reliable=False)
    with pytest.raises(ValueError):
        layer.send_request(request, PEER, 0.0, reliable=False)


def test_cancel_waits_for_a_provisional_response() -> None:
    """§9.1: a CANCEL must not be sent before a provisional response."""
    layer = TransactionLayer()
    invite = our_request("INVITE", "z9hG4bKc2")
    layer.send_request(invite, PEER, 0.0, reliable=False)
    invite_key = client_key(invite)
    assert layer.cancel(invite_key, 0.1) == []
    out = layer.receive(incoming(reply(invite, 180)), 0.3)
    assert [type(o).__name__ for o in out] == ["DeliverMessage", "SendMessage"]
    cancel = sent(out)[0]
    assert isinstance(cancel, Request) and cancel.method == "CANCEL"
    assert out[1] == SendMessage(
        message=cancel, destination=PEER, key=ClientKey("z9hG4bKc2", "CANCEL")
    )
    # The CANCEL's 200 and the INVITE's 487 each reach their own transaction.
    cancel_ok = reply(cancel, 200)
    assert delivered(layer.receive(incoming(cancel_ok), 0.4))[0].key == ClientKey(
        "z9hG4bKc2", "CANCEL"
    )
    out = layer.receive(incoming(reply(invite, 487)), 0.5)
    assert [m.method for m in sent(out) if isinstance(m, Request)] == ["ACK"]
    assert delivered(out)[0].key == invite_key
    assert layer.cancel(invite_key, 0.6) == []  # final response: nothing to cancel


def test_pending_cancel_is_dropped_when_a_final_response_comes_first() -> None:
    layer = TransactionLayer()
    invite = our_request("INVITE", "z9hG4bKc3")
    layer.send_request(invite, PEER, 0.0, reliable=True)
    layer.cancel(client_key(invite), 0.1)
    out = layer.receive(incoming(reply(invite, 200)), 0.2)
    assert [type(o).__name__ for o in out] == ["DeliverMessage"]
    assert layer._pending_cancels == {}


def test_cancel_in_proceeding_is_sent_at_once_and_bounds_the_invite() -> None:
    layer = TransactionLayer()
    invite = our_request("INVITE", "z9hG4bKc4")
    layer.send_request(invite, PEER, 0.0, reliable=True)
    layer.receive(incoming(reply(invite, 183)), 0.1)
    out = layer.cancel(client_key(invite), 1.0)
    (cancel,) = sent(out)
    assert isinstance(cancel, Request) and cancel == build_cancel(invite)
    # The far end answers the CANCEL but never the INVITE.
    layer.receive(incoming(reply(cancel, 200)), 1.1)
    assert layer.cancel(client_key(invite), 1.2) == []  # already cancelling
    out = layer.handle_timer(33.0)
    assert TransactionTimeout(key=client_key(invite), timer=Timer.CANCEL) in out
    assert layer_is_empty(layer)


def test_build_cancel_follows_9_1() -> None:
    cancel = parse_message(bytes(build_cancel(INVITE)))
    assert isinstance(cancel, Request)
    assert cancel.method == "CANCEL" and str(cancel.uri) == str(INVITE.uri)
    assert [str(v) for v in cancel.vias] == [str(INVITE.top_via)]
    assert (cancel.call_id, cancel.from_, cancel.to) == (INVITE.call_id, INVITE.from_, INVITE.to)
    assert (cancel.cseq.seq, cancel.cseq.method) == (314159, "CANCEL")
    assert cancel.headers.get_all("route") == INVITE.headers.get_all("route")
    assert cancel.headers.get("require") is None
    with pytest.raises(ValueError):
        build_cancel(OPTIONS)


# ---------------------------------------------------------------------------
# Timers and memory


def test_next_deadline_is_the_earliest_and_one_call_fires_all_due() -> None:
    layer = TransactionLayer()
    a = our_request("OPTIONS", "z9hG4bKt1")
    b = our_request("OPTIONS", "z9hG4bKt2")
    layer.send_request(a, PEER, 0.0, reliable=False)
    layer.send_request(b, PEER, 0.2, reliable=False)
    assert layer.next_deadline() == 0.5
    out = layer.handle_timer(0.7)
    assert sent(out) == [a, b]  # both Timer E retransmissions, earliest first
    assert layer.next_deadline() == pytest.approx(1.7)
    # A final response disarms E and F: the stale heap entries never fire.
    layer.receive(incoming(reply(a, 200)), 0.8)
    layer.receive(incoming(reply(b, 200)), 0.8)
    assert layer.next_deadline() == pytest.approx(5.8)
    assert layer.handle_timer(5.8) == [
        TransactionTerminated(key=client_key(a)),
        TransactionTerminated(key=client_key(b)),
    ]
    assert layer_is_empty(layer)


def test_ten_thousand_transactions_leave_nothing_behind() -> None:
    layer = TransactionLayer()
    now = 0.0
    for i in range(10_000):
        server_req = with_branch(OPTIONS, f"z9hG4bKs{i}")
        layer.receive(incoming(server_req), now)
        layer.respond(server_key(server_req), reply(server_req, 200), now)
        client_req = our_request("INVITE" if i % 2 else "OPTIONS", f"z9hG4bKc{i}")
        layer.send_request(client_req, PEER, now, reliable=False)
        layer.receive(incoming(reply(client_req, 486 if i % 2 else 200)), now + 0.1)
        now += 0.001
    assert len(layer) == 20_000
    assert len(layer._heap) <= 2 * 20_000 + 64
    out = layer.handle_timer(now + 40.0)
    assert sum(isinstance(o, TransactionTerminated) for o in out) == 20_000
    assert layer_is_empty(layer) and not layer._scheduled


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["new", "copy", "answer", "ack", "timer", "error", "cancel"]),
            st.integers(min_value=0, max_value=4),
            st.sampled_from([100, 180, 200, 486]),
            st.sampled_from([0.0, 0.1, 0.5, 2.0, 10.0]),
        ),
        max_size=60,
    )
)
def test_random_traffic_never_breaks_the_layer(
    steps: list[tuple[str, int, int, float]],
) -> None:
    layer = TransactionLayer()
    invites = [with_branch(INVITE, f"z9hG4bKr{i}") for i in range(5)]
    now = 0.0
    for action, i, status, dt in steps:
        now += dt
        invite = invites[i]
        key = server_key(invite)
        if action in ("new", "copy"):
            layer.receive(incoming(invite), now)
        elif action == "answer":
            layer.respond(key, reply(invite, status), now)
        elif action == "ack":
            ack = dataclasses.replace(
                invite, method="ACK", headers=invite.headers.with_set("CSeq", "314159 ACK")
            )
            layer.receive(incoming(ack), now)
        elif action == "timer":
            layer.handle_timer(now)
        elif action == "error":
            layer.transport_error(key, now)
        else:
            layer.receive(incoming(build_cancel(invite)), now)
        deadline = layer.next_deadline()
        assert (deadline is None) == (len(layer._scheduled) == 0)
        assert len(layer) <= 10
    # Answer everything; time then empties the layer.
    for invite in invites:
        layer.respond(server_key(invite), reply(invite, 486), now)
        layer.respond(server_key(build_cancel(invite)), reply(build_cancel(invite), 200), now)
    layer.handle_timer(now + 100.0)
    assert layer_is_empty(layer)
