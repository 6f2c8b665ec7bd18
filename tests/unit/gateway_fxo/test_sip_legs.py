"""The gateway's SIP side (sip_legs.py: the switch's legs carried out on the gateway's trunk)
with the real transaction layer and time as a number; what goes on the wire is what a fake
transport was given. The cases the legs have by themselves are in tests/unit/calls/test_leg_*;
these are the gateway's: the 2xx resent until the ACK and the BYE after 64*T1 without one
(§13.3.1.4), a BYE asked for before the ACK that waits for it (§15), a retransmitted INVITE
answered by its transaction, CANCEL before and after the 200 (§9.2), and for the INVITE we send:
the 407 answered with a new INVITE, its ACK with the credentials for every 2xx copy, a 2xx that
crossed our CANCEL ACKed and BYEd, and no answer at all."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest

from gateway_fxo.sip_legs import LegRunner
from gateway_fxo.trunk import ServerTransactionKey, TrunkClient
from pbx.calls.leg import Leg
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.outputs import Answered, Confirmed, Ended, Failed, LegEvent, Progress
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Message, Request, Response, make_request, make_response, parse_message
from pbx.sip.transaction import TimerSettings
from pbx.sip.uri import SipUri
from pbx.transport.flow import Destination, Flow

SWITCH = ("127.0.0.1", 5060)
GATEWAY = ("127.0.0.1", 5070)
FLOW = Flow(transport="UDP", local=GATEWAY, remote=SWITCH)
CHALLENGE = 'Digest realm="switchboard", nonce="n0nce", algorithm=MD5, qop="auth"'
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\n"
)
_branches = itertools.count()


@dataclass
class Clock:
    now: float = 0.0

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_700_000_000.0 + self.now


@dataclass
class Wire:
    """The fake transport: every message the gateway sends, with when and where."""

    clock: Clock
    sent: list[tuple[float, Message, Destination]] = field(default_factory=list)

    def send(self, message: Message, destination: Destination) -> None:
        parsed = parse_message(bytes(message))  # it serializes, as the wire needs
        self.sent.append((self.clock.now, parsed, destination))

    def responses(self, status: int | None = None) -> list[tuple[float, Response]]:
        return [(t, m) for t, m, _ in self.sent if isinstance(m, Response)
                and (status is None or m.status == status)]  # fmt: skip

    def requests(self, method: str) -> list[tuple[Request, Destination]]:
        """Requests sent, once each (a client transaction's retransmissions left out)."""
        found: dict[tuple[str | None, str], tuple[Request, Destination]] = {}
        for _, m, d in self.sent:
            if isinstance(m, Request) and m.method == method:
                found.setdefault((m.top_via.branch, m.method), (m, d))
        return list(found.values())

    def every(self, method: str) -> list[Request]:
        """Every copy of every ``method`` request sent."""
        return [m for _, m, _ in self.sent if isinstance(m, Request) and m.method == method]


class Gateway:
    """A trunk, its transaction layer and the runner, wired as the agent wires them."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.wire = Wire(self.clock)
        self.trunk = TrunkClient(
            account="line1", password="secret", switch=SWITCH, bind=GATEWAY[0],
            register_expires=60, transport=self.wire, clock=self.clock,  # type: ignore[arg-type]
            timers=TimerSettings(),
        )  # fmt: skip
        self.trunk.local = GATEWAY
        self.events: list[LegEvent] = []
        self.requests: list[tuple[Request, ServerTransactionKey | None]] = []
        self.trunk.on_request = self._request
        self.legs = LegRunner(self.trunk, self.clock, self._event)

    def _request(self, request: Request, key: ServerTransactionKey | None, _flow: object) -> None:
        """What the agent does with an ACK (to the leg of its dialog); the rest is kept."""
        leg = self.legs.dialog_leg(request) if request.method == "ACK" else None
        if leg is not None:
            self.legs.run(leg, leg.on_ack(request, self.clock.now))
        elif request.method != "ACK":
            self.requests.append((request, key))

    def _event(self, leg: Leg, event: LegEvent) -> None:
        self.events.append(event)

    def receive(self, message: Message, at: float) -> None:
        self.clock.now = at
        self.trunk.receive(parse_message(bytes(message)), FLOW)

    def run_until(self, end: float) -> None:
        """Fire the layer's and the legs' deadlines up to ``end`` as the agent's call_at does."""
        while True:
            times = [t for t in (self.trunk.next_deadline(), self.legs.next_deadline()) if t]
            if not times or min(times) > end:
                self.clock.now = end
                return
            self.clock.now = max(self.clock.now, min(times))
            self.trunk.handle_timer(self.clock.now)
            self.legs.handle_timer(self.clock.now)

    def of(self, kind: type) -> list[LegEvent]:
        return [e for e in self.events if isinstance(e, kind)]


def via(host: str, port: int) -> Via:
    return Via(transport="UDP", host=host, port=port,
               params=(("branch", f"z9hG4bK{next(_branches)}"),))  # fmt: skip


# -- the switch INVITEs the gateway (an outbound line call): IncomingLeg ---------------------
def switch_invite() -> Request:
    return make_request(
        "INVITE", SipUri(user="5550100", host=GATEWAY[0], port=GATEWAY[1]), via=via(*SWITCH),
        from_=NameAddress(uri=SipUri(user="201", host=SWITCH[0]), params=(("tag", "sw"),)),
        to=NameAddress(uri=SipUri(user="5550100", host=GATEWAY[0])), call_id="c1", cseq=7,
        contact=NameAddress(uri=SipUri(host=SWITCH[0], port=SWITCH[1])), body=SDP,
        content_type="application/sdp",
    )  # fmt: skip


def in_dialog(invite: Request, method: str, to: NameAddress, seq: int) -> Request:
    return make_request(
        method, SipUri(host=GATEWAY[0], port=GATEWAY[1]), via=via(*SWITCH), from_=invite.from_,
        to=to, call_id=invite.call_id, cseq=seq,
    )  # fmt: skip


def called() -> tuple[Gateway, IncomingLeg, Request]:
    gw = Gateway()
    invite = switch_invite()
    gw.receive(invite, 0.0)
    [(request, key)] = gw.requests
    assert key is not None
    leg = gw.legs.incoming(request, key, FLOW, local_tag="gw")
    assert [r.status for _, r in gw.wire.responses()] == [100]
    return gw, leg, request


def answered(at: float = 0.0) -> tuple[Gateway, IncomingLeg, Request, Response]:
    gw, leg, invite = called()
    gw.clock.now = at
    gw.legs.run(leg, leg.answer(SDP, at))
    [(_, ok)] = gw.wire.responses(200)
    return gw, leg, invite, ok


def test_the_2xx_is_resent_at_t1_doubling_to_t2_until_the_ack() -> None:
    gw, leg, invite, ok = answered()
    gw.run_until(20.0)
    assert [t for t, _ in gw.wire.responses(200)] == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5]
    assert all(d == Destination(transport="UDP", host="127.0.0.1", port=5060)
               for _, m, d in gw.wire.sent)  # fmt: skip
    gw.receive(in_dialog(invite, "ACK", ok.to, 7), 20.0)
    assert gw.of(Confirmed) == [Confirmed(leg="c1", sdp=None)]
    gw.run_until(60.0)
    assert len(gw.wire.responses(200)) == 8, "nothing is resent after the ACK"
    gw.receive(in_dialog(invite, "ACK", ok.to, 7), 61.0)
    assert len(gw.of(Confirmed)) == 1  # a copy of the ACK: absorbed


