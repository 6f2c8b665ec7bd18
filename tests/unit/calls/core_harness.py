"""The call core in memory: phones as plain message builders, a fake clock, no sockets.

``Office`` holds a ``CallCore`` with a directory of extensions and their contacts, a relay that
hands out fixed addresses, and an admission that takes the From user as the caller (the digest
rules have their own tests). Messages the core sends are parsed back from bytes and kept per
destination, so a test reads what each phone got, in order.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace
from typing import Any

from pbx.apps.context import CallPolicy
from pbx.calls.admission import Admission, Refusal
from pbx.calls.core import Addresses, CallCore
from pbx.calls.leg import LegSetup
from pbx.calls.outputs import CloseRelay, OpenRelay, Persist, Transmit
from pbx.routing.dialplan import DEFAULT_BLOCKED, LinePlan
from pbx.routing.feature_codes import (
    DndOff,
    DndOn,
    FeatureCodes,
    FeatureCommand,
    FeatureOutcome,
    ForwardAlwaysOff,
    ForwardAlwaysOn,
)
from pbx.sip.auth import DigestAuthenticator
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_request, make_response, parse_message
from pbx.sip.transaction import SendMessage
from pbx.sip.uri import SipUri
from pbx.store.extensions import Extension
from pbx.store.records import Binding, ForwardingRecord
from pbx.transport.flow import Destination, Flow

SWITCH = ("127.0.0.1", 5060)
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def sdp(port: int, version: int = 1) -> bytes:
    return SDP.replace(b"4000", str(port).encode()).replace(b"1 1 IN", f"1 {version} IN".encode())


class FakeRelay:
    def __init__(self, name: str) -> None:
        self.name = name
        self.updates: list[tuple[str, dict[str, Any]]] = []
        self.closed = False

    def local_address(self, leg: str) -> tuple[str, int]:
        return ("127.0.0.1", 30000 if leg == "a" else 30002)

    def update(self, leg: str, **kwargs: Any) -> None:
        self.updates.append((leg, kwargs))

    def stats(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        self.closed = True


class OpenAdmission(Admission):
    """Every caller is who its From says: the call core is under test, not Digest."""

    def authenticate(self, request: Request, source_host: str, wall: float) -> str | Refusal:
        uri = request.from_.uri
        return uri.user if isinstance(uri, SipUri) and uri.user else Refusal(status=403)


@dataclass
class FakeDirectory:
    extensions: dict[str, Extension] = field(default_factory=dict)
    bindings: dict[str, list[Binding]] = field(default_factory=dict)

    def extension(self, number: str) -> Extension | None:
        return self.extensions.get(number)

    def is_line(self, number: str) -> bool:
        return number == "line"

    def inbound_numbers(self) -> list[str]:
        return sorted(self.extensions)

    def line_plan(self) -> LinePlan:
        return LinePlan(
            outside_prefix="9",
            outbound_patterns=(),
            blocked_prefixes=DEFAULT_BLOCKED,
            country="US",
        )

    def reachable(self, aor: str) -> list[Binding]:
        return list(self.bindings.get(aor, []))

    def feature_codes(self) -> FeatureCodes:
        return FeatureCodes()

    def apply_feature(self, number: str, command: FeatureCommand, now: float) -> FeatureOutcome:
        """The store's rules in small (``pbx/store/feature_codes.py`` has its own tests):
        a target must be an extension other than the caller."""
        found = self.extensions.get(number)
        if found is None:
            return FeatureOutcome(404, "Not Found")
        if isinstance(command, ForwardAlwaysOn):
            if not command.dest:
                return FeatureOutcome(484, "Address Incomplete")
            if command.dest == number:
                return FeatureOutcome(482, "Loop Detected")
            if command.dest not in self.extensions:
                return FeatureOutcome(404, "Not Found")
        change: dict[str, object] = (
            {"always": command.dest} if isinstance(command, ForwardAlwaysOn)
            else {"always": None} if isinstance(command, ForwardAlwaysOff)
            else {"dnd": isinstance(command, DndOn)} if isinstance(command, DndOn | DndOff)
            else {}
        )  # fmt: skip
        self.forward(number, **change)
        return FeatureOutcome(200, "Done")

    def forward(self, number: str, **change: object) -> None:
        """Change extension ``number``'s forwarding (always=, busy=, dnd=, after=...)."""
        found = self.extensions[number]
        record = found.forwarding or ForwardingRecord(number=number)
        self.extensions[number] = replace(found, forwarding=replace(record, **change))  # type: ignore[arg-type]


