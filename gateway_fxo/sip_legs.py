"""The gateway's INVITE dialog usages are the switch's own legs (``pbx.calls.leg*``); this
module carries out what they ask on the gateway's transaction layer (``trunk.py``), the small
counterpart of the call core's ``_run``.

One leg a call, keyed by its Call-ID: an ``IncomingLeg`` when the switch INVITEs us to dial
out, an ``OutgoingLeg`` for the INVITE we send for a ringing line. Responses, timeouts and ends
of the legs' client transactions come back here from the trunk and go to the leg that started
them; the legs' events (answered, failed, confirmed, ended, a request in the dialog) go to the
agent. A leg that is over and has nothing left to resend is forgotten.

The switch challenges our INVITE with a 407 (it authenticates the line like any phone): a leg
is built from a ready INVITE, so the retry with credentials is a new ``OutgoingLeg`` for the
INVITE built again (CSeq 2, the same Call-ID and tag) that takes the first one's place, unseen
by the agent; its ACK carries the credentials too (the leg copies them, §13.2.2.4). Requests
inside the dialog (BYE) carry none: the switch authenticates only the initial INVITE.
"""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable

from gateway_fxo.trunk import TrunkClient
from pbx.calls.leg import Leg, LegSetup
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.calls.leg_states import UNANSWERED, LegState
from pbx.calls.outputs import (
    CancelClient,
    LegEvent,
    Output,
    Respond,
    ServerTxKey,
    StartClient,
    Transmit,
)
from pbx.clock import Clock
from pbx.sip.dialog import uas_dialog_id
from pbx.sip.message import Request, Response
from pbx.sip.transaction import ClientKey, TransactionKey
from pbx.transport.flow import Flow

log = logging.getLogger("gateway.agent")

InviteBuilder = Callable[[int, list[tuple[str, str]]], Request]
"""Builds our INVITE: the attempt (1, or 2 answering a challenge) and extra header fields."""
EventHandler = Callable[[Leg, LegEvent], None]


