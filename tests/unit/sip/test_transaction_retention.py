"""What a finished transaction keeps (issue 12): the bytes it may have to send again, not the
parsed request and response, and a retransmission still answered byte for byte the same."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.transaction import SendMessage, ServerKey, Timer
from pbx.sip.transaction_layer import Incoming, TransactionLayer, server_key
from pbx.sip.transaction_server import ServerNonInviteTransaction
from pbx.sip.transaction_wire import message_from_wire
from tests.unit.sip.transaction_machines import (
    ACK_FOR_486,
    DATA,
    DEST,
    INVITE,
    OPTIONS,
    S,
    client_invite,
    client_options,
    reply,
    server_invite,
    server_options,
    wire,
)


def only_send(out: list[object]) -> SendMessage:
    (send,) = out
    assert isinstance(send, SendMessage)
    return send


def test_completed_invite_answers_copies_with_the_same_bytes_and_lets_the_request_go() -> None:
    s = server_invite()
    s.start(0.0)
    busy = make_response(INVITE, 486, to_tag="b1")
    busy = Response(
        status=486, reason="Busy Here", headers=busy.headers.with_added("Retry-After", "60")
    )
    first = only_send(s.respond(busy, 0.1))
    assert first.message is busy and first.data == bytes(busy)
    assert s.state is S.COMPLETED and not s.holds_request
    with pytest.raises(LookupError, match="final response"):
        _ = s.request
    # A retransmitted INVITE and Timer G both send exactly what went out first.
    again = only_send(s.receive(INVITE, 0.3))
    assert again.data == bytes(busy) == bytes(again.message)
    assert again.destination == DEST and again.key == s.key
    assert isinstance(again.message, Response) and again.message.top_via == INVITE.top_via
    assert wire(s.handle_timer(0.6)) == [bytes(busy)]
    assert s.timer_deadline(Timer.G) == pytest.approx(1.6)


def test_confirmed_invite_absorbs_copies_and_keeps_no_response() -> None:
    s = server_invite()
    s.start(0.0)
    s.respond(reply(INVITE, 486), 0.1)
    assert s.receive(ACK_FOR_486, 0.2) == []
    assert s.state is S.CONFIRMED
    assert s.last_final is None and s.last_provisional is None  # nothing left to resend
    assert s.receive(INVITE, 0.3) == [] and s.receive(ACK_FOR_486, 0.4) == []
    assert s.responded and s.response_to_tag == "b1"


def test_accepted_invite_keeps_neither_the_request_nor_the_2xx() -> None:
    s = server_invite()
    s.start(0.0)
    ok = reply(INVITE, 200)
    assert wire(s.respond(ok, 0.1)) == [bytes(ok)]
    assert s.state is S.ACCEPTED and not s.holds_request
    assert s.last_response is None  # RFC 6026: the TU resends its 2xx, not the transaction
    assert s.receive(INVITE, 0.3) == []


def test_completed_non_invite_answers_copies_with_the_same_bytes() -> None:
    s = server_options()
    s.start(0.0)
    ok = Response(status=200, reason="OK", headers=reply(OPTIONS, 200).headers, body=b"v=0\r\n")
    s.respond(ok, 0.1)
    assert s.state is S.COMPLETED and not s.holds_request
    for when in (0.5, 4.0, 31.0):
        again = only_send(s.receive(OPTIONS, when))
        assert again.data == bytes(ok) == bytes(again.message)
    last = s.last_final
    assert last is not None and last.status == 200 and last.body == b"v=0\r\n"


def test_provisional_is_resent_as_bytes_until_the_final() -> None:
    s = server_invite()
    s.start(0.0)
    ringing = reply(INVITE, 180)
    s.respond(ringing, 0.05)
    assert s.holds_request  # still needed: the TU may yet answer, a copy may need a 100
    assert wire(s.receive(INVITE, 0.5)) == [bytes(ringing)]
    s.respond(reply(INVITE, 486), 1.0)
    assert s.last_provisional is None


def test_client_transactions_let_the_request_go_with_the_final() -> None:
    invite = client_invite()
    invite.start(0.0)
    invite.receive(reply(INVITE, 180), 0.1)
    assert invite.holds_request  # a CANCEL is still built from it
    busy = reply(INVITE, 486)
    invite.receive(busy, 0.2)
    assert not invite.holds_request
    ack = invite.ack
    assert ack is not None and ack.method == "ACK" and ack.to.tag == "b1"
    assert only_send(invite.receive(busy, 0.5)).data == bytes(ack)
    accepted = client_invite()
    accepted.start(0.0)
    accepted.receive(reply(INVITE, 200), 0.1)
    assert accepted.state is S.ACCEPTED and not accepted.holds_request
    options = client_options()
    options.start(0.0)
    options.receive(reply(OPTIONS, 200), 0.1)
    assert options.state is S.COMPLETED and not options.holds_request


def _well_formed(path: Path) -> bool:
    try:
        parse_message(path.read_bytes())
    except SipParseError:
        return False  # a malformed sample: no transaction would keep it
    return True


WELL_FORMED = [path for path in sorted(DATA.glob("*.sip")) if _well_formed(path)]


def test_the_samples_cover_requests_and_responses() -> None:
    kinds = {type(parse_message(path.read_bytes())) for path in WELL_FORMED}
    assert kinds == {Request, Response} and len(WELL_FORMED) >= 20


@pytest.mark.parametrize("path", WELL_FORMED, ids=lambda p: p.stem)
def test_a_message_is_rebuilt_from_its_bytes_exactly(path: Path) -> None:
    message = parse_message(path.read_bytes())
    data = bytes(message)
    rebuilt = message_from_wire(data)
    assert bytes(rebuilt) == data
    assert type(rebuilt) is type(message)
    if isinstance(message, Request):
        assert isinstance(rebuilt, Request) and rebuilt.method == message.method
        assert str(rebuilt.uri) == str(message.uri)
    assert rebuilt.call_id == message.call_id and rebuilt.cseq == message.cseq


def _options(n: int) -> Request:
    text = bytes(OPTIONS).replace(b"z9hG4bKopt77", f"z9hG4bKretention{n:06d}".encode())
    request = parse_message(text)
    assert isinstance(request, Request)
    return request


def test_a_finished_transaction_costs_a_small_fraction_of_its_messages() -> None:
    """Measured, not guessed: 500 answered OPTIONS kept through Timer J by the layer hold
    well under what their parsed requests and responses take (about 8 KB a pair)."""
    layer = TransactionLayer()
    requests = [_options(n) for n in range(500)]
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for request in requests:
            layer.receive(Incoming(message=request, source=DEST, reliable=False), 0.0)
            layer.respond(server_key(request), make_response(request, 200, to_tag="t"), 0.0)
        del request
        requests.clear()  # only the layer holds anything of them now
        kept = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(layer) == 500
    transaction = layer.get(ServerKey("z9hG4bKretention000000", "192.0.2.40:5062", "OPTIONS"))
    assert isinstance(transaction, ServerNonInviteTransaction)
    assert transaction.state is S.COMPLETED
    assert kept / 500 < 2_000, f"{kept / 500:.0f} bytes per finished transaction"
