"""The whole switch (dispatcher, registrar, calls, MESSAGE proxy) fed mutated requests that carry
valid credentials, so the mutations reach past authentication into the services. Whatever
arrives, no handler may raise (the transport counts those as internal errors) and everything
the switch sends must parse. The switch is the real composition root on a real SQLite file;
only the UDP socket's send is captured instead of reaching the wire."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.app import Switch
from pbx.config import Settings
from pbx.sip.auth import NONCE_SALT_LENGTH, DigestAlgorithm, compute_ha1, compute_response
from pbx.sip.digest_grammar import DigestCredentials
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.store.database import open_database
from pbx.store.extensions import add_extension
from pbx.store.settings import sip_realm
from pbx.transport.flow import Flow

PASSWORDS = {"201": "fuzz-pass-201-Ab", "202": "fuzz-pass-202-Cd"}
PHONE = Flow(transport="UDP", local=("127.0.0.1", 5060), remote=("127.0.0.1", 40201))
SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def request(
    method: str, uri: str, *, to: str, body: str = "", extra: str = "", to_tag: str = ""
) -> str:
    kind = "application/sdp" if body.startswith("v=0") else "text/plain"
    content = f"Content-Type: {kind}\r\n" if body else ""
    return (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1:40201;branch=z9hG4bK-fz{n};rport\r\n"
        "Max-Forwards: 70\r\n"
        "From: <sip:201@127.0.0.1>;tag=fz201\r\n"
        f"To: <sip:{to}@127.0.0.1>{';tag=' + to_tag if to_tag else ''}\r\n"
        "Call-ID: fuzz-{n}@test\r\n"
        f"CSeq: 2 {method}\r\n"
        "Contact: <sip:201@127.0.0.1:40201>;expires=600\r\n"
        f"{extra}{{auth}}{content}Content-Length: {len(body.encode())}\r\n\r\n{body}"
    )


CALLEE = Flow(transport="UDP", local=("127.0.0.1", 5060), remote=("127.0.0.1", 40202))


def in_dialog(side: str, method: str, *, body: str = "", extra: str = "") -> str:
    """A request inside the live call's dialog on one side: {callid}, {ours}, {theirs} and
    {cseq} are filled in when the example is built."""
    kind = "application/sdp" if body.startswith("v=0") else "application/dtmf-relay"
    content = f"Content-Type: {kind}\r\n" if body else ""
    user, port = ("201", 40201) if side == "a" else ("202", 40202)
    return (
        f"{method} sip:switchboard@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-fz{{n}};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:{user}@127.0.0.1>;tag={{ours}}\r\n"
        "To: <sip:other@127.0.0.1>;tag={theirs}\r\n"
        "Call-ID: {callid}\r\n"
        f"CSeq: {{cseq}} {method}\r\n"
        f"Contact: <sip:{user}@127.0.0.1:{port}>\r\n"
        f"{extra}{{auth}}{content}Content-Length: {len(body.encode())}\r\n\r\n{body}"
    )


HOLD = SDP.replace("a=sendrecv", "a=sendonly")
DIALOG_SEEDS = [
    (side, method, body, extra)
    for side in ("a", "b")
    for method, body, extra in (
        ("INVITE", HOLD, ""),
        ("INVITE", SDP, "Session-Expires: 90;refresher=uac\r\nSupported: timer\r\n"),
        ("INVITE", "", ""),
        ("UPDATE", SDP, ""),
        ("INFO", "Signal=5\r\nDuration=160\r\n", ""),
        ("MESSAGE", "", ""),
        ("BYE", "", ""),
        ("PRACK", "", "RAck: 1 1 INVITE\r\n"),
        ("OPTIONS", "", ""),
        ("ACK", SDP, ""),
    )
]

SEEDS = [
    ("Authorization", request("REGISTER", "sip:127.0.0.1", to="201")),
    ("Proxy-Authorization", request("INVITE", "sip:202@127.0.0.1", to="202", body=SDP)),
    ("Proxy-Authorization", request("INVITE", "sip:9911@127.0.0.1", to="9911", body=SDP)),
    ("Proxy-Authorization", request("INVITE", "sip:202@127.0.0.1", to="202")),  # late offer
    ("Proxy-Authorization", request("MESSAGE", "sip:202@127.0.0.1", to="202", body="hi")),
    ("", request("OPTIONS", "sip:127.0.0.1", to="201")),
    ("", request("BYE", "sip:127.0.0.1", to="202", to_tag="x",
                 extra="Route: <sip:127.0.0.1;lr>\r\n")),
    ("", request("CANCEL", "sip:202@127.0.0.1", to="202")),
    ("", request("ACK", "sip:202@127.0.0.1", to="202", to_tag="y", body=SDP)),
    ("", request("UPDATE", "sip:127.0.0.1", to="202", to_tag="z", body=SDP)),
    ("", request("PRACK", "sip:127.0.0.1", to="202", to_tag="z", extra="RAck: 1 1 INVITE\r\n")),
    ("", request("INFO", "sip:127.0.0.1", to="202", to_tag="z", body="Signal=5")),
    ("", request("SUBSCRIBE", "sip:202@127.0.0.1", to="202", extra="Event: presence\r\n")),
    ("", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnone\r\n"
         "From: <sip:a@b>;tag=1\r\nTo: <sip:c@d>;tag=2\r\nCall-ID: r{n}{auth}\r\n"
         "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"),
]  # fmt: skip

SPECIAL = [b"\r\n", b"\x00", b'"', b"\\", b"<", b">", b";", b",", b"=", b"@", b":", b" ",
           b"\xff", b"0", b"-1", b"99999999999", b"tag=", b"*", b"%00", b"[::1]"]  # fmt: skip


class Office:
    """One switch on a temporary database, its sends captured, on a loop the tests drive."""

    def __init__(self, folder: Path) -> None:
        db = folder / "fuzz.db"
        store = open_database(db)
        for number, password in PASSWORDS.items():
            add_extension(store, number=number, name=number, password=password, now=time.time())
        self.realm = sip_realm(store)
        store.close()
        self.loop = asyncio.new_event_loop()
        config = Settings(
            db=db, sip_port=0, rtp_ports=(35000, 35599), ban_allow="127.0.0.0/8", ring_timeout=2
        )
        self.switch = Switch(config)
        self.loop.run_until_complete(self.switch.start())
        self.sent: list[tuple[bytes, tuple[Any, ...]]] = []
        real = self.switch.transport._udp["UDP"]
        self._real = real

        class Capture:
            def sendto(inner, data: bytes, addr: Any) -> None:  # noqa: N805
                self.sent.append((data, tuple(addr)))

            def close(inner) -> None:  # noqa: N805
                real.close()

        self.switch.transport._udp["UDP"] = Capture()  # type: ignore[assignment]
        self.count = 0

    def register_callee(self) -> None:
        """202 registers, so INVITEs and MESSAGEs to it are routed (and forked) for real."""
        text = (
            request("REGISTER", "sip:127.0.0.1", to="202")
            .replace("sip:201@127.0.0.1:40201", "sip:202@127.0.0.1:40202")
            .replace("<sip:201@127.0.0.1>;tag=fz201", "<sip:202@127.0.0.1>;tag=fz202")
            .replace("{n}", "callee")
        )
        raw = text.replace("{auth}", self.credentials("Authorization", text.replace("{auth}", ""),
                                                      user="202"))  # fmt: skip
        replies = [parse_message(m) for m, _ in self.deliver(raw.encode(), settle=0.05)]
        assert any(isinstance(r, Response) and r.status == 200 for r in replies), replies

    def ensure_call(self) -> tuple[Any, str]:
        """An answered call from 201 to 202, set up anew when the fuzz ended the last one;
        returns it and the tag 202 answered with."""
        for call in self.switch.calls.calls:
            answered = call.answered is not None and not call.done
            if answered and call.caller_leg.call_id.startswith("fuzz-call-"):
                return call, call.answered.dialog.id.remote_tag
        self.count += 1
        call_id = f"fuzz-call-{self.count}@test"
        text = (
            request("INVITE", "sip:202@127.0.0.1", to="202", body=SDP)
            .replace("fuzz-{n}@test", call_id)
            .replace("{n}", f"call{self.count}")
        )
        raw = text.replace("{auth}", self.credentials("Proxy-Authorization",
                                                      text.replace("{auth}", "")))  # fmt: skip
        sent = self.deliver(raw.encode(), settle=0.05)
        found = [c for c in self.switch.calls.calls if c.caller_leg.call_id == call_id]
        assert len(found) == 1, [m[:300] for m, a in sent if a == PHONE.remote]
        call = found[0]
        forks = [m for m, address in sent if address == CALLEE.remote and m.startswith(b"INVITE")
                 and f"Call-ID: {call.call_id_b}".encode() in m]  # fmt: skip
        assert forks, "the INVITE was not forked to 202"
        fork = parse_message(forks[0])
        assert isinstance(fork, Request)
        tag = f"b{self.count}"
        ok = make_response(
            fork, 200, to_tag=tag, body=SDP.encode(),
            headers=[("Contact", "<sip:202@127.0.0.1:40202>"), ("Content-Type", "application/sdp")],
        )  # fmt: skip
        self.deliver(bytes(ok), settle=0.05, flow=CALLEE)
        assert call.answered is not None, "202's 200 did not answer the call"
        return call, tag

    def dialog_request(self, side: str, template: str) -> tuple[bytes, Flow]:
        call, b_tag = self.ensure_call()
        self.count += 1
        if side == "a":
            fields = {"callid": call.caller_leg.call_id, "ours": "fz201",
                      "theirs": call.caller_leg.local_tag}  # fmt: skip
        else:
            fields = {"callid": call.call_id_b, "ours": b_tag, "theirs": call.from_tag_b}
        text = template.replace("{n}", str(self.count)).replace("{cseq}", str(100 + self.count))
        for key, value in fields.items():
            text = text.replace("{" + key + "}", value)
        return text.replace("{auth}", "").encode(), PHONE if side == "a" else CALLEE

    def credentials(self, header: str, text: str, user: str = "201") -> str:
        """The header line answering a fresh nonce for the request in ``text``."""
        if not header:
            return ""
        first = text.split("\r\n", 1)[0].split(" ")
        method, uri = first[0], first[1]
        nonce = self.switch.registrar.authenticator.make_nonce(
            now=time.time(), salt=secrets.token_bytes(NONCE_SALT_LENGTH)
        )
        ha1 = compute_ha1(username=user, realm=self.realm, password=PASSWORDS[user],
                          algorithm=DigestAlgorithm.MD5)  # fmt: skip
        self.count += 1
        nc = "00000001"
        response = compute_response(
            algorithm=DigestAlgorithm.MD5, ha1=ha1, nonce=nonce, method=method, uri=uri,
            qop="auth", nc=nc, cnonce="fz",
        )  # fmt: skip
        value = DigestCredentials(username=user, realm=self.realm, nonce=nonce, uri=uri,
                                  response=response, qop="auth", nc=nc, cnonce="fz")  # fmt: skip
        return f"{header}: {value.to_header_value()}\r\n"

    def deliver(
        self, data: bytes, settle: float = 0.005, flow: Flow = PHONE
    ) -> list[tuple[bytes, tuple[Any, ...]]]:
        """Hand ``data`` to the switch as a datagram from a phone; what it sent meanwhile."""

        async def run() -> None:
            self.switch.transport._datagram(data, flow)
            # Tasks the request started (routing a call, group commits) run meanwhile.
            await asyncio.sleep(settle)

        self.loop.run_until_complete(run())
        sent, self.sent = self.sent, []
        self._answer_probes(sent)
        return sent

    def _answer_probes(self, sent: list[tuple[bytes, tuple[Any, ...]]]) -> None:
        """202 is a live phone: it answers the switch's qualify OPTIONS (else it would be
        marked unreachable and the call setup would get 480)."""
        probes = [m for m, address in sent if address == CALLEE.remote and m.startswith(b"OPTIONS")]
        if not probes:
            return

        async def answer() -> None:
            for probe in probes:
                options = parse_message(probe)
                assert isinstance(options, Request)
                self.switch.transport._datagram(bytes(make_response(options, 200)), CALLEE)

        self.loop.run_until_complete(answer())

    def feed(self, data: bytes, flow: Flow = PHONE) -> None:
        transport = self.switch.transport
        before = transport.stats.internal_errors
        sent = self.deliver(data, flow=flow)
        assert transport.stats.internal_errors == before, "a handler raised: see the log"
        try:
            parse_message(data)
            well_formed = True
        except SipParseError:
            well_formed = False
        for out, address in sent:
            try:
                parse_message(out)
                continue
            except SipParseError:
                pass
            # Only one thing may fail to parse: the error response to a malformed request,
            # which echoes its fields as they came (§8.2.6.2), though one of each.
            answer = out.startswith((b"SIP/2.0 4", b"SIP/2.0 5")) and address == flow.remote
            assert answer and not well_formed, f"the switch sent something broken: {out!r}"
            for name in (b"\r\nFrom:", b"\r\nTo:", b"\r\nCall-ID:", b"\r\nCSeq:"):
                assert out.count(name) <= 1, out

    def close(self) -> None:
        self.switch.transport._udp["UDP"] = self._real
        self.loop.run_until_complete(self.switch.stop())
        self.loop.close()


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Office]:
    office = Office(tmp_path_factory.mktemp("fuzz"))
    try:
        office.register_callee()
        yield office
    finally:
        office.close()


Edit = tuple[str, int, int, int, bytes]

edits = st.tuples(
    st.sampled_from(["flip", "insert", "delete", "copy", "repeat"]),
    st.integers(0, 9999),  # where, per ten thousand of the message's length
    st.integers(0, 9999),  # a second place (copy's source)
    st.integers(0, 255),  # a byte, a length or a count
    st.sampled_from(SPECIAL),
)


def apply(data: bytearray, edit: Edit) -> None:
    """One mutation; positions are relative so the same draw means the same edit whatever
    the (nonce-bearing) message's exact length."""
    op, where, other, number, piece = edit
    at = where * len(data) // 10000
    if op == "flip" and data:
        data[min(at, len(data) - 1)] = number
    elif op == "insert":
        data[at:at] = piece
    elif op == "delete":
        del data[at : at + 1 + number % 12]
    elif op == "copy" and data:
        start = other * len(data) // 10000
        data[at:at] = data[start : start + 1 + number % 80]
    elif op == "repeat":
        data[at:at] = piece * (50 + number)


