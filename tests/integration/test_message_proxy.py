"""The MESSAGE proxy against the real switch: small phones on loopback UDP, and a lossy hop.

Alice reaches the switch through a UDP hop that loses the first 200 on its way back to her, so
her MESSAGE is retransmitted as Timer E says (RFC 3261 §17.1.2.2) with nothing to answer it
yet; the switch's server transaction must answer the copy with the callee's 200 it keeps
(§17.2.2), not forward it again (a new request to the callee) nor refuse it (a 400). A MESSAGE
inside a call's dialog still crosses the call to the other phone.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request, Response, make_response, parse_message
from tests.integration.test_call_signalling import PASSWORDS, _answered_call, request
from tests.support.cli import pbx
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess

Address = tuple[str, int]
T1, T2 = 0.5, 4.0


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[SwitchProcess]:
    db = tmp_path / "switchboard.db"
    for user, secret in PASSWORDS.items():
        assert pbx(db, "ext", "add", user, "--password", secret).returncode == 0
    with SwitchProcess(tmp_path, "--rtp-ports", "42000-42199") as process:
        yield process


class LossyHop:
    """A UDP hop between one phone and the switch (a Wi-Fi link, say) that loses the first
    datagram from the switch that ``lose`` picks; everything else passes both ways."""

    def __init__(self, switch: Address, lose: Callable[[bytes], bool]) -> None:
        self.switch = switch
        self._lose = lose
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address: Address = self.sock.getsockname()
        self.lost: list[bytes] = []
        self.lost_one = threading.Event()
        self._phone: Address | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._relay, name="lossy-hop", daemon=True)
        self._thread.start()

    def _relay(self) -> None:
        while True:
            ready, _, _ = select.select([self.sock, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            data, source = self.sock.recvfrom(65535)
            if source != self.switch:
                self._phone = source
                self.sock.sendto(data, self.switch)
            elif not self.lost and self._lose(data):
                self.lost.append(data)
                self.lost_one.set()
            elif self._phone is not None:
                self.sock.sendto(data, self._phone)

    def close(self) -> None:
        self._wake_w.send(b"x")
        self._thread.join(5)
        for sock in (self.sock, self._wake_r, self._wake_w):
            sock.close()


def is_200_to_message(data: bytes) -> bool:
    try:
        message = parse_message(data)
    except SipParseError:
        return False
    if not isinstance(message, Response):
        return False
    return message.status == 200 and message.cseq.method == "MESSAGE"


def authorized_via(hop: LossyHop, alice: SipPhone, to: str, body: bytes) -> bytes:
    """Through the hop: take the 407 for a first try; the request with credentials."""
    alice.sock.sendto(request(alice, "MESSAGE", to, body=body), hop.address)
    challenge = alice.receive(5)
    assert isinstance(challenge, Response) and challenge.status == 407, challenge
    chosen = choose_challenge(challenge.headers.get_all("proxy-authenticate"))
    assert chosen is not None
    host, port = alice.switch
    credentials = answer_challenge(
        chosen, username=alice.number, password=alice.password, method="MESSAGE",
        uri=f"sip:{to}@{host}:{port}", cnonce="c0ffee",
    )  # fmt: skip
    auth = f"Proxy-Authorization: {credentials.to_header_value()}\r\n"
    return request(alice, "MESSAGE", to, extra=auth, body=body)


def send_per_timer_e(
    alice: SipPhone, hop: LossyHop, data: bytes, sent_at: float
) -> tuple[Response, int]:
    """Alice's client transaction after sending ``data`` at ``sent_at``: resend it at T1, 2T1,
    4T1... (capped at T2) until a final response; that response and the copies sent."""
    interval, copies = T1, 1
    due = sent_at + interval
    give_up = sent_at + 64 * T1  # Timer F
    while time.monotonic() < give_up:
        try:
            alice.sock.settimeout(max(0.0, due - time.monotonic()) or 1e-3)
            message = parse_message(alice.sock.recvfrom(65535)[0])
        except TimeoutError:
            alice.sock.sendto(data, hop.address)
            copies += 1
            interval = min(2 * interval, T2)
            due = time.monotonic() + interval
            continue
        if isinstance(message, Response) and message.status >= 200:
            return message, copies
    raise AssertionError("Timer F: no final response")


def next_new_request(bob: SipPhone, first: Request) -> Request:
    """The next request ``bob`` gets that is not the switch resending ``first`` (its own
    client transaction, same branch, until his answer arrived)."""
    while True:
        message = bob.receive(5)
        assert isinstance(message, Request), message
        if message.top_via.branch != first.top_via.branch:
            return message


def test_a_lost_200_to_a_forked_message_is_resent_from_the_server_transaction(
    switch: SwitchProcess,
) -> None:
    target = ("127.0.0.1", switch.port)
    alice = SipPhone("201", PASSWORDS["201"], target)
    desk = SipPhone("202", PASSWORDS["202"], target)
    mobile = SipPhone("202", PASSWORDS["202"], target)
    hop = LossyHop(target, is_200_to_message)
    try:
        assert desk.register().status == 200
        registered = mobile.register()
        assert registered.status == 200 and len(registered.headers.values("contact")) == 2
        message = authorized_via(hop, alice, "202", b"lunch?")
        alice.sock.sendto(message, hop.address)
        sent_at = time.monotonic()
        # Forked to both phones of 202; the mobile is busy, the desk phone takes it.
        to_desk, to_mobile = desk.receive(5), mobile.receive(5)
        assert isinstance(to_desk, Request) and to_desk.method == "MESSAGE", to_desk
        assert isinstance(to_mobile, Request) and to_mobile.body == b"lunch?", to_mobile
        assert to_desk.top_via.branch != to_mobile.top_via.branch
        mobile.sock.sendto(bytes(make_response(to_mobile, 486, to_tag="mobile")), target)
        desk.sock.sendto(bytes(make_response(to_desk, 200, to_tag="desk")), target)
        assert hop.lost_one.wait(5), "the switch sent no 200 for the hop to lose"
        # Alice heard nothing: her Timer E resends the very same MESSAGE.
        final, copies = send_per_timer_e(alice, hop, message, sent_at)
        assert copies >= 2
        assert (final.status, final.to.tag) == (200, "desk"), final
        assert bytes(final) == hop.lost[0]  # the callee's 200 again, byte for byte
        assert [v.branch for v in final.vias] == [parse_message(message).top_via.branch]
        # Neither phone got the copy as a new MESSAGE: the next new request each gets is
        # Alice's next message (the switch sends in the order it received, on one socket).
        alice.sock.sendto(authorized_via(hop, alice, "202", b"and coffee?"), hop.address)
        for phone, first in ((desk, to_desk), (mobile, to_mobile)):
            following = next_new_request(phone, first)
            assert following.method == "MESSAGE" and following.body == b"and coffee?", following
    finally:
        hop.close()
        for phone in (alice, desk, mobile):
            phone.close()


def test_a_message_inside_a_call_crosses_to_the_other_phone(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        invite, _, _ = _answered_call(switch, alice, [bob])
        ack = bob.receive(5)
        assert isinstance(ack, Request) and ack.method == "ACK"
        host, port = bob.switch
        chat = (
            f"MESSAGE sip:switchboard@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{bob.port};branch=z9hG4bK-chat1;rport\r\n"
            f"From: {invite.headers.get('to')};tag=bob0\r\nTo: {invite.headers.get('from')}\r\n"
            f"Call-ID: {invite.call_id}\r\nCSeq: 11 MESSAGE\r\nMax-Forwards: 70\r\n"
            "Content-Type: text/plain\r\nContent-Length: 8\r\n\r\nhold on!"
        ).encode()
        bob.sock.sendto(chat, (host, port))
        crossed = alice.receive(5)
        while not (isinstance(crossed, Request) and crossed.method == "MESSAGE"):
            crossed = alice.receive(5)  # 200 retransmissions until our ACK: ignore them
        assert crossed.body == b"hold on!"
        assert crossed.call_id == "sig-INVITE-201@test"  # in Alice's dialog: the call's, not
        assert crossed.to.tag is not None  # the proxy's (which would have refused it 481)
        alice.sock.sendto(bytes(make_response(crossed, 200)), (host, port))
        reply = bob.receive(5)
        assert isinstance(reply, Response) and (reply.status, reply.cseq.method) == (200, "MESSAGE")
    finally:
        alice.close()
        bob.close()