def extension(number: str) -> Extension:
    return Extension(
        number=number,
        display_name="",
        outbound_allowed=True,
        last_auth_algorithm=None,
        created_at=0.0,
        updated_at=0.0,
    )


@dataclass
class Phone:
    """A phone at ``port`` on 127.0.0.1 (UDP), registered as ``number``."""

    number: str
    port: int
    office: Office
    got: list[Request | Response] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def flow(self) -> Flow:
        return Flow(transport="UDP", local=SWITCH, remote=("127.0.0.1", self.port))

    def send(self, message: Request | Response) -> None:
        self.office.deliver(message, self)

    def requests(self, method: str) -> list[Request]:
        return [m for m in self.got if isinstance(m, Request) and m.method == method]

    def responses(self, status: int | None = None) -> list[Response]:
        return [
            m
            for m in self.got
            if isinstance(m, Response) and (status is None or m.status == status)
        ]

    def last(self, method: str) -> Request:
        found = self.requests(method)
        assert found, f"{self.number} got no {method}: {[_brief(m) for m in self.got]}"
        return found[-1]

    # -- building messages ---------------------------------------------------------------
    def invite(
        self,
        to: str,
        body: bytes = SDP,
        *,
        call_id: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Request:
        n = next(self.seq)
        return make_request(
            "INVITE",
            SipUri(user=to, host="127.0.0.1"),
            via=self._via(f"inv{n}"),
            from_=NameAddress(
                uri=SipUri(user=self.number, host="127.0.0.1"), params=(("tag", f"t{self.number}"),)
            ),
            to=NameAddress(uri=SipUri(user=to, host="127.0.0.1")),
            call_id=call_id or f"call-{self.number}-{n}@test",
            cseq=1,
            contact=NameAddress(uri=SipUri(user=self.number, host="127.0.0.1", port=self.port)),
            headers=headers,
            body=body,
            content_type="application/sdp" if body else None,
        )

    def _via(self, branch: str) -> Via:
        return Via(
            transport="UDP",
            host="127.0.0.1",
            port=self.port,
            params=(("branch", f"z9hG4bK{self.number}{branch}"),),
        )

    def answer(
        self,
        request: Request,
        status: int = 200,
        body: bytes = b"",
        *,
        tag: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Response:
        extra = [("Contact", f"<sip:{self.number}@127.0.0.1:{self.port}>"), *headers]
        if body:
            extra.append(("Content-Type", "application/sdp"))
        response = make_response(
            request, status, to_tag=tag or f"r{self.number}", headers=extra, body=body
        )
        self.send(response)
        return response

    def in_dialog(
        self,
        method: str,
        peer: Request | Response,
        seq: int,
        body: bytes = b"",
        *,
        branch: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> Request:
        """A request in the dialog that ``peer`` (a request we got, or a response to ours)
        belongs to, sent to the switch."""
        if isinstance(peer, Request):  # we are the UAS of that dialog
            local, remote = peer.to, peer.from_
            local = (
                NameAddress(uri=local.uri, params=(("tag", f"r{self.number}"),))
                if local.tag is None
                else local
            )
        else:
            local, remote = peer.from_, peer.to
        contact = (
            peer.contacts[0].uri if peer.contacts else SipUri(user="switchboard", host="127.0.0.1")
        )
        request = make_request(
            method,
            contact,
            via=self._via(branch or f"{method}{seq}"),
            from_=local,
            to=remote,
            call_id=peer.call_id,
            cseq=seq,
            contact=NameAddress(uri=SipUri(user=self.number, host="127.0.0.1", port=self.port)),
            headers=headers,
            body=body,
            content_type="application/sdp" if body else None,
        )
        self.send(request)
        return request


def _brief(message: Request | Response) -> str:
    if isinstance(message, Request):
        return f"{message.method}"
    return f"{message.status} {message.cseq.method}"


class Office:
    """The core with phones around it and a clock a test moves."""

    def __init__(self, *numbers: str, policy: CallPolicy | None = None) -> None:
        self.now = 1000.0
        self.phones: dict[str, Phone] = {}
        self.directory = FakeDirectory()
        self.relays: list[FakeRelay] = []
        self.rows: list[object] = []
        self.drop: list[Any] = []
        tags = itertools.count(1)
        self.core = CallCore(
            setup=LegSetup(
                server="Switchboard",
                contact=lambda t: NameAddress(
                    uri=SipUri(user="switchboard", host="127.0.0.1", port=5060)
                ),
                new_via=lambda t: Via(
                    transport="UDP",
                    host="127.0.0.1",
                    port=5060,
                    params=(("branch", f"z9hG4bKsw{next(tags)}"),),
                ),
                new_tag=lambda: f"sw{next(tags)}",
                random_delay=lambda low, high: (low + high) / 2,
            ),
            directory=self.directory,
            admission=OpenAdmission(
                authenticator=DigestAuthenticator(realm="t", secret=b"x" * 32),
                secrets_of=lambda n: None,
                record_failure=lambda host, wall: None,
                new_salt=lambda: b"\0" * 8,
            ),
            addresses=Addresses(local=lambda transport: SWITCH),
            new_call_id=lambda: f"b{next(tags)}@switchboard",
            wall=lambda: self.now + 1_700_000_000,
            policy=policy,
        )
        for number in numbers:
            self.add(number)

    def add(self, number: str, port: int | None = None, *, name: str | None = None) -> Phone:
        """A phone of extension ``number``; ``name`` keys a second device of the same one."""
        phone = Phone(number, port or 40000 + int(number) % 1000, self)
        self.phones[name or number] = phone
        self.directory.extensions.setdefault(number, extension(number))
        self.directory.bindings.setdefault(number, []).append(
            Binding(
                aor=number,
                binding_key=f"k{phone.port}",
                contact=f"sip:{number}@127.0.0.1:{phone.port}",
                expires_at=1e12,
                received_host="127.0.0.1",
                received_port=phone.port,
                transport="UDP",
                call_id="reg",
                cseq=1,
                registered_at=0.0,
            )
        )
        return phone

    def __getitem__(self, number: str) -> Phone:
        return self.phones[number]

    # -- the wire --------------------------------------------------------------------------
    def deliver(self, message: Request | Response, phone: Phone) -> None:
        wire = parse_message(bytes(message))
        assert isinstance(wire, Request | Response)
        self._carry_out(self.core.receive(wire, phone.flow, self.now))

    def open_relays(self) -> list[FakeRelay]:
        return [r for r in self.relays if not r.closed]

    def advance(self, seconds: float) -> None:
        """Move the clock, firing every deadline on the way in order."""
        end = self.now + seconds
        while True:
            deadline = self.core.next_deadline()
            if deadline is None or deadline > end:
                break
            self.now = max(self.now, deadline)
            self._carry_out(self.core.handle_timer(self.now))
        self.now = end

    def _carry_out(self, outputs: list[Any]) -> None:
        for output in outputs:
            if isinstance(output, SendMessage):
                destination = output.destination
                port = destination.remote[1] if isinstance(destination, Flow) else destination.port
                self._to(port, output.message)
            elif isinstance(output, Transmit):
                if output.destination is not None:
                    self._to(output.destination.port, output.message)
                else:
                    assert output.flow is not None
                    self._to(output.flow.remote[1], output.message)
            elif isinstance(output, OpenRelay):
                relay = FakeRelay(output.name)
                self.relays.append(relay)
                self._carry_out(self.core.relay_ready(output.app, relay, self.now))
            elif isinstance(output, CloseRelay):
                handle = output.relay
                assert isinstance(handle, FakeRelay), handle
                handle.closed = True
            elif isinstance(output, Persist):
                self.rows.append(output.row)

    def _to(self, port: int, message: Request | Response) -> None:
        if self.drop and self.drop[0](message):
            self.drop.pop(0)
            return
        wire = parse_message(bytes(message))
        assert isinstance(wire, Request | Response)
        for phone in self.phones.values():
            if phone.port == port:
                phone.got.append(wire)
                return
        raise AssertionError(f"nobody at port {port} for {_brief(wire)}")


def destination_of(phone: Phone) -> Destination:
    return Destination(transport="UDP", host="127.0.0.1", port=phone.port)


def answered(office: Office, caller: str = "201", callee: str = "202") -> tuple[Request, Response]:
    """``caller`` calls ``callee``, who answers; the INVITE the callee got and the caller's 200."""
    a, b = office[caller], office[callee]
    a.send(a.invite(callee))
    fork = b.last("INVITE")
    b.answer(fork, 200, sdp(5000))
    ok = a.responses(200)[-1]
    a.in_dialog("ACK", ok, 1)
    return fork, ok
