"""The MESSAGE proxy (pbx/routing/proxy.py) on a real transaction layer and a fake clock.

The harness pumps the layer and the proxy the way the asyncio edge does (sends are recorded
instead of reaching a socket), so Timer E retransmissions, Timer F give-ups and the server
transaction's answers to retransmitted requests are the real ones, driven without sleeping.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import replace
from typing import TypeVar

import pytest

from pbx.registrar.location import reach
from pbx.routing.proxy import AuthFailure, Forward, MessageProxy, Respond
from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator, compute_ha1
from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.headers import Headers
from pbx.sip.message import Message, Request, Response, make_response, parse_message
from pbx.sip.transaction import Output, SendMessage
from pbx.sip.transaction_layer import Incoming, TransactionLayer
from pbx.store.extensions import StoredSecrets
from pbx.store.records import Binding
from pbx.transport.flow import Destination, Flow

SWITCH = ("192.0.2.1", 5060)
ALICE = Flow(transport="UDP", local=SWITCH, remote=("198.51.100.21", 40021))
PASSWORDS = {"201": "proxy-pass-201-Ab", "202": "proxy-pass-202-Cd", "203": "proxy-pass-203-Ef"}
REALM = "switchboard"
T0_WALL = 1_800_000_000.0
M = TypeVar("M", Request, Response)


def binding(port: int, *, path: tuple[str, ...] = ()) -> Binding:
    """A binding of 202 on 198.51.100.22:``port`` (no NAT: reached at its Contact)."""
    return Binding(
        aor="202", binding_key=f"sip:202@198.51.100.22:{port}",
        contact=f"sip:202@198.51.100.22:{port}", expires_at=T0_WALL + 600,
        received_host="198.51.100.22", received_port=port, transport="UDP",
        call_id=f"reg-{port}@test", cseq=1, registered_at=T0_WALL, path=path,
    )  # fmt: skip


def secrets_of(number: str) -> StoredSecrets | None:
    password = PASSWORDS.get(number)
    if password is None:
        return None
    md5, sha = (
        compute_ha1(username=number, realm=REALM, password=password, algorithm=algorithm)
        for algorithm in (DigestAlgorithm.MD5, DigestAlgorithm.SHA_256)
    )
    return StoredSecrets(md5, sha)


class FakeClock:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall_offset = T0_WALL - 100.0

    @property
    def wall(self) -> float:
        return self.mono + self.wall_offset


class Proxy:
    """MessageProxy + TransactionLayer, pumped as pbx/proxy/service.py pumps them."""

    def __init__(self, bindings: dict[str, list[Binding]] | None = None) -> None:
        self.clock = FakeClock()
        self.bindings = {"202": [binding(5062), binding(5064)]} if bindings is None else bindings
        counter = itertools.count(1)
        self.layer = TransactionLayer()
        self.proxy = MessageProxy(
            authenticator=DigestAuthenticator(
                realm=REALM, secret=b"proxy-tests-secret-0123456789abc",
                algorithms=(DigestAlgorithm.SHA_256, DigestAlgorithm.MD5),
            ),
            secrets_of=secrets_of,
            is_extension=lambda number: number in ("201", "202", "203"),
            bindings_of=lambda aor: self.bindings.get(aor, []),
            reach=reach,
            local=lambda _transport: SWITCH,
            new_branch=lambda: f"px{next(counter)}",
            new_tag=lambda: f"tag{next(counter)}",
            new_salt=lambda: next(counter).to_bytes(16, "big"),
        )  # fmt: skip
        self.sent: list[tuple[Message, object]] = []
        self.failures: list[tuple[str, float]] = []
        self.cseq = itertools.count(1)

    # -- the pump ------------------------------------------------------------------------
    def run(self, outputs: list[Output]) -> None:
        todo = deque(outputs)
        while todo:
            output = todo.popleft()
            if isinstance(output, SendMessage):
                self.sent.append((output.message, output.destination))
                continue
            for action in self.proxy.receive(output, self.clock.wall):
                if isinstance(action, Respond):
                    todo.extend(self.layer.respond(action.key, action.response, self.clock.mono))
                elif isinstance(action, Forward):
                    todo.extend(self.layer.send_request(
                        action.request, action.destination, self.clock.mono,
                        reliable=action.reliable,
                    ))  # fmt: skip
                elif isinstance(action, AuthFailure):
                    self.failures.append((action.host, action.now))

    def deliver(self, message: Message, flow: Flow = ALICE) -> list[tuple[Message, object]]:
        """Hand ``message`` in as received over ``flow``; what was sent meanwhile."""
        assert isinstance(message, Request | Response)
        incoming = Incoming(message=message, source=flow, reliable=False)
        self.run(self.layer.receive(incoming, self.clock.mono))
        return self.take()

    def advance(self, seconds: float) -> list[tuple[Message, object]]:
        """Move the clock on, firing every deadline on the way as the edge's call_at would."""
        end = self.clock.mono + seconds
        while (deadline := self.layer.next_deadline()) is not None and deadline <= end:
            self.clock.mono = max(self.clock.mono, deadline)
            self.run(self.layer.handle_timer(self.clock.mono))
        self.clock.mono = end
        return self.take()

    def take(self) -> list[tuple[Message, object]]:
        sent, self.sent = self.sent, []
        return sent

    # -- Alice ---------------------------------------------------------------------------
    def message(self, to: str = "202", *, extra: str = "", sender: str = "201") -> Request:
        cseq = next(self.cseq)
        text = (
            f"MESSAGE sip:{to}@192.0.2.1 SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 198.51.100.21:40021;branch=z9hG4bK-al{cseq};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"Route: <sip:192.0.2.1;lr>\r\n"
            f"From: <sip:{sender}@192.0.2.1>;tag=al1\r\nTo: <sip:{to}@192.0.2.1>\r\n"
            f"Call-ID: msg-1@test\r\nCSeq: {cseq} MESSAGE\r\n{extra}"
            "Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nlunch?"
        )
        request = parse_message(text.encode())
        assert isinstance(request, Request)
        return request

    def authorized(self, to: str = "202", *, password: str | None = None) -> Request:
        """A MESSAGE answering a fresh 407 (each gets its own nonce: no nc bookkeeping)."""
        [(challenge, _)] = self.deliver(self.message(to))
        assert isinstance(challenge, Response) and challenge.status == 407, challenge
        chosen = choose_challenge(challenge.headers.get_all("proxy-authenticate"))
        assert chosen is not None
        credentials = answer_challenge(
            chosen, username="201", password=password or PASSWORDS["201"], method="MESSAGE",
            uri=f"sip:{to}@192.0.2.1", cnonce="0a4f113b",
        )  # fmt: skip
        return self.message(to, extra=f"Proxy-Authorization: {credentials.to_header_value()}\r\n")