def test_without_an_ack_the_gateway_gives_up_at_64_t1_and_sends_bye() -> None:
    gw, leg, invite = called()
    gw.legs.run(leg, leg.progress(183, 0.0, sdp=SDP))  # early media first, as on a line call
    gw.legs.run(leg, leg.answer(SDP, 0.0))
    gw.run_until(40.0)
    resends = [t for t, _ in gw.wire.responses(200)]
    assert len(resends) == 11 and resends[-1] < 32.0  # 0, .5, 1.5, 3.5, 7.5 ... 31.5
    assert gw.of(Ended) == [Ended(leg="c1", reason="no ACK")]
    [(bye, where)] = gw.wire.requests("BYE")
    assert bye.to.tag == "sw" and bye.from_.tag == "gw" and bye.call_id == "c1"
    assert bye.uri == SipUri(host=SWITCH[0], port=SWITCH[1])  # the switch's Contact
    assert where == gw.trunk.destination()
    gw.receive(make_response(bye, 200), 40.1)
    assert gw.legs.legs == {} and gw.legs.next_deadline() is None  # over and forgotten


def test_a_bye_asked_for_before_the_ack_waits_for_it() -> None:
    gw, leg, invite, ok = answered()
    gw.legs.run(leg, leg.hangup(1.0))
    assert gw.wire.requests("BYE") == [], "§15: no BYE before the ACK"
    gw.receive(in_dialog(invite, "ACK", ok.to, 7), 2.0)
    [(bye, _)] = gw.wire.requests("BYE")
    assert bye.cseq.method == "BYE" and gw.of(Ended) == []


