"""What the leg tests share: a LegSetup of fakes and a peer that builds the messages it sends.

Legs are sans-I/O: a test constructs one, hands it ``Request``/``Response`` objects (round
tripped through bytes, as the wire would) with ``now`` values it chooses, and reads the outputs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TypeVar

from pbx.calls.leg import Leg, LegSetup
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.calls.outputs import (
    CancelClient,
    Ended,
    Output,
    Respond,
    StartClient,
    Transmit,
)
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_request, make_response, parse_message
from pbx.sip.transaction import ClientKey, ServerKey
from pbx.sip.uri import SipUri
from pbx.transport.flow import Destination, Flow

T = TypeVar("T")
SWITCH = ("127.0.0.1", 5060)
PEER = ("127.0.0.1", 40201)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
T0 = 100.0
"""Where the fake clock starts."""


@dataclass
class Randomness:
    """The setup's sources: counted tags and branches, and a record of each delay asked for."""

    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    delays: list[tuple[float, float]] = field(default_factory=list)
    pick: float = 0.5
    """Where in [low, high) each random delay falls (0 = low)."""

    def delay(self, low: float, high: float) -> float:
        self.delays.append((low, high))
        return low + (high - low) * self.pick


def make_setup(randomness: Randomness | None = None, *, refresh: float = 900.0) -> LegSetup:
    rnd = randomness or Randomness()
    return LegSetup(
        server="Switchboard",
        contact=lambda transport: NameAddress(
            uri=SipUri(user="switchboard", host=SWITCH[0], port=SWITCH[1])
        ),
        new_via=lambda transport: Via(
            transport="UDP",
            host=SWITCH[0],
            port=SWITCH[1],
            params=(("branch", f"z9hG4bKsw{next(rnd.counter)}"),),
        ),
        new_tag=lambda: f"swtag{next(rnd.counter)}",
        random_delay=rnd.delay,
        refresh=refresh,
    )


def wire(message: Request | Response) -> Request | Response:
    """``message`` as the other side parses it."""
    parsed = parse_message(bytes(message))
    assert isinstance(parsed, Request | Response)
    return parsed


def wire_request(message: Request) -> Request:
    parsed = wire(message)
    assert isinstance(parsed, Request)
    return parsed


def wire_response(message: Response) -> Response:
    parsed = wire(message)
    assert isinstance(parsed, Response)
    return parsed


def server_key(request: Request) -> ServerKey:
    via = request.top_via
    return ServerKey(via.branch or "", f"{via.host}:{via.port}", request.method)


def client_key(request: Request) -> ClientKey:
    return ClientKey(request.top_via.branch or "", request.method)


def run_timers(leg: Leg, until: float) -> list[tuple[float, list[Output]]]:
    """Fire ``leg``'s deadlines in order up to ``until``: (when, outputs) for each."""
    fired: list[tuple[float, list[Output]]] = []
    while True:
        deadline = leg.next_deadline()
        if deadline is None or deadline > until:
            return fired
        fired.append((deadline, leg.handle_timer(deadline)))
        assert len(fired) < 1000, "a timer that never stops firing"


def reply(request: Request, status: int = 200, *, body: bytes = b"") -> Response:
    """A peer's response to a request the switch sent it (within a dialog: To has its tag)."""
    headers = [("Contact", f"<sip:peer@{PEER[0]}:{PEER[1]}>")]
    if body:
        headers.append(("Content-Type", "application/sdp"))
    return wire_response(make_response(request, status, headers=headers, body=body))


# -- reading outputs -----------------------------------------------------------------------
def of_type(outputs: Iterable[object], kind: type[T]) -> list[T]:
    return [o for o in outputs if isinstance(o, kind)]


def responses(outputs: Iterable[object]) -> list[Response]:
    """Every response a leg sends: in a transaction (Respond) or outside it (Transmit)."""
    found: list[Response] = []
    for output in outputs:
        if isinstance(output, Respond):
            found.append(output.response)
        elif isinstance(output, Transmit) and isinstance(output.message, Response):
            found.append(output.message)
    return found


def statuses(outputs: Iterable[object]) -> list[int]:
    return [r.status for r in responses(outputs)]


def requests(outputs: Iterable[object], method: str | None = None) -> list[Request]:
    """Every request a leg sends: new client transactions and ACKs."""
    found: list[Request] = []
    for output in outputs:
        if isinstance(output, StartClient):
            found.append(output.request)
        elif isinstance(output, Transmit) and isinstance(output.message, Request):
            found.append(output.message)
    return [r for r in found if method is None or r.method == method]


def ended(outputs: Iterable[object]) -> list[str]:
    return [o.reason for o in outputs if isinstance(o, Ended)]


def cancels(outputs: Iterable[object]) -> list[ClientKey]:
    return [o.key for o in outputs if isinstance(o, CancelClient)]