def forwards(sent: list[tuple[Message, object]]) -> dict[int, Request]:
    """The MESSAGEs sent to 202's bindings, by destination port."""
    found: dict[int, Request] = {}
    for message, destination in sent:
        assert isinstance(message, Request) and isinstance(destination, Destination), message
        assert destination.host == "198.51.100.22"
        found[destination.port] = message
    return found


def edited(message: M, headers: Headers) -> M:
    """``message`` with other header fields, parsed again as it would arrive."""
    again = parse_message(bytes(replace(message, headers=headers)))
    assert isinstance(again, type(message))
    return again


def only_answer(sent: list[tuple[Message, object]]) -> Response:
    [(response, destination)] = sent
    assert isinstance(response, Response) and destination == ALICE, sent
    return response


def callee_answer(request: Request, status: int, tag: str) -> Response:
    return make_response(request, status, to_tag=tag)


@pytest.fixture
def proxy() -> Proxy:
    return Proxy()


# ---------------------------------------------------------------------------
# Who may send


def test_a_message_without_credentials_is_challenged_407(proxy: Proxy) -> None:
    challenge = only_answer(proxy.deliver(proxy.message()))
    assert challenge.status == 407
    values = challenge.headers.get_all("proxy-authenticate")
    assert len(values) == 1 and "algorithm=MD5" in values[0]  # the box's default offer
    assert challenge.to.tag is not None and challenge.top_via.branch == "z9hG4bK-al1"