def test_a_retransmitted_invite_gets_the_last_provisional_then_the_final_from_its_transaction(
) -> None:  # fmt: skip
    gw, leg, invite = called()
    gw.legs.run(leg, leg.progress(183, 0.0, sdp=SDP))
    gw.receive(invite, 1.0)
    assert [r.status for _, r in gw.wire.responses()] == [100, 183, 183]
    assert gw.wire.responses(183)[-1][1].to.tag == "gw"
    gw.legs.run(leg, leg.reject(486, 2.0))
    gw.receive(invite, 2.1)
    assert [r.status for _, r in gw.wire.responses()][-2:] == [486, 486]
    assert len(gw.requests) == 1, "a retransmission never reaches the agent"
    gw.legs.run(leg, leg.answer(SDP, 3.0))
    assert gw.wire.responses(200) == []  # one final response only
    assert gw.legs.legs == {}


@pytest.mark.parametrize("answer_first", [False, True], ids=["before-200", "after-200"])
def test_cancel_gets_487_before_the_200_and_changes_nothing_after_it(answer_first: bool) -> None:
    gw, leg, invite = called()
    gw.legs.run(leg, leg.progress(183, 0.0, sdp=SDP))
    if answer_first:
        gw.legs.run(leg, leg.answer(SDP, 1.0))
    cancel = make_request(
        "CANCEL", invite.uri, via=invite.top_via, from_=invite.from_, to=invite.to,
        call_id="c1", cseq=7,
    )  # fmt: skip
    gw.receive(cancel, 2.0)
    [(request, key)] = gw.requests[1:]
    found = gw.trunk.layer.find_invite_for_cancel(request)
    assert found is not None and gw.legs.invite_leg(found.key) is leg  # §9.2: it matches
    assert key is not None
    gw.legs.run(leg, leg.on_cancel(key, request, 2.0))
    finals = [(r.status, r.cseq.method) for _, r in gw.wire.responses() if r.status >= 200]
    if answer_first:
        assert finals == [(200, "INVITE"), (200, "CANCEL")] and gw.of(Ended) == []
    else:
        assert finals == [(200, "CANCEL"), (487, "INVITE")]
        assert gw.of(Ended) == [Ended(leg="c1", reason="cancelled")]


