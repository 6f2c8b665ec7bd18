"""Call signalling rules against the real switch, with small phones over loopback UDP."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.media.rtp import RtpPacket
from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.message import Request, Response, make_response
from pbx.sip.sdp import SessionDescription
from tests.support.cli import pbx
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess

PASSWORDS = {"201": "signalling-pass-201", "202": "signalling-pass-202"}
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[SwitchProcess]:
    db = tmp_path / "switchboard.db"
    for user, secret in PASSWORDS.items():
        assert pbx(db, "ext", "add", user, "--password", secret).returncode == 0
    with SwitchProcess(tmp_path, "--rtp-ports", "34000-34099") as process:
        yield process


def request(phone: SipPhone, method: str, to: str, *, extra: str = "", body: bytes = b"") -> bytes:
    host, port = phone.switch
    phone.cseq += 1
    kind = "application/sdp" if body.startswith(b"v=0") else "text/plain"
    content = f"Content-Type: {kind}\r\n" if body else ""
    return (
        f"{method} sip:{to}@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {phone.host}:{phone.port};"
        f"branch=z9hG4bK-sig-{phone.cseq}-{method};rport\r\n"
        f"{extra}"
        f"From: <sip:{phone.number}@{host}>;tag=sig{phone.number}\r\n"
        f"To: <sip:{to}@{host}>\r\n"
        f"Call-ID: sig-{method}-{phone.number}@test\r\n"
        f"CSeq: {phone.cseq} {method}\r\n"
        f"Contact: <sip:{phone.number}@{phone.host}:{phone.port}>\r\n"
        f"{content}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def send_authorized(
    phone: SipPhone, method: str, to: str, body: bytes = b"", *, extra: str = ""
) -> None:
    """Send, take the 407, and send again with credentials (the answer is the caller's)."""
    host, port = phone.switch
    phone.sock.sendto(request(phone, method, to, extra=extra, body=body), (host, port))
    challenge = phone.receive(5)
    assert isinstance(challenge, Response) and challenge.status == 407, challenge
    chosen = choose_challenge(challenge.headers.get_all("proxy-authenticate"))
    assert chosen is not None
    credentials = answer_challenge(
        chosen, username=phone.number, password=phone.password, method=method,
        uri=f"sip:{to}@{host}:{port}", cnonce="c0ffee",
    )  # fmt: skip
    auth = f"Proxy-Authorization: {credentials.to_header_value()}\r\n"
    phone.sock.sendto(request(phone, method, to, extra=extra + auth, body=body), (host, port))


def authorized(
    phone: SipPhone, method: str, to: str, *, extra: str = "", body: bytes = b""
) -> Response:
    """Send, answer the 407 with our credentials, and return the final response."""
    challenge = phone.exchange(request(phone, method, to, extra=extra, body=body))
    assert challenge.status == 407, challenge
    chosen = choose_challenge(challenge.headers.get_all("proxy-authenticate"))
    assert chosen is not None
    host, port = phone.switch
    credentials = answer_challenge(
        chosen, username=phone.number, password=phone.password, method=method,
        uri=f"sip:{to}@{host}:{port}", cnonce="c0ffee",
    )  # fmt: skip
    auth = f"Proxy-Authorization: {credentials.to_header_value()}\r\n"
    return phone.exchange(request(phone, method, to, extra=extra + auth, body=body))


def answer(
    bob: SipPhone,
    invite: Request,
    status: int = 200,
    *,
    body: bytes = SDP,
    tag: str = "bob0",
    allow: str | None = None,
) -> None:
    """Bob answers ``invite`` (a 2xx or a 183) with SDP and his Contact (and ``allow``)."""
    response = make_response(
        invite, status, to_tag=tag, body=body,
        headers=[("Contact", f"<sip:202@127.0.0.1:{bob.port}>"),
                 ("Content-Type", "application/sdp"),
                 *([("Allow", allow)] if allow else [])],
    )  # fmt: skip
    bob.sock.sendto(bytes(response), bob.switch)


def final_response(alice: SipPhone) -> Response:
    """The next final response Alice gets (provisionals before it are skipped)."""
    answered = alice.receive(5)
    while isinstance(answered, Response) and answered.status < 200:
        answered = alice.receive(5)
    assert isinstance(answered, Response), answered
    return answered


def test_message_is_proxied_to_the_callee(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        host, port = alice.switch
        send_authorized(alice, "MESSAGE", "202", b"lunch?")
        delivered = bob.receive(5)
        assert isinstance(delivered, Request) and delivered.method == "MESSAGE"
        assert delivered.body == b"lunch?" and delivered.from_.uri.user == "201"  # type: ignore[union-attr]
        assert "proxy-authorization" not in delivered.headers  # consumed by the switch
        assert len(delivered.vias) == 2  # a proxy adds its Via (RFC 3261 §16.6 step 8)
        bob.sock.sendto(bytes(make_response(delivered, 200, to_tag="bob")), (host, port))
        final = alice.receive(5)
        assert isinstance(final, Response) and final.status == 200
        assert len(final.vias) == 1  # our Via was taken off on the way back
    finally:
        alice.close()
        bob.close()


def test_max_forwards_zero_gets_483(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    try:
        response = alice.exchange(request(alice, "INVITE", "202", extra="Max-Forwards: 0\r\n"))
        assert response.status == 483
    finally:
        alice.close()


def test_our_own_via_below_the_top_is_a_loop(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    try:
        loop = f"Via: SIP/2.0/UDP 127.0.0.1:{switch.port};branch=z9hG4bKlooped\r\n"
        response = alice.exchange(request(alice, "INVITE", "202", extra=loop))
        assert response.status == 482
    finally:
        alice.close()


def test_unregistered_and_unknown_callees(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    sdp = SDP
    try:
        assert authorized(alice, "INVITE", "202", body=sdp).status == 480
        assert authorized(alice, "INVITE", "299", body=sdp).status == 404
    finally:
        alice.close()


def test_status_lists_a_call_in_progress(switch: SwitchProcess, tmp_path: Path) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    sdp = SDP
    try:
        assert bob.register().status == 200
        host, port = alice.switch
        send_authorized(alice, "INVITE", "202", sdp)
        invite = bob.receive(5)
        assert isinstance(invite, Request) and invite.method == "INVITE"
        bob.sock.sendto(bytes(make_response(invite, 180, to_tag="bob")), (host, port))
        report = json.loads(pbx(tmp_path / "switchboard.db", "status", "--json").stdout)
        [call] = report["calls"]
        assert (call["caller"], call["callee"]) == ("201", "202")
        assert call["state"] in ("routing", "ringing")
    finally:
        alice.close()
        bob.close()


@contextlib.contextmanager
def checked_call(
    tmp_path: Path, rtp_ports: str, *, bob_allows: str
) -> Iterator[tuple[SipPhone, SipPhone, Request]]:
    """Alice's answered call to Bob (his 200 with ``Allow: bob_allows``) on a switch that
    checks its calls' legs every second (``session_refresh``, the setting under test)."""
    db = tmp_path / "switchboard.db"
    for user, secret in PASSWORDS.items():
        assert pbx(db, "ext", "add", user, "--password", secret).returncode == 0
    env = {"SWITCHBOARD_SESSION_REFRESH": "1"}
    with SwitchProcess(tmp_path, "--rtp-ports", rtp_ports, env=env) as process:
        alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", process.port))
        bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", process.port))
        try:
            assert bob.register().status == 200
            send_authorized(alice, "INVITE", "202", SDP)
            offer = bob.receive(5)
            assert isinstance(offer, Request) and offer.method == "INVITE"
            answer(bob, offer, tag="bob", allow=bob_allows)
            assert final_response(alice).status == 200
            yield alice, bob, offer
        finally:
            alice.close()
            bob.close()


def ended_by_the_check(alice: SipPhone, db: Path) -> None:
    """Alice gets the BYE of a call whose check failed (her own checks answered meanwhile)."""
    bye = alice.receive(5)
    while not (isinstance(bye, Request) and bye.method == "BYE"):
        if isinstance(bye, Request) and bye.method == "UPDATE":
            alice.sock.sendto(bytes(make_response(bye, 200)), alice.switch)
        bye = alice.receive(5)
    alice.sock.sendto(bytes(make_response(bye, 200)), alice.switch)
    reasons = json.loads(pbx(db, "calls", "--json").stdout)
    assert reasons[0]["end_reason"] == "session refresh failed"


def test_a_leg_that_forgot_the_call_ends_it_at_the_session_refresh(tmp_path: Path) -> None:
    """RFC 4028 in spirit: the switch asks both legs; a 481 means the phone lost the call."""
    allow = "INVITE, ACK, CANCEL, BYE, UPDATE, OPTIONS"
    with checked_call(tmp_path, "34100-34199", bob_allows=allow) as (alice, bob, _):
        # Bob now says he knows no such call: the refresh UPDATE gets 481.
        update = bob.receive(5)
        while isinstance(update, Request) and update.method == "ACK":
            update = bob.receive(5)
        assert isinstance(update, Request) and update.method == "UPDATE"
        bob.sock.sendto(bytes(make_response(update, 481)), bob.switch)
        ended_by_the_check(alice, tmp_path / "switchboard.db")


def _answered_call(
    process: SwitchProcess, alice: SipPhone, bobs: list[SipPhone]
) -> tuple[Request, SipPhone, list[Request]]:
    """Alice calls 202, every Bob phone gets the INVITE, the first answers; returns the
    INVITE the answering phone got, that phone, and the INVITEs the others got."""
    host, port = alice.switch
    send_authorized(alice, "INVITE", "202", SDP)
    invites = []
    for n, bob in enumerate(bobs):
        invite = bob.receive(5)
        assert isinstance(invite, Request) and invite.method == "INVITE"
        invites.append(invite)
        ringing = make_response(invite, 180, to_tag=f"bob{n}")
        bob.sock.sendto(bytes(ringing), (host, port))  # ringing: a CANCEL may follow (§9.1)
    winner = bobs[0]
    answer(winner, invites[0])
    assert final_response(alice).status == 200
    return invites[0], winner, invites[1:]


def test_parallel_ringing_cancels_the_phones_that_did_not_answer(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    desk = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    mobile = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert desk.register().status == 200
        ok = mobile.register()
        assert ok.status == 200 and len(ok.headers.values("contact")) == 2
        _, _, [ringing] = _answered_call(switch, alice, [desk, mobile])
        cancel = mobile.receive(5)
        while isinstance(cancel, Request) and cancel.method == "INVITE":
            cancel = mobile.receive(5)  # a retransmission that crossed our 180
        assert isinstance(cancel, Request) and cancel.method == "CANCEL"
        assert cancel.top_via.branch == ringing.top_via.branch  # §9.1: same branch
        mobile.sock.sendto(bytes(make_response(cancel, 200)), mobile.switch)
        mobile.sock.sendto(bytes(make_response(ringing, 487, to_tag="bob1")), mobile.switch)
        ack = mobile.receive(5)
        assert isinstance(ack, Request) and ack.method == "ACK"  # for the 487 (§17.1.1.3)
    finally:
        alice.close()
        desk.close()
        mobile.close()


def test_info_and_update_cross_to_the_other_leg(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        invite, _, _ = _answered_call(switch, alice, [bob])
        ack = bob.receive(5)
        assert isinstance(ack, Request) and ack.method == "ACK"
        # Bob sends INFO (a DTMF relay, RFC 6086) in his dialog with the switch.
        host, port = bob.switch
        info = (
            f"INFO sip:switchboard@{host}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{bob.port};branch=z9hG4bK-info1;rport\r\n"
            f"From: {invite.headers.get('to')};tag=bob0\r\nTo: {invite.headers.get('from')}\r\n"
            f"Call-ID: {invite.call_id}\r\nCSeq: 10 INFO\r\nMax-Forwards: 70\r\n"
            "Content-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\n"
            "Signal=5\r\nDuration=160\r\n"
        ).encode()
        bob.sock.sendto(info, (host, port))
        crossed = alice.receive(5)
        while not (isinstance(crossed, Request) and crossed.method == "INFO"):
            crossed = alice.receive(5)  # 200 retransmissions until our ACK: ignore them
        assert crossed.body == b"Signal=5\r\nDuration=160\r\n"
        assert crossed.call_id == "sig-INVITE-201@test"  # Alice's own dialog
        alice.sock.sendto(bytes(make_response(crossed, 200)), (host, port))
        reply = bob.receive(5)
        assert isinstance(reply, Response) and reply.status == 200
        assert reply.cseq.method == "INFO"
    finally:
        alice.close()
        bob.close()


def _late_offer_call(
    alice: SipPhone, bob: SipPhone
) -> tuple[Request, Response, SessionDescription]:
    """Alice sends an INVITE without SDP; Bob answers the switch's offer with PCMA on his own
    socket's port. Returns the INVITE Bob got, Alice's 200 and the offer it carries."""
    send_authorized(alice, "INVITE", "202")
    invite = bob.receive(5)
    assert isinstance(invite, Request) and invite.method == "INVITE"
    offer_b = SessionDescription.parse(invite.body)  # the switch's own offer: both laws, DTMF
    assert [c.encoding_name for c in offer_b.media[0].codecs] == ["PCMU", "PCMA", "telephone-event"]
    answer_b = (
        f"v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {bob.port} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
        f"a=rtpmap:101 telephone-event/8000\r\n"
    ).encode()
    answer(bob, invite, body=answer_b)
    answered = alice.receive(5)
    while isinstance(answered, Response) and answered.status < 200:
        assert not answered.body  # no offer in an unreliable provisional
        answered = alice.receive(5)
    assert isinstance(answered, Response) and answered.status == 200
    offer_a = SessionDescription.parse(answered.body)
    return invite, answered, offer_a


def _ack(alice: SipPhone, ok: Response, body: bytes = b"") -> bytes:
    contact = ok.headers.get("contact")
    assert contact is not None
    target = contact.strip("<>").split(">")[0]
    content = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"ACK {target} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {alice.host}:{alice.port};branch=z9hG4bK-late-ack;rport\r\n"
        f"From: {ok.headers.get('from')}\r\nTo: {ok.headers.get('to')}\r\n"
        f"Call-ID: {ok.call_id}\r\nCSeq: {ok.cseq.seq} ACK\r\nMax-Forwards: 70\r\n"
        f"{content}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_a_late_offer_gets_the_switchs_offer_in_the_200_and_answers_in_the_ack(
    switch: SwitchProcess,
) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    alice_media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    alice_media.bind(("127.0.0.1", 0))
    alice_media.settimeout(5)
    try:
        assert bob.register().status == 200
        invite, ok, offer_a = _late_offer_call(alice, bob)
        audio = offer_a.media[0]
        # The callee's law first, the other one (transcoded) after it, and DTMF events.
        assert [c.encoding_name for c in audio.codecs] == ["PCMA", "PCMU", "telephone-event"]
        connection = offer_a.connection_of(audio)
        assert connection is not None and connection.address == "127.0.0.1"
        assert 34000 <= audio.port <= 34099  # the relay's leg a
        answer_a = (
            f"v=0\r\no=- 3 3 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {alice_media.getsockname()[1]} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n"
        ).encode()
        alice.sock.sendto(_ack(alice, ok, answer_a), alice.switch)
        ack = bob.receive(5)
        assert isinstance(ack, Request) and ack.method == "ACK"
        # Media both ways through the relay, to the addresses the two answers named.
        to_bob = bytes(RtpPacket(payload_type=8, sequence_number=1, timestamp=160, ssrc=7,
                                 payload=b"\xd5" * 160))  # fmt: skip
        alice_media.sendto(to_bob, ("127.0.0.1", audio.port))
        heard = bob.sock.recv(2048)
        assert heard[12:] == b"\xd5" * 160 and heard[1] & 0x7F == 8
        assert not ack.body  # Bob's offer/answer ended with his 200
        # Bob sends to the relay's leg b (the switch's offer named it); it goes on to the
        # address Alice's answer in the ACK named.
        leg_b = SessionDescription.parse(invite.body).media[0].port
        back = bytes(RtpPacket(payload_type=8, sequence_number=1, timestamp=160, ssrc=9,
                               payload=b"\x55" * 160))  # fmt: skip
        bob.sock.sendto(back, ("127.0.0.1", leg_b))
        got = alice_media.recv(2048)
        assert got[12:] == b"\x55" * 160 and got[1] & 0x7F == 8
    finally:
        alice_media.close()
        alice.close()
        bob.close()


def test_an_ack_without_the_answer_to_a_late_offer_ends_the_call(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        _, ok, _ = _late_offer_call(alice, bob)
        alice.sock.sendto(_ack(alice, ok), alice.switch)  # no SDP: the session cannot start
        for phone in (alice, bob):
            bye = phone.receive(5)
            while not (isinstance(bye, Request) and bye.method == "BYE"):
                bye = phone.receive(5)  # Bob's ACK first
            phone.sock.sendto(bytes(make_response(bye, 200)), phone.switch)
    finally:
        alice.close()
        bob.close()


def test_session_timers_are_agreed_with_a_phone_that_asks_and_too_short_is_422(
    switch: SwitchProcess,
) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        # RFC 4028 §5: under the switch's minimum is 422 naming it; no phone rings.
        short = authorized(alice, "INVITE", "202", extra="Session-Expires: 60\r\n", body=SDP)
        assert short.status == 422 and short.headers.get("min-se") == "90"
        # Require: timer is understood (not 420), and the 200 says who refreshes.
        timers = "Supported: timer\r\nRequire: timer\r\nSession-Expires: 1800\r\n"
        send_authorized(alice, "INVITE", "202", SDP, extra=timers)
        invite = bob.receive(5)
        while not (isinstance(invite, Request) and invite.method == "INVITE"):
            invite = bob.receive(5)
        answer(bob, invite)
        answered = final_response(alice)
        assert answered.status == 200, answered
        assert answered.headers.get("session-expires") == "1800;refresher=uac"
        assert "timer" in answered.option_tags("require")
    finally:
        alice.close()
        bob.close()


def _prack(alice: SipPhone, ringing: Response, rack: str, n: int) -> Response:
    host, port = alice.switch
    prack = (
        f"PRACK sip:switchboard@{host}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {alice.host}:{alice.port};branch=z9hG4bK-prack{n};rport\r\n"
        f"From: {ringing.headers.get('from')}\r\nTo: {ringing.headers.get('to')}\r\n"
        f"Call-ID: {ringing.call_id}\r\nCSeq: {100 + n} PRACK\r\nRAck: {rack}\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    alice.sock.sendto(prack, (host, port))
    answer = alice.receive(5)
    while not (isinstance(answer, Response) and answer.cseq.method == "PRACK"):
        answer = alice.receive(5)  # a retransmitted 180 may come first
    return answer


def test_a_reliable_180_to_the_caller_is_resent_until_its_prack(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        send_authorized(alice, "INVITE", "202", SDP, extra="Require: 100rel\r\n")
        invite = bob.receive(5)
        assert isinstance(invite, Request) and invite.method == "INVITE"
        bob.sock.sendto(bytes(make_response(invite, 180, to_tag="bob0")), bob.switch)
        seen = []
        while len(seen) < 2:  # the 180, then its retransmission (RFC 3262 §3: T1 doubling)
            message = alice.receive(5)
            if isinstance(message, Response) and message.status == 180:
                seen.append(message)
        assert [m.headers.get("rseq") for m in seen] == ["1", "1"]
        assert "100rel" in seen[0].option_tags("require")
        cseq = seen[0].cseq.seq
        assert _prack(alice, seen[0], f"7 {cseq} INVITE", 1).status == 481  # §4: no such RSeq
        assert _prack(alice, seen[0], f"1 {cseq} INVITE", 2).status == 200
        # Acknowledged: no more 180s; the next thing Alice gets is the answer.
        answer(bob, invite)
        answered = alice.receive(5)
        assert isinstance(answered, Response) and answered.status == 200, answered
    finally:
        alice.close()
        bob.close()


def test_the_200_waits_for_the_prack_of_a_reliable_183_with_sdp(switch: SwitchProcess) -> None:
    alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
    bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
    try:
        assert bob.register().status == 200
        send_authorized(alice, "INVITE", "202", SDP, extra="Require: 100rel\r\n")
        invite = bob.receive(5)
        assert isinstance(invite, Request) and invite.method == "INVITE"
        answer(bob, invite, 183)
        first = alice.receive(5)
        while not (isinstance(first, Response) and first.status == 183):
            first = alice.receive(5)
        assert first.body.startswith(b"v=0") and first.headers.get("rseq") == "1"
        answer(bob, invite)  # Bob answers before Alice's PRACK
        # RFC 3262 §3: until the PRACK, Alice gets the 183 again but no 200.
        again = alice.receive(5)
        while not (isinstance(again, Response) and again.status == 183):
            assert not (isinstance(again, Response) and again.status == 200), "200 before PRACK"
            again = alice.receive(5)
        assert _prack(alice, first, f"1 {first.cseq.seq} INVITE", 1).status == 200
        answered = alice.receive(5)
        while isinstance(answered, Response) and answered.status == 183:
            answered = alice.receive(5)  # a retransmission already on its way
        assert isinstance(answered, Response) and answered.status == 200, answered
    finally:
        alice.close()
        bob.close()