def test_a_wrong_password_gets_403_and_counts_toward_a_ban(proxy: Proxy) -> None:
    refused = only_answer(proxy.deliver(proxy.authorized(password="not-the-password")))
    assert refused.status == 403
    assert proxy.failures == [("198.51.100.21", proxy.clock.wall)]


def test_malformed_credentials_get_400(proxy: Proxy) -> None:
    broken = proxy.message(extra="Proxy-Authorization: Digest username=\r\n")
    refused = only_answer(proxy.deliver(broken))
    assert refused.status == 400 and "Proxy-Authorization" in refused.reason
    assert proxy.failures == []


def test_max_forwards_zero_gets_483_and_our_own_via_below_gets_482(proxy: Proxy) -> None:
    spent = proxy.message()
    spent = edited(spent, spent.headers.with_set("Max-Forwards", "0"))
    assert only_answer(proxy.deliver(spent)).status == 483
    looped = proxy.message()
    ours = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ours"
    looped = edited(looped, looped.headers.with_added("Via", ours))
    assert only_answer(proxy.deliver(looped)).status == 482


# ---------------------------------------------------------------------------
# Where it goes


def test_a_number_that_is_no_extension_gets_404(proxy: Proxy) -> None:
    assert only_answer(proxy.deliver(proxy.authorized("299"))).status == 404


def test_an_unregistered_extension_gets_480(proxy: Proxy) -> None:
    refused = only_answer(proxy.deliver(proxy.authorized("203")))
    assert (refused.status, refused.reason) == (480, "Temporarily Unavailable")


def test_a_binding_that_points_back_at_us_is_not_forked_to() -> None:
    ours = replace(binding(5060), contact="sip:202@192.0.2.1:5060", received_host="192.0.2.1")
    proxy = Proxy({"202": [ours]})
    assert only_answer(proxy.deliver(proxy.authorized())).status == 480


def test_the_message_is_forked_to_every_binding_as_a_proxy_forwards_it() -> None:
    path = ("<sip:edge.example.net;lr>",)
    proxy = Proxy({"202": [binding(5062), binding(5064, path=path)]})
    request = proxy.authorized()
    sent = forwards(proxy.deliver(request))
    assert sorted(sent) == [5062, 5064]
    for port, forwarded in sent.items():
        assert str(forwarded.uri) == f"sip:202@198.51.100.22:{port}"  # the binding's Contact
        assert forwarded.body == b"lunch?" and forwarded.call_id == request.call_id
        top, *rest = forwarded.vias
        assert (top.host, top.port, top.branch) == ("192.0.2.1", 5060, top.branch)
        assert top.branch is not None and top.branch.startswith("z9hG4bK")
        assert [v.branch for v in rest] == [request.top_via.branch]
        assert forwarded.max_forwards == 69
        assert "proxy-authorization" not in forwarded.headers  # consumed here (§22.3)
    assert sent[5062].headers.get_all("route") == []  # the Route to us is gone
    assert sent[5064].headers.get_all("route") == list(path)  # the binding's Path (RFC 3327)
    assert sent[5062].top_via.branch != sent[5064].top_via.branch


# ---------------------------------------------------------------------------
# What comes back


def test_the_first_2xx_goes_back_and_a_later_one_is_not_sent_again(proxy: Proxy) -> None:
    request = proxy.authorized()
    sent = forwards(proxy.deliver(request))
    ok = only_answer(proxy.deliver(callee_answer(sent[5064], 200, "bob2")))
    assert (ok.status, ok.to.tag) == (200, "bob2")
    assert [v.branch for v in ok.vias] == [request.top_via.branch]  # our Via came off
    assert proxy.deliver(callee_answer(sent[5062], 200, "bob1")) == []
    assert proxy.deliver(callee_answer(sent[5062], 486, "bob1")) == []


