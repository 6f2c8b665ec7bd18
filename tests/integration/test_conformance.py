"""Conformance rules of issue 11 against the real switch, with small phones over loopback UDP.

Each test names the rule it holds the switch to: a Request-Line with SP before its CRLF is
answered 400 (RFC 4475 §3.1.2.10), a retransmitted MESSAGE gets the callee's answer again from
its server transaction (RFC 3261 §17.2.2), and the answer to an offer a re-INVITE without SDP
drew from the other phone reaches that phone in the switch's ACK (RFC 3264 §4, RFC 3261
§13.2.1), through the relay; and a phone that does not allow UPDATE is not sent one (RFC 3311
§5.1).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.media.rtp import RtpPacket
from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.headers import Headers
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.sdp import SessionDescription
from tests.integration.test_call_signalling import (
    PASSWORDS,
    SDP,
    answer,
    checked_call,
    ended_by_the_check,
    final_response,
    request,
    send_authorized,
)
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


# ---------------------------------------------------------------------------
# RFC 3264 §4, RFC 3261 §13.2.1: a re-INVITE without SDP


def in_dialog(alice: SipPhone, ok: Response, method: str, seq: int, body: bytes = b"") -> bytes:
    """A request in Alice's dialog with the switch (its 200 ``ok`` set it up)."""
    contact = ok.headers.get("contact")
    assert contact is not None
    target = contact.strip("<>").split(">")[0]
    content = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"{method} {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {alice.host}:{alice.port};branch=z9hG4bK-re-{method}-{seq};rport\r\n"
        f"From: {ok.headers.get('from')}\r\nTo: {ok.headers.get('to')}\r\n"
        f"Call-ID: {ok.call_id}\r\nCSeq: {seq} {method}\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:201@{alice.host}:{alice.port}>\r\n"
        f"{content}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def media_sdp(port: int, version: int, payload_types: str = "8 0 101") -> bytes:
    return (
        f"v=0\r\no=- 7 {version} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {payload_types}\r\na=rtpmap:8 PCMA/8000\r\n"
        "a=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    ).encode()


def next_request(phone: SipPhone, method: str) -> Request:
    """The next request ``method`` the phone gets; responses on the way are skipped."""
    message = phone.receive(5)
    while not (isinstance(message, Request) and message.method == method):
        assert not isinstance(message, Request), message
        message = phone.receive(5)
    return message


def answered_call(alice: SipPhone, bob: SipPhone) -> tuple[Request, Response]:
    """Alice calls Bob, he answers, the switch and Alice ACK; the INVITE Bob got, Alice's 200."""
    send_authorized(alice, "INVITE", "202", SDP)
    invite = next_request(bob, "INVITE")
    answer(bob, invite)
    ok = final_response(alice)
    assert ok.status == 200, ok
    alice.sock.sendto(in_dialog(alice, ok, "ACK", ok.cseq.seq), alice.switch)
    assert not next_request(bob, "ACK").body
    return invite, ok


def reinvite_without_sdp(
    alice: SipPhone, bob: SipPhone, ok: Response, offer_b: bytes
) -> tuple[Response, Response]:
    """Alice's re-INVITE without SDP crosses to Bob without SDP; Bob's 200 offers ``offer_b``
    (sent twice: his own retransmission before any ACK). Alice's 200 and Bob's 200."""
    seq = ok.cseq.seq + 1
    alice.sock.sendto(in_dialog(alice, ok, "INVITE", seq), alice.switch)
    crossed = next_request(bob, "INVITE")
    assert not crossed.body and crossed.content_type is None
    assert crossed.to.tag == "bob0"  # in Bob's dialog with the switch
    ok_b = make_response(
        crossed, 200, body=offer_b,
        headers=[("Contact", f"<sip:202@127.0.0.1:{bob.port}>"),
                 ("Content-Type", "application/sdp")],
    )  # fmt: skip
    bob.sock.sendto(bytes(ok_b), bob.switch)
    bob.sock.sendto(bytes(ok_b), bob.switch)
    reok = final_response(alice)
    assert reok.status == 200 and reok.cseq.seq == seq, reok
    return reok, ok_b


def relay_port(sdp: SessionDescription) -> int:
    audio = sdp.media[0]
    connection = sdp.connection_of(audio)
    assert connection is not None and connection.address == "127.0.0.1"
    assert RTP_PORTS[0] <= audio.port <= RTP_PORTS[1], audio.port
    return audio.port


def test_the_answer_to_a_reoffer_reaches_the_callee_in_the_ack(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    alice_media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bob_media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for media in (alice_media, bob_media):
            media.bind(("127.0.0.1", 0))
            media.settimeout(5)
        assert bob.register().status == 200
        invite, ok = answered_call(alice, bob)
        leg_a = relay_port(SessionDescription.parse(ok.body))
        leg_b = relay_port(SessionDescription.parse(invite.body))
        reok, ok_b = reinvite_without_sdp(alice, bob, ok, media_sdp(bob_media.getsockname()[1], 2))
        # Bob's offer, rewritten to the relay's leg a, in Alice's 200.
        offer_a = SessionDescription.parse(reok.body)
        assert relay_port(offer_a) == leg_a
        codecs = [c.encoding_name for c in offer_a.media[0].codecs]
        assert codecs == ["PCMA", "PCMU", "telephone-event"]
        assert "switchboard" in reok.body.decode()  # our o= line, not Bob's
        answer_a = media_sdp(alice_media.getsockname()[1], 2, "8")
        alice.sock.sendto(in_dialog(alice, reok, "ACK", reok.cseq.seq, answer_a), alice.switch)
        # The switch's ACK to Bob is the first thing after his 200s, and carries the answer
        # rewritten to the relay's leg b.
        ack = next_request(bob, "ACK")
        assert ack.content_type == "application/sdp"
        answer_b = SessionDescription.parse(ack.body)
        assert relay_port(answer_b) == leg_b
        assert [c.encoding_name for c in answer_b.media[0].codecs][0] == "PCMA"
        assert ack.cseq.seq == ok_b.cseq.seq  # the ACK of the INVITE Bob answered
        # Media both ways through the relay, to where Bob's offer and Alice's answer said.
        to_bob = bytes(RtpPacket(payload_type=8, sequence_number=1, timestamp=160, ssrc=7,
                                 payload=b"\xd5" * 160))  # fmt: skip
        alice_media.sendto(to_bob, ("127.0.0.1", leg_a))
        heard = bob_media.recv(2048)
        assert heard[12:] == b"\xd5" * 160 and heard[1] & 0x7F == 8
        back = bytes(RtpPacket(payload_type=8, sequence_number=1, timestamp=160, ssrc=9,
                               payload=b"\x55" * 160))  # fmt: skip
        bob_media.sendto(back, ("127.0.0.1", leg_b))
        got = alice_media.recv(2048)
        assert got[12:] == b"\x55" * 160 and got[1] & 0x7F == 8
        # Bob's 200 again (as if that ACK was lost): the same ACK again (§13.2.2.4).
        bob.sock.sendto(bytes(ok_b), bob.switch)
        assert bytes(next_request(bob, "ACK")) == bytes(ack)
    finally:
        alice_media.close()
        bob_media.close()
        alice.close()
        bob.close()


def test_an_ack_without_the_answer_to_a_reoffer_ends_the_call(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        _, ok = answered_call(alice, bob)
        reok, _ = reinvite_without_sdp(alice, bob, ok, media_sdp(bob.port, 2))
        alice.sock.sendto(in_dialog(alice, reok, "ACK", reok.cseq.seq), alice.switch)
        # Bob's offer cannot be answered: he gets his ACK, then both legs a BYE (§13.2.2.4).
        assert not next_request(bob, "ACK").body
        for phone in (alice, bob):
            bye = next_request(phone, "BYE")
            phone.sock.sendto(bytes(make_response(bye, 200)), phone.switch)
    finally:
        alice.close()
        bob.close()


def test_a_copy_of_the_200_to_a_crossed_reinvite_with_sdp_gets_the_ack_again(
    switch: SwitchProcess,
) -> None:
    """§13.2.2.4 for the ordinary case (the offer in the re-INVITE): the switch ACKs Bob's 200
    at once, without SDP, and a copy of that 200 (the ACK was lost) gets the same ACK."""
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        _, ok = answered_call(alice, bob)
        seq = ok.cseq.seq + 1
        alice.sock.sendto(in_dialog(alice, ok, "INVITE", seq, media_sdp(4002, 2)), alice.switch)
        crossed = next_request(bob, "INVITE")
        assert crossed.body.startswith(b"v=0")
        answer(bob, crossed, body=media_sdp(bob.port, 2))
        ack = next_request(bob, "ACK")
        assert not ack.body and ack.cseq.seq == crossed.cseq.seq
        reok = final_response(alice)
        assert reok.status == 200 and reok.body.startswith(b"v=0")
        alice.sock.sendto(in_dialog(alice, reok, "ACK", seq), alice.switch)
        answer(bob, crossed, body=media_sdp(bob.port, 2))  # the same 200 again
        assert bytes(next_request(bob, "ACK")) == bytes(ack)
    finally:
        alice.close()
        bob.close()


# ---------------------------------------------------------------------------
# RFC 3311 §5.1: no UPDATE to a phone whose Allow does not list it


def test_the_session_check_asks_a_phone_without_update_with_options(tmp_path: Path) -> None:
    """twinkle lists no UPDATE in Allow and answers one 501: the switch's check that a leg is
    still there is an in-dialog OPTIONS for such a phone, whose 481 ends the call."""
    allow = "INVITE, ACK, CANCEL, BYE, OPTIONS"
    ports = "{}-{}".format(*RTP_PORTS)
    with checked_call(tmp_path, ports, bob_allows=allow) as (alice, bob, offer):
        bob.sock.settimeout(5)
        while True:  # raw: SipPhone would answer the OPTIONS itself
            check = parse_message(bob.sock.recvfrom(65535)[0])
            if isinstance(check, Request) and check.method != "ACK":
                break
        assert check.method == "OPTIONS" and check.to.tag == "bob", check
        assert check.call_id == offer.call_id  # inside Bob's dialog, not a qualify probe
        bob.sock.sendto(bytes(make_response(check, 481)), bob.switch)
        ended_by_the_check(alice, tmp_path / "switchboard.db")
