"""The agent's SIP side: what the switch sends, the legs' events, and the INVITE for a
ringing line. A base class of ``Agent`` (agent.py), which owns the state it uses: the line's
machine and call, the legs (``sip_legs.LegRunner``, the switch's own ``pbx.calls`` legs) and the
trunk (the transaction layer).

Requests arrive from the transaction layer (a retransmission never gets here, §17.2); a new
INVITE goes to the line's table; an ACK, and a request with a To tag, to the leg whose dialog it
is in (481 when none); a CANCEL to the leg answering its INVITE (§9.2: 200, and 487 to the
INVITE only while no final response was sent). What the legs report becomes the line's inputs.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from gateway_fxo.line import LineCard
from gateway_fxo.line_machine import LineInput, LineMachineState
from gateway_fxo.line_policy import AgentSettings, LineCall
from gateway_fxo.media import RtpLeg
from gateway_fxo.sip_legs import LegRunner
from gateway_fxo.sip_media import remote_of
from gateway_fxo.trunk import ServerTransactionKey, TrunkClient
from pbx.calls.leg import Leg
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.leg_states import UNANSWERED
from pbx.calls.outputs import Answered, Confirmed, Ended, Failed, LegEvent, PeerRequest
from pbx.clock import Clock
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddress
from pbx.sip.message import Message, Request, make_request, make_response
from pbx.sip.sdp import SessionDescription
from pbx.sip.uri import SipUri
from pbx.transport.flow import Flow

log = logging.getLogger("gateway.agent")

I = LineInput  # noqa: E741
GATEWAY_ALLOWS = "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, PRACK, OPTIONS"


class SipSide:
    """The SIP half of the agent (see the module docstring)."""

    line: LineCard
    settings: AgentSettings
    clock: Clock
    trunk: TrunkClient
    legs: LegRunner
    machine: LineMachineState
    caller_id: Any
    _call: LineCall | None

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

    def _current(self, leg: Leg) -> LineCall | None:
        call = self._call
        return call if call is not None and call.call_id == leg.call_id else None

    # -- SIP: what the legs report ----------------------------------------------------------
    def _on_leg_event(self, leg: Leg, event: LegEvent) -> None:
        call = self._current(leg)
        if isinstance(event, Confirmed):
            log.info("event=confirmed call_id=%s", leg.call_id)
        elif isinstance(event, Answered):
            log.info("event=confirmed call_id=%s", leg.call_id)
            if call is None:
                log.info("event=answered_after_hang_up call_id=%s", leg.call_id)
                self.legs.run(leg, leg.hangup(self.clock.monotonic()))
                return
            if event.sdp and call.rtp is not None:
                call.rtp.remote = remote_of(SessionDescription.parse(event.sdp))
            self._feed(I.SWITCH_ANSWERED)
        elif isinstance(event, Failed):
            if call is not None:
                log.info("event=inbound_refused status=%s call_id=%s", event.status, leg.call_id)
                self._feed(I.SWITCH_REFUSED, why="the switch refused")
        elif isinstance(event, Ended):
            self._leg_ended(leg, event.reason, call)
        elif isinstance(event, PeerRequest):
            self._peer_request(leg, event, call)

    def _leg_ended(self, leg: Leg, reason: str, call: LineCall | None) -> None:
        if reason == "no ACK":
            log.warning("event=ack_timeout call_id=%s", leg.call_id)
        if call is None:
            return
        if reason == "no ACK":
            self._feed(I.ACK_TIMEOUT, why="no ACK for our 200")
        elif reason == "cancelled":
            self._feed(I.SWITCH_CANCEL, why="cancelled by the switch")
        else:
            self._feed(I.SWITCH_BYE, why="the phone hung up" if reason == "hung up" else reason)

    def _peer_request(self, leg: Leg, event: PeerRequest, call: LineCall | None) -> None:
        """A re-INVITE or UPDATE keeps the media as it is (our SDP again where an offer or our
        offer is due); INFO is taken and ignored; the rest is not for a phone line."""
        now, method = self.clock.monotonic(), event.request.method
        if method in ("INVITE", "UPDATE") and call is not None and call.rtp is not None:
            # The audio goes where a new offer says (a transfer moves the line's leg).
            self._follow_offer(call.rtp, event.request)
            body = self._local_sdp(call) if event.sdp is not None or method == "INVITE" else b""
            self.legs.run(leg, leg.reply(event.ref, 200, now, body=body))
        elif method in ("INVITE", "UPDATE"):
            self.legs.run(leg, leg.reply(event.ref, 481, now))
        elif method == "INFO":
            self.legs.run(leg, leg.reply(event.ref, 200, now))
        else:
            allow = [("Allow", GATEWAY_ALLOWS)]
            self.legs.run(leg, leg.reply(event.ref, 405, now, headers=allow))

    # -- SIP: our answers to the switch's INVITE ------------------------------------------
    def _respond(self, call: LineCall, status: int, reason: str | None = None, *,
                 body: bytes = b"") -> None:  # fmt: skip
        """183 (early media), 200 or a refusal to the switch's INVITE of ``call``."""
        leg = self.legs.legs.get(call.call_id)
        if not isinstance(leg, IncomingLeg):
            return
        now = self.clock.monotonic()
        if status < 200:
            self.legs.run(leg, leg.progress(status, now, sdp=body))
        elif status < 300:
            self.legs.run(leg, leg.answer(body, now))
        else:
            self.legs.run(leg, leg.reject(status, now, reason=reason))

    def _hang_up(self, call: LineCall) -> None:
        """End the call's leg: BYE (after the ACK for our 200, §15), or CANCEL our INVITE."""
        leg = self.legs.legs.get(call.call_id)
        if leg is not None:
            self.legs.run(leg, leg.hangup(self.clock.monotonic()))

    def _reply(self, request: Request, key: ServerTransactionKey | None, flow: Flow | None,
               status: int, reason: str | None = None) -> None:  # fmt: skip
        """A response outside any leg (OPTIONS, a CANCEL or request of no call, refusals)."""
        if key is None:
            return
        headers = [("Contact", str(self.trunk.contact()))]
        tag = request.to.tag or secrets.token_hex(6)
        response = make_response(request, status, reason, to_tag=tag, headers=headers)
        self.trunk.respond(key, response, flow)

    # -- SIP: what the switch sends -------------------------------------------------------
    def _on_message(self, message: Message, flow: Flow) -> None:
        self.trunk.receive(message, flow)

    def _on_request(self, request: Request, key: ServerTransactionKey | None,
                    flow: Flow | None) -> None:  # fmt: skip
        try:
            self._on_request_checked(request, key, flow)
        except SipParseError as exc:
            self._reply(request, key, flow, exc.status, exc.reason)

    def _on_request_checked(self, request: Request, key: ServerTransactionKey | None,
                            flow: Flow | None) -> None:  # fmt: skip
        method, now = request.method, self.clock.monotonic()
        if method == "ACK":
            leg = self.legs.dialog_leg(request)
            if leg is not None:
                self.legs.run(leg, leg.on_ack(request, now))
            return
        if key is None:
            return
        if method == "CANCEL":
            self._on_cancel(request, key, flow)
        elif request.to.tag is not None:
            leg = self.legs.dialog_leg(request)
            if leg is None:
                self._reply(request, key, flow, 481)  # §12.2.2
            else:
                self.legs.run(leg, leg.on_request(key, request, now))
        elif method == "INVITE":
            uri = request.uri
            if not (isinstance(uri, SipUri) and uri.user):
                self._reply(request, key, flow, 484)
                return
            self._feed(I.SWITCH_INVITE, request=request, key=key, flow=flow)
        elif method == "OPTIONS":
            self._reply(request, key, flow, 200)
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

    def _on_cancel(self, request: Request, key: ServerTransactionKey, flow: Flow | None) -> None:
        """§9.2: 481 when the CANCEL matches no INVITE transaction; else 200, and the leg sends
        487 to the INVITE if no final response went yet (the line's table then hangs up)."""
        invite = self.trunk.layer.find_invite_for_cancel(request)
        if invite is None:
            self._reply(request, key, flow, 481)
            return
        leg = self.legs.invite_leg(invite.key)
        if leg is None or leg.state not in UNANSWERED:
            log.info("event=cancel_after_answer call_id=%s", request.call_id)
        if leg is None:
            self._reply(request, key, flow, 200)  # the INVITE was refused already
            return
        self.legs.run(leg, leg.on_cancel(key, request, self.clock.monotonic()))

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

        def build(attempt: int, extra: list[tuple[str, str]]) -> Request:
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
            return request

        log.info("event=inbound_call number=%s name=%r call_id=%s", number, name, call.call_id)
        self.legs.outgoing(build)  # its answer, refusal or timeout come as the leg's events
