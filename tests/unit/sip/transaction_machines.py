"""The transaction fixtures shared by the tests of the four machines: the requests, one factory
per machine (UDP unless asked), and helpers to read outputs and run a fake clock."""

from __future__ import annotations

from pathlib import Path

from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.transaction import (
    ClientKey,
    Output,
    SendMessage,
    ServerKey,
    TimerSettings,
    Transaction,
    TransactionEvent,
    TransactionState,
)
from pbx.sip.transaction_client import (
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    build_ack_for_non_2xx,
)
from pbx.sip.transaction_server import ServerInviteTransaction, ServerNonInviteTransaction

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


def wire(out: list[Output]) -> list[bytes]:
    """The bytes each SendMessage puts on the wire; its ``data``, when set, is its message's."""
    sends = [o for o in out if isinstance(o, SendMessage)]
    for o in sends:
        assert o.data is None or o.data == bytes(o.message)
    return [o.data if o.data is not None else bytes(o.message) for o in sends]


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