class LegRunner:
    """The gateway's legs and the one place their outputs are carried out."""

    def __init__(self, trunk: TrunkClient, clock: Clock, on_event: EventHandler) -> None:
        self.trunk = trunk
        self.clock = clock
        self.on_event = on_event
        self.setup = LegSetup(
            server="Switchboard line gateway",
            contact=lambda _transport: trunk.contact(),
            new_via=lambda _transport: trunk.via(),
            new_tag=lambda: secrets.token_hex(6),
            random_delay=random.uniform,
            t1=trunk.timers.t1,
            t2=trunk.timers.t2,
        )
        self.legs: dict[str, Leg] = {}
        self._by_client: dict[ClientKey, str] = {}
        self._by_invite: dict[ServerTxKey, str] = {}
        self._retry: dict[str, InviteBuilder] = {}
        trunk.on_client_response = self._on_response
        trunk.on_client_failure = self._on_failure
        trunk.on_client_gone = self._on_gone

    # -- new legs --------------------------------------------------------------------------
    def incoming(
        self, invite: Request, key: ServerTxKey, flow: Flow, *, local_tag: str
    ) -> IncomingLeg:
        """The switch's INVITE is ours to answer (100 Trying goes at once)."""
        leg = IncomingLeg(
            id=invite.call_id,
            setup=self.setup,
            transport="UDP",
            reliable=False,
            destination=self.trunk.destination(),
            invite=invite,
            invite_key=key,
            peer_flow=flow,
            local_tag=local_tag,
            reliable_1xx="100rel" in [t.lower() for t in invite.option_tags("require")],
        )
        self.legs[leg.id] = leg
        self._by_invite[key] = leg.id
        self.run(leg, leg.start(self.clock.monotonic()))
        return leg

    def outgoing(self, build: InviteBuilder) -> OutgoingLeg:
        """INVITE the switch; a 401/407 to this first attempt is answered once (see above)."""
        leg = self._start_outgoing(build(1, []))
        self._retry[leg.id] = build
        return leg

    def _start_outgoing(self, invite: Request) -> OutgoingLeg:
        leg = OutgoingLeg(
            id=invite.call_id,
            setup=self.setup,
            transport="UDP",
            reliable=False,
            destination=self.trunk.destination(),
            invite=invite,
        )
        self.legs[leg.id] = leg
        self.run(leg, leg.start(self.clock.monotonic()))
        return leg

    # -- finding the leg of a request ------------------------------------------------------
    def dialog_leg(self, request: Request) -> Leg | None:
        """The leg whose dialog (early or confirmed) ``request`` is in (§12.2.2)."""
        dialog_id = uas_dialog_id(request)
        leg = self.legs.get(request.call_id)
        if dialog_id is None or leg is None or leg.dialog is None:
            return None
        return leg if leg.dialog.id == dialog_id else None

    def invite_leg(self, key: TransactionKey) -> IncomingLeg | None:
        """The leg answering the INVITE of server transaction ``key`` (for its CANCEL)."""
        if isinstance(key, ClientKey):
            return None
        leg = self.legs.get(self._by_invite.get(key, ""))
        return leg if isinstance(leg, IncomingLeg) else None

    # -- carrying out ----------------------------------------------------------------------
    def run(self, leg: Leg, outputs: list[Output]) -> None:
        """Carry out ``outputs`` of ``leg`` in order, then hand its events to the agent."""
        events: list[LegEvent] = []
        for output in outputs:
            if isinstance(output, Respond):
                self._log_2xx(leg, output.response)
                self.trunk.respond(output.key, output.response, leg.flow)
            elif isinstance(output, StartClient):
                request = output.request
                self._by_client[ClientKey(request.top_via.branch or "", request.method)] = leg.id
                self.trunk.start(request, output.destination)
            elif isinstance(output, CancelClient):
                self.trunk.cancel(output.key)
            elif isinstance(output, Transmit):
                if isinstance(output.message, Response):
                    self._log_2xx(leg, output.message)
                self.trunk.transmit(output.message, output.destination, output.flow)
            elif isinstance(output, LegEvent):
                events.append(output)
        for event in events:
            self.on_event(leg, event)
        self._settle(leg)
        self.trunk.on_deadline_changed()

    @staticmethod
    def _log_2xx(leg: Leg, response: Response) -> None:
        if 200 <= response.status < 300 and response.cseq.method == "INVITE":
            log.info("event=2xx_sent call_id=%s", leg.call_id)

    def _settle(self, leg: Leg) -> None:
        """Forget a leg that is over and has nothing left to resend or wait for."""
        if leg.state is not LegState.TERMINATED or leg.next_deadline() is not None:
            return
        if self.legs.get(leg.id) is leg:
            del self.legs[leg.id]
            self._retry.pop(leg.id, None)
            for key in [k for k, v in self._by_client.items() if v == leg.id]:
                del self._by_client[key]
            for server in [k for k, v in self._by_invite.items() if v == leg.id]:
                del self._by_invite[server]

    # -- what the legs' client transactions get --------------------------------------------
    def _client_leg(self, key: ClientKey) -> Leg | None:
        return self.legs.get(self._by_client.get(key, ""))

    def _on_response(self, key: ClientKey, response: Response) -> None:
        leg = self._client_leg(key)
        if leg is None:
            return
        now = self.clock.monotonic()
        if isinstance(leg, OutgoingLeg) and key == leg.invite_key and response.status >= 200:
            build = self._retry.pop(leg.id, None)
            credentials = self.trunk.credentials(leg.invite, response)
            if build is not None and credentials is not None and leg.state in UNANSWERED:
                # The layer ACKed the 407; the first leg is done with, unseen by the agent.
                del self.legs[leg.id]
                self._by_client.pop(key, None)
                log.info("event=invite_challenged status=%d call_id=%s", response.status,
                         leg.call_id)  # fmt: skip
                self._start_outgoing(build(2, [credentials]))
                return
        self.run(leg, leg.on_response(key, response, now))

    def _on_failure(self, key: ClientKey) -> None:
        leg = self._client_leg(key)
        if leg is not None:
            self.run(leg, leg.on_client_failure(key, self.clock.monotonic()))

    def _on_gone(self, key: ClientKey) -> None:
        leg = self.legs.get(self._by_client.pop(key, ""))
        if leg is not None:
            leg.forget_client(key)

    # -- timers ----------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        times = [t for leg in self.legs.values() if (t := leg.next_deadline()) is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        for leg in list(self.legs.values()):
            deadline = leg.next_deadline()
            if deadline is not None and deadline <= now:
                self.run(leg, leg.handle_timer(now))