# -- the gateway INVITEs the switch (a ringing line): OutgoingLeg -----------------------------
def build(attempt: int, extra: list[tuple[str, str]]) -> Request:
    return make_request(
        "INVITE", SipUri(user="inbound", host=SWITCH[0], port=SWITCH[1]), via=via(*GATEWAY),
        from_=NameAddress(uri=SipUri(user="555", host=SWITCH[0]), params=(("tag", "gw"),)),
        to=NameAddress(uri=SipUri(user="inbound", host=SWITCH[0])), call_id="c2", cseq=attempt,
        contact=NameAddress(uri=SipUri(host=GATEWAY[0], port=GATEWAY[1])), headers=extra,
        body=SDP, content_type="application/sdp",
    )  # fmt: skip


def answer(request: Request, status: int, **headers: str) -> Response:
    fields = [("Contact", f"<sip:{SWITCH[0]}:{SWITCH[1]}>"), *headers.items()]
    tag = None if status == 100 else "sw"
    return make_response(request, status, to_tag=tag, headers=fields,
                         body=SDP if status == 200 else b"")  # fmt: skip


def invites(gw: Gateway) -> list[Request]:
    return [r for r, _ in gw.wire.requests("INVITE")]


def test_a_407_is_answered_with_a_new_invite_whose_ack_carries_the_credentials() -> None:
    gw = Gateway()
    gw.legs.outgoing(build)
    [first] = invites(gw)
    challenge = answer(first, 407, **{"Proxy-Authenticate": CHALLENGE})
    gw.receive(challenge, 0.1)
    sent = [m.method for _, m, _ in gw.wire.sent if isinstance(m, Request)]
    assert sent == ["INVITE", "ACK", "INVITE"]  # the layer ACKs the 407 (§17.1.1.3)
    [_, second] = invites(gw)
    assert second.cseq.seq == 2 and second.call_id == first.call_id
    assert second.from_.tag == "gw" and second.top_via.branch != first.top_via.branch
    credentials = second.headers.get("proxy-authorization") or ""
    assert credentials.startswith("Digest ") and 'username="line1"' in credentials
    assert gw.of(Failed) == [], "the challenge is answered, not reported"
    gw.receive(answer(second, 180), 0.2)
    ok = answer(second, 200)
    gw.receive(ok, 0.3)
    gw.receive(ok, 0.8)  # a copy of the 2xx: our ACK was lost
    acks = [r for r in gw.wire.every("ACK") if r.cseq.seq == 2]
    assert len(acks) == 2 and acks[0] == acks[1], "every 2xx copy gets the same ACK (§13.2.2.4)"
    assert acks[0].headers.get("proxy-authorization") == credentials
    assert [type(e) for e in gw.events] == [Progress, Answered]


def test_a_2xx_that_crossed_our_cancel_is_acked_and_byed() -> None:
    gw = Gateway()
    leg = gw.legs.outgoing(build)
    [invite] = invites(gw)
    gw.legs.run(leg, leg.hangup(0.5))
    assert gw.wire.requests("CANCEL") == [], "no CANCEL before a provisional (§9.1)"
    gw.receive(answer(invite, 100), 0.6)
    [(cancel, _)] = gw.wire.requests("CANCEL")
    assert cancel.top_via.branch == invite.top_via.branch
    gw.receive(answer(invite, 200), 0.7)
    assert [r.method for r, _ in gw.wire.requests("ACK")] == ["ACK"]
    [(bye, _)] = gw.wire.requests("BYE")
    assert bye.to.tag == "sw" and bye.cseq.seq > invite.cseq.seq
    assert gw.of(Answered) == [], "the agent gave the call up: it never hears of the answer"
    gw.receive(make_response(bye, 200), 0.8)
    gw.run_until(100.0)
    assert gw.legs.legs == {}


def test_no_answer_to_our_invite_is_a_408_failure() -> None:
    gw = Gateway()
    gw.legs.outgoing(build)
    gw.run_until(40.0)  # Timer B: 64*T1
    assert len(gw.wire.every("INVITE")) == 7  # 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5
    assert gw.of(Failed) == [Failed(leg="c2", status=408, reason="no response")]
    assert gw.legs.legs == {}