# -- the phone across an incoming leg (it sent the INVITE) ---------------------------------
class Caller:
    """The phone that calls the switch: its INVITE and what it sends in that dialog."""

    def __init__(self, *, body: bytes = SDP, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.branches = itertools.count(1)
        self.seq = 1
        self.invite = wire_request(
            make_request(
                "INVITE",
                SipUri(user="202", host=SWITCH[0]),
                via=self.via(),
                from_=NameAddress(uri=SipUri(user="201", host=PEER[0]), params=(("tag", "ct"),)),
                to=NameAddress(uri=SipUri(user="202", host=SWITCH[0])),
                call_id="in-call@test",
                cseq=1,
                contact=NameAddress(uri=SipUri(user="201", host=PEER[0], port=PEER[1])),
                headers=headers,
                body=body,
                content_type="application/sdp" if body else None,
            )
        )

    def via(self) -> Via:
        return Via(
            transport="UDP",
            host=PEER[0],
            port=PEER[1],
            params=(("branch", f"z9hG4bKc{next(self.branches)}"),),
        )

    def leg(self, setup: LegSetup, *, reliable_1xx: bool = False) -> IncomingLeg:
        return IncomingLeg(
            id="in",
            setup=setup,
            transport="UDP",
            reliable=False,
            destination=Destination(transport="UDP", host=PEER[0], port=PEER[1]),
            invite=self.invite,
            invite_key=server_key(self.invite),
            peer_flow=Flow(transport="UDP", local=SWITCH, remote=PEER),
            local_tag="swt",
            reliable_1xx=reliable_1xx,
        )

    def answer_to(self, request: Request, status: int = 200, *, body: bytes = b"") -> Response:
        """The caller's response to a request the switch sent it in the dialog."""
        return reply(request, status, body=body)

    def request(
        self,
        method: str,
        *,
        to_tag: str = "swt",
        body: bytes = b"",
        seq: int | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> Request:
        """A request in the dialog (ACK and CANCEL carry the INVITE's CSeq unless told)."""
        if seq is None:
            if method in ("ACK", "CANCEL"):
                seq = 1
            else:
                self.seq += 1
                seq = self.seq
        invite = self.invite
        to = NameAddress(uri=invite.to.uri, params=(("tag", to_tag),))
        if method == "CANCEL":
            to = invite.to  # §9.1: the CANCEL's To is the INVITE's
        return wire_request(
            make_request(
                method,
                SipUri(user="switchboard", host=SWITCH[0], port=SWITCH[1]),
                via=invite.top_via if method == "CANCEL" else self.via(),
                from_=invite.from_,
                to=to,
                call_id=invite.call_id,
                cseq=seq,
                contact=NameAddress(uri=SipUri(user="201", host=PEER[0], port=PEER[1])),
                headers=headers,
                body=body,
                content_type="application/sdp" if body else None,
            )
        )


# -- the phone across an outgoing leg (it gets the INVITE) ---------------------------------
class Callee:
    """The phone the switch calls: the INVITE of an outgoing leg and its answers."""

    def __init__(self) -> None:
        self.branches = itertools.count(1)
        self.seq = 0
        self.invite = wire_request(
            make_request(
                "INVITE",
                SipUri(user="202", host=PEER[0], port=PEER[1]),
                via=Via(
                    transport="UDP",
                    host=SWITCH[0],
                    port=SWITCH[1],
                    params=(("branch", "z9hG4bKo1"),),
                ),
                from_=NameAddress(uri=SipUri(user="201", host=SWITCH[0]), params=(("tag", "sw"),)),
                to=NameAddress(uri=SipUri(user="202", host=SWITCH[0])),
                call_id="out-call@switchboard",
                cseq=1,
                contact=NameAddress(uri=SipUri(user="switchboard", host=SWITCH[0], port=5060)),
                headers=[("Supported", "100rel")],
                body=SDP,
                content_type="application/sdp",
            )
        )

    def leg(self, setup: LegSetup) -> OutgoingLeg:
        return OutgoingLeg(
            id="out",
            setup=setup,
            transport="UDP",
            reliable=False,
            destination=Destination(transport="UDP", host=PEER[0], port=PEER[1]),
            invite=self.invite,
        )

    def answer(
        self,
        request: Request,
        status: int,
        *,
        tag: str | None = "ce",
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> Response:
        extra = list(headers)
        if not any(name.lower() == "contact" for name, _ in extra):
            extra.insert(0, ("Contact", f"<sip:202@{PEER[0]}:{PEER[1]}>"))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        return wire_response(make_response(request, status, to_tag=tag, headers=extra, body=body))

    def request(
        self, method: str, *, tag: str = "ce", body: bytes = b"", seq: int | None = None
    ) -> Request:
        """A request in the dialog the callee answered with To tag ``tag``."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        invite = self.invite
        return wire_request(
            make_request(
                method,
                SipUri(user="switchboard", host=SWITCH[0], port=SWITCH[1]),
                via=Via(
                    transport="UDP",
                    host=PEER[0],
                    port=PEER[1],
                    params=(("branch", f"z9hG4bKe{next(self.branches)}"),),
                ),
                from_=NameAddress(uri=invite.to.uri, params=(("tag", tag),)),
                to=invite.from_,
                call_id=invite.call_id,
                cseq=seq,
                contact=NameAddress(uri=SipUri(user="202", host=PEER[0], port=PEER[1])),
                body=body,
                content_type="application/sdp" if body else None,
            )
        )