def test_a_failure_waits_for_the_other_branch_and_a_2xx_still_wins(proxy: Proxy) -> None:
    sent = forwards(proxy.deliver(proxy.authorized()))
    assert proxy.deliver(callee_answer(sent[5062], 486, "bob1")) == []
    assert proxy.deliver(make_response(sent[5064], 180, to_tag="bob2")) == []  # 1xx stays here
    ok = only_answer(proxy.deliver(callee_answer(sent[5064], 202, "bob2")))
    assert (ok.status, ok.to.tag) == (202, "bob2")


def test_when_every_branch_fails_the_lowest_status_goes_back(proxy: Proxy) -> None:
    sent = forwards(proxy.deliver(proxy.authorized()))
    assert proxy.deliver(callee_answer(sent[5062], 486, "bob1")) == []
    failed = only_answer(proxy.deliver(callee_answer(sent[5064], 415, "bob2")))
    assert failed.status == 415 and failed.headers.get("server") == "Switchboard"


def test_branches_that_never_answer_give_408_at_timer_f(proxy: Proxy) -> None:
    sent = forwards(proxy.deliver(proxy.authorized()))
    assert proxy.deliver(callee_answer(sent[5062], 486, "bob1")) == []
    # The silent branch is retransmitted per Timer E (same branch: not a new request) ...
    early = proxy.advance(31.9)
    assert early and all(isinstance(m, Request) for m, _ in early)
    assert {m.top_via.branch for m, _ in early} == {sent[5064].top_via.branch}
    # ... and given up at Timer F, 64*T1 after it was sent: the lowest of 486 and 408.
    timeout = only_answer(proxy.advance(0.2))
    assert timeout.status == 408
    proxy.advance(40.0)
    assert len(proxy.proxy) == 0 and len(proxy.layer) == 0  # nothing kept once it is over


def test_a_retransmitted_message_before_any_answer_is_absorbed(proxy: Proxy) -> None:
    request = proxy.authorized()
    assert len(forwards(proxy.deliver(request))) == 2
    assert proxy.deliver(request) == []  # the server transaction holds it; no new fork


def test_a_lost_200_is_answered_again_from_the_server_transaction(proxy: Proxy) -> None:
    request = proxy.authorized()
    sent = forwards(proxy.deliver(request))
    lost = only_answer(proxy.deliver(callee_answer(sent[5062], 200, "bob1")))
    proxy.advance(0.5)  # Alice's Timer E fires: she sends the very same MESSAGE again
    again = only_answer(proxy.deliver(request))
    assert bytes(again) == bytes(lost)  # the callee's answer, not a new request nor a 400
    # Nothing new went to the callee: only Bob 2's unanswered branch is retransmitted.
    later = proxy.advance(2.0)
    assert later and all(
        isinstance(m, Request) and m.top_via.branch == sent[5064].top_via.branch for m, _ in later
    )


def test_a_2xx_that_lost_the_senders_via_is_answered_by_the_proxy(proxy: Proxy) -> None:
    request = proxy.authorized()
    sent = forwards(proxy.deliver(request))
    ok = callee_answer(sent[5062], 200, "bob1")
    only_ours = Headers([(n, v) for n, v in ok.headers if n != "Via"]).with_added(
        "Via", str(sent[5062].top_via), first=True
    )
    answered = only_answer(proxy.deliver(edited(ok, only_ours)))
    assert (answered.status, answered.to.tag) == (200, "bob1")
    assert [v.branch for v in answered.vias] == [request.top_via.branch]


def test_a_message_inside_a_dialog_is_not_the_proxys(proxy: Proxy) -> None:
    request = proxy.message()
    in_dialog = edited(request, request.headers.with_set("To", "<sip:202@192.0.2.1>;tag=x"))
    assert only_answer(proxy.deliver(in_dialog)).status == 481


def test_bindings_whose_contacts_do_not_parse_leave_none_to_fork_to_480() -> None:
    proxy = Proxy({"202": [replace(binding(5062), contact="not a uri")]})
    assert only_answer(proxy.deliver(proxy.authorized())).status == 480
    assert len(proxy.proxy) == 0  # no branch waits for an answer that cannot come
