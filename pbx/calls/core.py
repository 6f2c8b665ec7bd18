"""The call core, sans-I/O: messages in, what to send out; legs, applications and one clock.

Every message goes through the transaction layer; what it delivers is routed to a leg (by the
INVITE's server transaction for CANCEL, by dialog for requests and ACKs in a dialog, by client
transaction for responses) or, for a new INVITE, admitted and given to the application the dial
plan picks. Legs' events go to the application that owns the leg; what the application does in
return is carried out here, until nothing is left. The edge gets only what touches the outside:
datagrams to send, relays to open and close, rows for the store.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from pbx.apps.context import App, CallPolicy, Directory
from pbx.apps.dial import DialApp, Target
from pbx.apps.feature_code import FeatureCall, FeatureCodeApp
from pbx.apps.replace import judge, replace
from pbx.apps.routes import Reject, route_invite
from pbx.calls.admission import Admission, Admitted, Refusal
from pbx.calls.leg import Leg, LegSetup
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.leg_states import LegState
from pbx.calls.outputs import (
    AppOutput,
    CancelClient,
    CloseRelay,
    LegEvent,
    Output,
    Respond,
    ServerTxKey,
    StartClient,
    Transmit,
)
from pbx.sip.dialog import uas_dialog_id
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.replaces import Replaces, replaces_of_request
from pbx.sip.transaction import (
    ClientKey,
    DeliverMessage,
    SendMessage,
    TransactionTerminated,
    TransactionTimeout,
    TransportErrorReported,
)
from pbx.sip.transaction import Output as TxOutput
from pbx.sip.transaction_layer import Incoming, TransactionLayer, client_key_of_response
from pbx.transport.flow import Destination, Flow

log = logging.getLogger("pbx.calls")

CALL_METHODS = (
    "INVITE", "ACK", "CANCEL", "BYE", "UPDATE", "INFO", "PRACK", "MESSAGE", "REFER", "NOTIFY",
)  # fmt: skip
EdgeOutput: TypeAlias = SendMessage | Transmit | AppOutput


@dataclass(frozen=True, slots=True, kw_only=True)
class Addresses:
    """Where the switch listens, per transport (for the loop check and the From/To hosts)."""

    local: Callable[[str], tuple[str, int]]


@dataclass(frozen=True, slots=True)
class Residue:
    """What an ended leg leaves behind for a client transaction still running: the ACK."""

    ack: bytes | None
    destination: Destination


class CallCore:
    def __init__(
        self,
        *,
        setup: LegSetup,
        directory: Directory,
        admission: Admission,
        addresses: Addresses,
        new_call_id: Callable[[], str],
        wall: Callable[[], float],
        policy: CallPolicy | None = None,
    ) -> None:
        self.setup = setup
        self.directory = directory
        self.admission = admission
        self.addresses = addresses
        self.new_call_id = new_call_id
        self.wall = wall
        self.policy = policy or CallPolicy()
        self.tl = TransactionLayer()
        self._apps: dict[str, App] = {}
        self._owner: dict[str, App] = {}
        self._legs_by_call_id: dict[str, list[Leg]] = {}
        self._by_invite: dict[ServerTxKey, IncomingLeg] = {}
        self._by_client: dict[ClientKey, Leg | Residue] = {}
        self._client_keys: dict[str, list[ClientKey]] = {}
        self._line_apps: set[str] = set()
        self._heap: list[tuple[float, int, str]] = []
        self._scheduled: dict[str, float] = {}
        self._seq = 0
        self._edge: list[EdgeOutput] = []
        self._touched: set[str] = set()

    # -- the context applications see --------------------------------------------------------
    def add_leg(self, leg: Leg, owner: App) -> None:
        leg.owner = owner
        self._owner[leg.id] = owner
        self._legs_by_call_id.setdefault(leg.call_id, []).append(leg)
        if isinstance(leg, IncomingLeg):
            self._by_invite[leg.invite_key] = leg

    def adopt(self, leg: Leg, owner: App) -> None:
        """``leg`` belongs to ``owner`` from now on (a transfer moves legs between apps)."""
        leg.owner = owner
        self._owner[leg.id] = owner

    def local_host(self, transport: str) -> str:
        host = self.addresses.local(transport)[0]
        return f"[{host}]" if ":" in host else host

    def line_busy(self) -> bool:
        """A call is on the one analog line (those that started on it; the gateway refuses a
        second call by itself should a forward reach it later)."""
        for app_id in list(self._line_apps):
            app = self._apps.get(app_id)
            if app is None or app.done:
                self._line_apps.discard(app_id)
            elif isinstance(app, DialApp) and app.via_line:
                return True
        return False

    def apps(self) -> list[App]:
        return list(self._apps.values())

    def new_app_id(self) -> str:
        self._seq += 1
        return f"call{self._seq}"

    def start_app(self, app: App) -> None:
        self._apps[app.id] = app
        self._touched.add(app.id)

    def leg_replaced_by(self, replaces: Replaces) -> Leg | None:
        """The leg whose dialog a Replaces names (RFC 3891 §3: its to-tag is our tag)."""
        for leg in self._legs_by_call_id.get(replaces.call_id, ()):
            if leg.dialog is not None and replaces.matches(leg.dialog.id):
                return leg
        return None

    # -- in ----------------------------------------------------------------------------------
    def receive(self, message: Request | Response, flow: Flow, now: float) -> list[EdgeOutput]:
        incoming = Incoming(message=message, source=flow, reliable=flow.reliable)
        self._transactions(self.tl.receive(incoming, now), now)
        return self._finish(now)

    def owns_response(self, response: Response) -> bool:
        key = client_key_of_response(response)
        return key is not None and self.tl.get(key) is not None

    def handle_timer(self, now: float) -> list[EdgeOutput]:
        self._transactions(self.tl.handle_timer(now), now)
        while self._heap and self._heap[0][0] <= now:
            at, _, app_id = heapq.heappop(self._heap)
            if self._scheduled.get(app_id) != at:
                continue
            del self._scheduled[app_id]
            app = self._apps.get(app_id)
            if app is not None:
                self._touched.add(app_id)
                self._run(app.handle_timer(now), now)
        return self._finish(now)

    def next_deadline(self) -> float | None:
        deadlines = [d for d in (self.tl.next_deadline(),) if d is not None]
        while self._heap and self._scheduled.get(self._heap[0][2]) != self._heap[0][0]:
            heapq.heappop(self._heap)
        if self._heap:
            deadlines.append(self._heap[0][0])
        return min(deadlines) if deadlines else None

    def relay_ready(self, app_id: str, relay: Any, now: float) -> list[EdgeOutput]:
        app = self._apps.get(app_id)
        if app is None:
            return [CloseRelay(relay=relay)]
        self._touched.add(app_id)
        self._run(app.relay_ready(relay, now), now)
        return self._finish(now)

    def relay_failed(self, app_id: str, now: float) -> list[EdgeOutput]:
        app = self._apps.get(app_id)
        if app is not None:
            self._touched.add(app_id)
            self._run(app.relay_failed(now), now)
        return self._finish(now)

    def stop(self, now: float) -> list[EdgeOutput]:
        for app in list(self._apps.values()):
            self._touched.add(app.id)
            self._run(app.stop(now), now)
        return self._finish(now)

    # -- what the transaction layer says ---------------------------------------------------
    def _transactions(self, outputs: list[TxOutput], now: float) -> None:
        for output in outputs:
            if isinstance(output, SendMessage):
                self._edge.append(output)
            elif isinstance(output, DeliverMessage):
                try:
                    self._deliver(output, now)
                except SipParseError as exc:
                    message = output.message
                    if isinstance(message, Request) and output.key is not None:
                        self._refuse(
                            output.key,
                            message,
                            Refusal(
                                status=exc.status,
                                reason=exc.reason,
                            ),
                            now,
                        )
            elif isinstance(output, TransactionTimeout | TransportErrorReported):
                key = output.key
                leg = self._by_client.get(key) if isinstance(key, ClientKey) else None
                if isinstance(leg, Leg) and isinstance(key, ClientKey):
                    self._leg_call(leg, leg.on_client_failure(key, now), now)
            elif isinstance(output, TransactionTerminated) and isinstance(output.key, ClientKey):
                leg = self._by_client.pop(output.key, None)
                if isinstance(leg, Leg):
                    leg.forget_client(output.key)
                    keys = self._client_keys.get(leg.id)
                    if keys is not None and output.key in keys:
                        keys.remove(output.key)
                        if not keys:
                            del self._client_keys[leg.id]

    def transport_error(self, key: Any, now: float) -> list[EdgeOutput]:
        self._transactions(self.tl.transport_error(key, now, "send failed"), now)
        return self._finish(now)

    def _deliver(self, output: DeliverMessage, now: float) -> None:
        message = output.message
        if isinstance(message, Response):
            assert isinstance(output.key, ClientKey)
            leg = self._by_client.get(output.key)
            if isinstance(leg, Residue):
                if leg.ack is not None and 200 <= message.status < 300:
                    # §13.2.2.4: a copy of a 2xx of a call long over gets its ACK again.
                    ack = parse_message(leg.ack)
                    assert isinstance(ack, Request)
                    self._edge.append(Transmit(message=ack, destination=leg.destination))
            elif leg is not None:
                self._leg_call(leg, leg.on_response(output.key, message, now), now)
                if leg.state is LegState.TERMINATED and leg.id not in self._owner:
                    self._shrink(leg)
            return
        flow = output.source
        assert isinstance(flow, Flow)
        key = output.key
        if message.method == "ACK":
            leg = self._dialog_leg(message)
            if leg is not None:
                self._leg_call(leg, leg.on_ack(message, now), now)
            return
        assert key is not None and not isinstance(key, ClientKey)
        if message.method == "CANCEL":
            invite_tx = self.tl.find_invite_for_cancel(message)
            target = self._by_invite.get(invite_tx.key) if invite_tx is not None else None  # type: ignore[arg-type]
            if target is None:
                self._refuse(key, message, Refusal(status=481), now)
                return
            self._leg_call(target, target.on_cancel(key, message, now), now)
        elif message.to.tag is None:
            if message.method == "INVITE":
                self._new_invite(key, message, flow, now)
            else:
                self._refuse(key, message, Refusal(status=481), now)  # §12.2.2
        else:
            leg = self._dialog_leg(message)
            if leg is None:
                self._refuse(key, message, Refusal(status=481), now)
                return
            self._leg_call(leg, leg.on_request(key, message, now), now)

    def _dialog_leg(self, request: Request) -> Leg | None:
        dialog_id = uas_dialog_id(request)
        if dialog_id is None:
            return None
        for leg in self._legs_by_call_id.get(request.call_id, ()):
            if leg.dialog is not None and leg.dialog.id == dialog_id:
                return leg
        return None

    # -- a new call ----------------------------------------------------------------------
    def _new_invite(self, key: ServerTxKey, invite: Request, flow: Flow, now: float) -> None:
        refusal = self.admission.precheck(invite, self.addresses.local(invite.top_via.transport))
        if refusal is not None:
            self._refuse(key, invite, refusal, now)
            return
        caller = self.admission.authenticate(invite, flow.remote[0], self.wall())
        if isinstance(caller, Refusal):
            self._refuse(key, invite, caller, now)
            return
        replaces = replaces_of_request("INVITE", invite.headers.get_all("replaces"))
        if replaces is not None:
            self._replace(key, invite, flow, caller, replaces, now)
            return
        target = route_invite(invite, caller, self.directory, line_busy=self.line_busy())
        if isinstance(target, Reject):
            refusal = Refusal(status=target.status, reason=target.reason, headers=target.headers)
            self._refuse(key, invite, refusal, now)
            return
        admitted = self.admission.session(invite)
        if isinstance(admitted, Refusal):
            self._refuse(key, invite, admitted, now)
            return
        self._start_dial(key, invite, flow, target, admitted, now)

    def _replace(
        self, key: ServerTxKey, invite: Request, flow: Flow, caller: str, replaces: Replaces,
        now: float,
    ) -> None:  # fmt: skip
        """RFC 3891 §3: the INVITE takes the place of a dialog of ours (``pbx.apps.replace``)."""
        verdict, named = judge(replaces, list(self._legs_by_call_id.get(replaces.call_id, ())),
                               caller)  # fmt: skip
        admitted = self.admission.session(invite)
        if isinstance(admitted, Refusal):
            self._refuse(key, invite, admitted, now)
            return
        if verdict.status is not None or named is None:
            self._refuse(key, invite, Refusal(status=verdict.status or 481), now)
            return
        leg = self._incoming_leg(self.new_app_id(), key, invite, flow, admitted.timer)
        owner = self._owner.get(named.id)
        if owner is None:
            self._refuse(key, invite, Refusal(status=481), now)
            return
        self.add_leg(leg, owner)
        self._touched.add(owner.id)
        out = leg.start(now)
        out += replace(self, named, leg, caller, admitted.offer, now)
        self._run(out, now)

    def _incoming_leg(
        self, app_id: str, key: ServerTxKey, invite: Request, flow: Flow, timer: Any
    ) -> IncomingLeg:
        return IncomingLeg(
            id=f"{app_id}/0",
            setup=self.setup,
            transport=flow.transport,
            reliable=flow.reliable,
            destination=Destination(
                transport=flow.transport, host=flow.remote[0], port=flow.remote[1]
            ),
            invite=invite,
            invite_key=key,
            peer_flow=flow,
            local_tag=self.setup.new_tag(),
            timer=timer,
            reliable_1xx="100rel" in [t.lower() for t in invite.option_tags("require")],
        )

    def _start_dial(
        self,
        key: ServerTxKey,
        invite: Request,
        flow: Flow,
        target: Target | FeatureCall,
        admitted: Admitted,
        now: float,
    ) -> None:
        app_id = self.new_app_id()
        leg = self._incoming_leg(app_id, key, invite, flow, admitted.timer)
        app: DialApp | FeatureCodeApp
        if isinstance(target, FeatureCall):  # feature-code hook: *72, *73, *78, *79
            app = FeatureCodeApp(
                id=app_id, ctx=self, leg=leg, call=target, wall=self.wall, offer=admitted.offer
            )
        else:
            app = DialApp(
                id=app_id, ctx=self, caller_leg=leg, target=target, started_at=self.wall(),
                wall=self.wall, offer=admitted.offer,
            )  # fmt: skip
        self._apps[app_id] = app
        if isinstance(app, DialApp) and app.via_line:
            self._line_apps.add(app_id)
        self.add_leg(leg, app)
        self._touched.add(app_id)
        self._run(app.start(now), now)

    def _refuse(self, key: Any, request: Request, refusal: Refusal, now: float) -> None:
        response = make_response(
            request,
            refusal.status,
            refusal.reason,
            to_tag=self.setup.new_tag(),
            headers=[*refusal.headers, ("Server", self.setup.server)],
        )
        self._transactions(self.tl.respond(key, response, now), now)

    # -- carrying out ----------------------------------------------------------------------
    def _leg_call(self, leg: Leg, outputs: list[Output], now: float) -> None:
        owner = self._owner.get(leg.id)
        if owner is not None:
            self._touched.add(owner.id)
        self._run(outputs, now)

    def _run(self, outputs: list[Output], now: float) -> None:
        queue = list(outputs)
        queue.reverse()
        while queue:
            output = queue.pop()
            more: list[Output] = []
            if isinstance(output, Respond):
                self._transactions(self.tl.respond(output.key, output.response, now), now)
            elif isinstance(output, StartClient):
                leg = self._leg_by_id(output.leg)
                if leg is not None:
                    key = ClientKey(output.request.top_via.branch or "", output.request.method)
                    self._by_client[key] = leg
                    self._client_keys.setdefault(leg.id, []).append(key)
                self._transactions(
                    self.tl.send_request(
                        output.request,
                        output.destination,
                        now,
                        reliable=output.destination.transport != "UDP",
                    ),
                    now,
                )
            elif isinstance(output, CancelClient):
                self._transactions(self.tl.cancel(output.key, now), now)
            elif isinstance(output, Transmit):
                self._edge.append(output)
            elif isinstance(output, LegEvent):
                owner = self._owner.get(output.leg)
                if owner is not None and not owner.done:
                    self._touched.add(owner.id)
                    more = owner.on_event(output, now)
            else:
                self._edge.append(output)
            queue.extend(reversed(more))

    def _leg_by_id(self, leg_id: str) -> Leg | None:
        owner = self._owner.get(leg_id)
        if owner is None:
            return None
        return next((leg for leg in owner.legs() if leg.id == leg_id), None)

    def _finish(self, now: float) -> list[EdgeOutput]:
        for app_id in self._touched:
            app = self._apps.get(app_id)
            if app is None:
                continue
            if app.done and self._settled(app):
                self._forget(app)
                continue
            deadline = app.next_deadline()
            if deadline is None:
                self._scheduled.pop(app_id, None)
            elif self._scheduled.get(app_id) != deadline:
                self._scheduled[app_id] = deadline
                self._seq += 1
                heapq.heappush(self._heap, (deadline, self._seq, app_id))
        self._touched.clear()
        if len(self._heap) > 2 * len(self._scheduled) + 64:
            # The heap is lazy: entries of moved or ended deadlines stay until they come due
            # (a session check's is 15 minutes away); rebuild it from what is scheduled.
            self._heap = [(at, i, app_id) for i, (app_id, at) in enumerate(self._scheduled.items())]
            heapq.heapify(self._heap)
        out, self._edge = self._edge, []
        return out

    @staticmethod
    def _settled(app: App) -> bool:
        return all(leg.state in (LegState.TERMINATED, LegState.TERMINATING) for leg in app.legs())

    def _forget(self, app: App) -> None:
        self._apps.pop(app.id, None)
        self._scheduled.pop(app.id, None)
        for leg in app.legs():
            if self._owner.get(leg.id) is app:
                del self._owner[leg.id]
                # leg.owner <-> app is a reference cycle: without this, every ended call
                # waited for the cyclic collector's oldest generation to be freed.
                leg.owner = None
                peers = self._legs_by_call_id.get(leg.call_id, [])
                if leg in peers:
                    peers.remove(leg)
                if not peers:
                    self._legs_by_call_id.pop(leg.call_id, None)
                if isinstance(leg, IncomingLeg):
                    self._by_invite.pop(leg.invite_key, None)
                if leg.state is LegState.TERMINATED:
                    self._shrink(leg)

    def _shrink(self, leg: Leg) -> None:
        """A leg that is over and owned by nobody: its client transactions keep running out
        their timers (a 2xx may still be resent to us), but what they need of it is the ACK's
        bytes, not the leg with its messages and dialog."""
        for key in self._client_keys.pop(leg.id, []):
            if key not in self._by_client:
                continue
            ack = getattr(leg, "final_ack", None) if key.method == "INVITE" else None
            if ack is None:
                del self._by_client[key]
            else:
                self._by_client[key] = Residue(ack=bytes(ack), destination=leg.destination)

    # -- what the edge and the tests read ------------------------------------------------
    def calls(self) -> list[App]:
        return [a for a in self._apps.values() if not a.done]