def build(office: Office, seed: int, changes: list[Edit]) -> bytes:
    header, template = SEEDS[seed]
    text = template.replace("{n}", str(office.count))
    text = text.replace("{auth}", office.credentials(header, text.replace("{auth}", "")))
    data = bytearray(text.encode())
    for edit in changes:
        apply(data, edit)
    return bytes(data)


FUZZ = settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(seed=st.integers(0, len(SEEDS) - 1), changes=st.lists(edits, max_size=3))
def test_no_request_makes_a_handler_raise(office: Office, seed: int, changes: list[Edit]) -> None:
    office.feed(build(office, seed, changes))


@FUZZ
@given(seed=st.integers(0, len(DIALOG_SEEDS) - 1), changes=st.lists(edits, max_size=3))
def test_no_request_inside_a_live_call_makes_a_handler_raise(
    office: Office, seed: int, changes: list[Edit]
) -> None:
    side, method, body, extra = DIALOG_SEEDS[seed]
    data, flow = office.dialog_request(side, in_dialog(side, method, body=body, extra=extra))
    mutable = bytearray(data)
    for edit in changes:
        apply(mutable, edit)
    office.feed(bytes(mutable), flow)


def test_the_seeds_reach_the_services(office: Office) -> None:
    """Unmutated, the seeds are accepted: a 200 to REGISTER and a 100 to the INVITE, so the
    mutations start from requests that get past authentication."""
    statuses = []
    for header, template in SEEDS[:2]:
        text = template.replace("{n}", f"seed{office.count}")
        raw = text.replace("{auth}", office.credentials(header, text.replace("{auth}", "")))
        for out, _ in office.deliver(raw.encode(), settle=0.05):
            reply = parse_message(out)
            if isinstance(reply, Response):
                statuses.append(reply.status)
    assert 200 in statuses and 100 in statuses, statuses


def test_the_dialog_seeds_reach_the_other_leg(office: Office) -> None:
    """Unmutated, an INFO from the caller's side crosses to the callee: the in-dialog seeds
    start from requests the calls service accepts."""
    data, flow = office.dialog_request("a", in_dialog("a", "INFO", body="Signal=5\r\n"))
    sent = office.deliver(data, settle=0.05, flow=flow)
    assert any(m.startswith(b"INFO ") and address == CALLEE.remote for m, address in sent), sent
