"""The agent's SIP side: what the switch sends, the dialog usages' outputs, and the INVITE
for a ringing line. A base class of ``Agent`` (agent.py), which owns the state it uses: the
line's machine and call, the legs by Call-ID and the trunk (the transaction layer).

Requests arrive from the transaction layer (a retransmission never gets here, §17.2); a new
INVITE goes to the line's table; a CANCEL gets 200 when it matches the INVITE's transaction and
the INVITE a 487 only while no final response was sent (§9.2); BYE, re-INVITE and UPDATE are
answered in the dialog.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from gateway_fxo.line import LineCard
from gateway_fxo.line_machine import LineInput, LineMachineState
from gateway_fxo.line_policy import AgentSettings, LineCall
from gateway_fxo.media import RtpLeg
from gateway_fxo.sip_leg import (
    AckTimedOut,
    LegConfirmed,
    LegOutput,
    LegState,
    SendAck,
    SendRequest,
    SendResponse,
    UacInviteLeg,
    UasInviteLeg,
)
from gateway_fxo.sip_media import remote_of
from gateway_fxo.trunk import ServerTransactionKey, TrunkClient
from pbx.clock import Clock
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddress
from pbx.sip.message import Message, Request, Response, make_request, make_response
from pbx.sip.sdp import SessionDescription
from pbx.sip.uri import SipUri
from pbx.transport.flow import Flow

log = logging.getLogger("gateway.agent")

I = LineInput  # noqa: E741
Leg = UasInviteLeg | UacInviteLeg


class SipSide:
    """The SIP half of the agent (see the module docstring)."""

    line: LineCard
    settings: AgentSettings
    clock: Clock
    trunk: TrunkClient
    machine: LineMachineState
    caller_id: Any
    _call: LineCall | None
    _legs: dict[str, Leg]
    _invite_keys: dict[str, tuple[ServerTransactionKey, Flow | None]]

    def _feed(
        self,
        event: LineInput,
        *,
        why: str = "",
        request: Request | None = None,
        key: ServerTransactionKey | None = None,
        flow: Flow | None = None,
    ) -> None:
        raise NotImplementedError  # Agent's: one input to the line's table

    def _local_sdp(self, call: LineCall) -> bytes:
        raise NotImplementedError

    # -- SIP: the dialog usages' outputs --------------------------------------------------
    def _carry_out(self, leg: Leg, outputs: list[LegOutput]) -> None:
        for output in outputs:
            if isinstance(output, SendResponse):
                key, flow = self._invite_keys.get(leg.invite.call_id, (None, None))
                if key is not None:
                    if output.response.status >= 200 and leg.state is LegState.ACCEPTED:
                        log.info("event=2xx_sent call_id=%s", leg.invite.call_id)
                    self.trunk.respond(key, output.response, flow)
            elif isinstance(output, SendAck):
                self.trunk.send(output.ack)
            elif isinstance(output, SendRequest):
                self.trunk.send_request(output.request)
            elif isinstance(output, LegConfirmed):
                log.info("event=confirmed call_id=%s", leg.invite.call_id)
            elif isinstance(output, AckTimedOut):
                log.warning("event=ack_timeout call_id=%s", leg.invite.call_id)
                if self._call is not None and self._call.call_id == leg.invite.call_id:
                    self._feed(I.ACK_TIMEOUT, why="no ACK for our 200")
        if leg.state is LegState.TERMINATED and leg.next_deadline() is None:
            self._legs.pop(leg.invite.call_id, None)
            self._invite_keys.pop(leg.invite.call_id, None)

    def _respond(self, call: LineCall, status: int, reason: str | None = None, *,
                 body: bytes = b"") -> None:  # fmt: skip
        leg = self._legs.get(call.call_id)
        if isinstance(leg, UasInviteLeg):
            self._carry_out(leg, leg.respond(status, self.clock.monotonic(), reason, body=body))

    def _reply(self, request: Request, key: ServerTransactionKey | None, flow: Flow | None,
               status: int, reason: str | None = None, *, body: bytes = b"") -> None:  # fmt: skip
        """A response outside the call's leg (OPTIONS, BYE, CANCEL, refusals)."""
        if key is None:
            return
        headers = [("Contact", str(self.trunk.contact()))]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        tag = request.to.tag or secrets.token_hex(6)
        response = make_response(request, status, reason, to_tag=tag, headers=headers, body=body)
        self.trunk.respond(key, response, flow)

    # -- SIP: what the switch sends -------------------------------------------------------
    def _on_message(self, message: Message, flow: Flow) -> None:
        self.trunk.receive(message, flow)

    def _on_late_response(self, response: Response) -> None:
        leg = self._legs.get(response.call_id)
        if isinstance(leg, UacInviteLeg) and response.cseq.method == "INVITE":
            self._carry_out(leg, leg.receive(response, self.clock.monotonic()))

    def _on_request(self, request: Request, key: ServerTransactionKey | None,
                    flow: Flow | None) -> None:  # fmt: skip
        try:
            self._on_request_checked(request, key, flow)
        except SipParseError as exc:
            self._reply(request, key, flow, exc.status, exc.reason)

    def _on_request_checked(self, request: Request, key: ServerTransactionKey | None,
                            flow: Flow | None) -> None:  # fmt: skip
        method, now = request.method, self.clock.monotonic()
        leg = self._legs.get(request.call_id)
        call = self._call
        current = call is not None and call.call_id == request.call_id
        if method == "ACK":
            if isinstance(leg, UasInviteLeg):
                self._carry_out(leg, leg.receive(request, now))
        elif method == "OPTIONS":
            self._reply(request, key, flow, 200)
        elif method == "INVITE" and request.to.tag is None:
            uri = request.uri
            if not (isinstance(uri, SipUri) and uri.user):
                self._reply(request, key, flow, 484)
                return
            self._feed(I.SWITCH_INVITE, request=request, key=key, flow=flow)
        elif method == "CANCEL":
            self._on_cancel(request, key, flow, leg, current)
        elif method == "BYE" and leg is not None and request.to.tag in _tags(leg):
            self._reply(request, key, flow, 200)
            if isinstance(leg, UasInviteLeg):
                leg.receive(request, now)
            self._legs.pop(request.call_id, None)
            if current:
                self._feed(I.SWITCH_BYE, why="the phone hung up")
        elif method in ("INVITE", "UPDATE") and current and call is not None and call.rtp:
            # A re-INVITE or refresh: same media, same answer; but the audio goes where the new
            # offer says (a transfer moves the line's leg onto another relay of the switch).
            self._follow_offer(call.rtp, request)
            self._reply(request, key, flow, 200, body=self._local_sdp(call))
        elif request.to.tag is not None or current:
            self._reply(request, key, flow, 481)
        else:
            self._reply(request, key, flow, 405)

    def _follow_offer(self, rtp: RtpLeg, request: Request) -> None:
        """Send the audio to the address of an in-dialog offer (RFC 3264 §8: a new offer may
        change it); an offer without one (0.0.0.0 or port 0: on hold) keeps the old one."""
        if not request.body:
            return
        try:
            remote = remote_of(SessionDescription.parse(request.body))
        except SipParseError:
            return
        if remote is not None and remote[0] != "0.0.0.0" and remote != rtp.remote:
            log.info("event=media_moved call_id=%s remote=%s:%d", request.call_id, *remote)
            rtp.remote = remote

    def _on_cancel(self, request: Request, key: ServerTransactionKey | None, flow: Flow | None,
                   leg: Leg | None, current: bool) -> None:  # fmt: skip
        """§9.2: 200 to the CANCEL when it matches the INVITE's transaction (481 otherwise);
        then 487 to the INVITE if no final response was sent, else nothing changes."""
        if self.trunk.layer.find_invite_for_cancel(request) is None:
            self._reply(request, key, flow, 481)
            return
        self._reply(request, key, flow, 200)
        if not isinstance(leg, UasInviteLeg) or leg.answered:
            log.info("event=cancel_after_answer call_id=%s", request.call_id)
            return
        if current:
            self._feed(I.SWITCH_CANCEL, why="cancelled by the switch")
        else:
            self._carry_out(leg, leg.respond(487, self.clock.monotonic()))

    async def _inbound(self, call: LineCall) -> None:
        caller = self.caller_id
        number = (caller.number if caller else None) or "anonymous"
        name = caller.name if caller else None
        rtp = RtpLeg(self.settings.bind, self.line.send_audio)
        call.rtp_port = await rtp.open()
        call.rtp = rtp
        if self._call is not call:
            rtp.close()  # the caller gave up or the line went down meanwhile
            return
        host, port = self.settings.switch
        offer = self._local_sdp(call)
        ident = NameAddress(display_name=name, uri=SipUri(user=number, host=host))
        leg: UacInviteLeg | None = None

        def build(attempt: int, extra: list[tuple[str, str]]) -> Request:
            nonlocal leg
            request = make_request(
                "INVITE", SipUri(user="inbound", host=host, port=port), via=self.trunk.via(),
                from_=NameAddress(display_name=name, uri=ident.uri,
                                  params=(("tag", call.local_tag),)),
                to=NameAddress(uri=SipUri(user="inbound", host=host)), call_id=call.call_id,
                cseq=attempt, contact=self.trunk.contact(),
                headers=[("P-Asserted-Identity", str(ident)), *extra],
                body=offer, content_type="application/sdp",
            )  # fmt: skip
            call.invite = request
            if leg is None:
                leg = UacInviteLeg(request, new_via=self.trunk.via)
                self._legs[call.call_id] = leg
            else:
                leg.resent_with(request, extra)
            return request

        log.info("event=inbound_call number=%s name=%r call_id=%s", number, name, call.call_id)
        try:
            _, response = await self.trunk.authenticated(build)
        except TimeoutError:
            response = None
        assert leg is not None
        if response is not None:
            self._carry_out(leg, leg.receive(response, self.clock.monotonic()))
        if response is None or response.status >= 300:
            self._legs.pop(call.call_id, None)
            if self._call is call:
                status = response.status if response is not None else "timeout"
                log.info("event=inbound_refused status=%s call_id=%s", status, call.call_id)
                self._feed(I.SWITCH_REFUSED, why="the switch refused")
            return
        if self._call is not call:
            log.info("event=answered_after_hang_up call_id=%s", call.call_id)
            return  # the leg sent ACK and BYE: our CANCEL crossed the 200
        if response.body:
            rtp.remote = remote_of(SessionDescription.parse(response.body))
        self._feed(I.SWITCH_ANSWERED)


def _tags(leg: Leg) -> tuple[str | None, ...]:
    if isinstance(leg, UasInviteLeg):
        return (leg.local_tag,)
    return (leg.invite.from_.tag,)
