"""The gateway's SIP user agent: it registers to the switch as the line and bridges calls.

Inbound: the line rings, caller ID arrives between the first rings, and after
``answer_after_rings`` the agent INVITEs the switch with the caller's number and name; when a
phone answers (200) it goes off hook and bridges audio; if the caller gives up (no ring for
``ring_gone``) it CANCELs. Outbound: the switch INVITEs us with the digits in the Request-URI;
we go off hook, wait for dial tone, dial DTMF, pass call progress as early media and answer
(analog lines have no answer signal). Either side's hang-up ends both: loop-current drop,
polarity reversal, the busy/disconnect tone, dial tone after the far end cleared, a silence
timeout or the maximum call length on the line side (each configurable per line); BYE (or
CANCEL) on the SIP side. When the line card loses its device (or the line its voltage), any
call ends at once and the switch's INVITEs get 503 until it is back.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from typing import Any

import numpy as np

from gateway_fxo.dsp.callerid import CallerIdReceiver
from gateway_fxo.dsp.dtmf_generate import generate_dtmf
from gateway_fxo.dsp.tones import ToneDetector
from gateway_fxo.line import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    CallerIdReceived,
    LineCard,
    LineCardError,
    LineCardLost,
    LineCardRestored,
    LineEvent,
    LineVoltageLost,
    LineVoltageRestored,
    LoopCurrentDrop,
    PolarityReversal,
    RingStart,
)
from gateway_fxo.line_policy import AgentSettings, LineCall, LineState, disconnect_reason
from gateway_fxo.media import RtpLeg
from gateway_fxo.trunk import TrunkClient
from pbx.media.offer_answer import answer_for, make_offer
from pbx.sip.errors import SipParseError
from pbx.sip.headers import Headers, NameAddress
from pbx.sip.message import Message, Request, Response, make_request, make_response
from pbx.sip.sdp import PCMU, SessionDescription
from pbx.sip.uri import SipUri, parse_uri
from pbx.transport.flow import Flow
from pbx.transport.layer import TransportLayer

log = logging.getLogger("gateway.agent")


class Agent:
    def __init__(
        self,
        line: LineCard,
        settings: AgentSettings,
        *,
        on_status: Callable[[str], None] = lambda _status: None,
    ) -> None:
        self.line = line
        self.settings = settings
        self.on_status = on_status
        self.transport = TransportLayer(on_message=self._on_message, on_error=lambda e, f: None)
        self.state = LineState.IDLE
        self.rings = 0
        self.caller_id: CallerIdReceived | None = None
        self._callerid_rx = CallerIdReceiver()
        self._tones = ToneDetector(settings.country)
        self._call: LineCall | None = None
        self._ring_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._register_task: asyncio.Task[None] | None = None
        self.trunk = TrunkClient(
            account=settings.account, password=settings.password, switch=settings.switch,
            bind=settings.bind, register_expires=settings.register_expires,
            transport=self.transport,
        )  # fmt: skip
        self._down: set[str] = set()
        """Why the line is unusable now: "card" (device lost), "voltage" (no line)."""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.trunk.local = await self.transport.listen_udp(self.settings.bind, 0)
        self.line.on_event = self._on_line_event
        self.line.on_audio = self._on_line_audio
        await self.line.open()
        self._register_task = asyncio.get_running_loop().create_task(self.trunk.register_loop())
        self._status(LineState.IDLE)

    async def stop(self) -> None:
        if self._call is not None:
            await self._hang_up("gateway stopping")
        if self._register_task is not None:
            self._register_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.line.close()
        await self.transport.close()

    @property
    def registered(self) -> asyncio.Event:
        """Set once the switch has accepted the line's registration."""
        return self.trunk.registered

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _status(self, state: LineState) -> None:
        self.state = state
        self.on_status(state.value)

    def _on_message(self, message: Message, flow: Flow) -> None:
        if isinstance(message, Response):
            if self.trunk.on_response(message):
                return
            if message.cseq.method == "INVITE" and message.status < 300 and self._call:
                self._ack_2xx(message)  # a retransmitted 2xx: ACK again
            return
        try:
            self._on_request(message, flow)
        except SipParseError as exc:
            self._reply(message, exc.status, exc.reason)

    def _reply(
        self,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        body: bytes = b"",
        tag: str | None = None,
    ) -> Response:
        headers: list[tuple[str, str]] = [("Contact", str(self.trunk.contact()))]
        if body:
            headers.append(("Content-Type", "application/sdp"))
        response = make_response(
            request, status, reason, to_tag=tag or secrets.token_hex(6), headers=headers, body=body
        )
        self.trunk.send(response)
        return response

    # -- requests from the switch -----------------------------------------------------------
    def _on_request(self, request: Request, flow: Flow) -> None:
        method = request.method
        call = self._call
        in_call = call is not None and request.call_id == call.call_id
        if method == "OPTIONS":
            self._reply(request, 200)
        elif method == "INVITE" and request.to.tag is None:
            if call is not None and in_call:
                return  # a retransmission: our answer is on its way
            if self._down:
                self._reply(request, 503, "Phone Line Down")
                return
            if call is not None or self.state is not LineState.IDLE:
                self._reply(request, 486, "Line Busy")
                return
            self._spawn(self._outbound(request))
        elif method == "ACK":
            return
        elif method == "CANCEL" and in_call and call is not None and not call.answered:
            self._reply(request, 200)
            if call.invite is not None:
                self._reply(call.invite, 487, tag=call.local_tag)
            self._spawn(self._end_line_side("cancelled by the switch"))
        elif method == "BYE" and in_call:
            self._reply(request, 200)
            self._spawn(self._end_line_side("the phone hung up"))
        elif method in ("INVITE", "UPDATE") and in_call and call is not None and call.rtp:
            # A re-INVITE or refresh: same media, same answer.
            self._reply(request, 200, body=self._sdp(call.rtp, self._rtp_port), tag=call.local_tag)
        elif in_call or request.to.tag is not None:
            self._reply(request, 481)
        else:
            self._reply(request, 405)

    # -- outbound: the switch asks us to dial ---------------------------------------------
    _rtp_port = 0

    async def _outbound(self, invite: Request) -> None:
        uri = invite.uri
        digits = uri.user if isinstance(uri, SipUri) else None
        if not digits:
            self._reply(invite, 484)
            return
        call = LineCall(
            direction="out",
            call_id=invite.call_id,
            local_tag=secrets.token_hex(6),
            remote_tag=invite.from_.tag,
            invite=invite,
            started=asyncio.get_running_loop().time(),
        )
        call.remote_target = str(invite.contacts[0].uri) if invite.contacts else None
        self._call = call
        self._status(LineState.IN_USE)
        self._reply(invite, 100)
        offer = SessionDescription.parse(invite.body) if invite.body else None
        rtp = RtpLeg(self.settings.bind, self.line.send_audio)
        self._rtp_port = await rtp.open()
        call.rtp = rtp
        if offer is not None:
            rtp.remote = _remote_of(offer)
        self._tones = ToneDetector(self.settings.country)
        if not await self._off_hook(call):
            return
        await self._wait_dial_tone()
        if self._call is not call:
            return
        log.info("event=dialling digits=%s call_id=%s", digits, call.call_id)
        await self._play(generate_dtmf(digits, on_s=0.1, off_s=0.1, level_dbm0=-8.0))
        if self._call is not call:
            return
        body = self._answer(offer, rtp) if offer is not None else self._sdp(rtp, self._rtp_port)
        self._reply(invite, 183, body=body, tag=call.local_tag)  # call progress as early media
        # Analog lines say nothing when the far end answers: answer the switch at once.
        call.answered = True
        self._reply(invite, 200, body=body, tag=call.local_tag)
        call.last_sound = asyncio.get_running_loop().time()
        self._spawn(self._supervise(call))

    async def _wait_dial_tone(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.dial_tone_wait
        while loop.time() < deadline:
            if self._tones.current == "dial":
                return
            await asyncio.sleep(FRAME_SECONDS)
        log.info("event=no_dial_tone dialling_anyway=true")

    async def _play(self, samples: Any) -> None:
        """Play samples down the line in 20 ms frames, paced in real time."""
        data = np.clip(np.asarray(samples), -32768, 32767).astype(np.int16)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in range(0, len(data) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            self.line.send_audio(data[index : index + FRAME_SAMPLES].tobytes())
            wait = start + (index // FRAME_SAMPLES + 1) * FRAME_SECONDS - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)

    # -- inbound: the line rings ------------------------------------------------------------
    def _on_line_event(self, event: LineEvent) -> None:
        if isinstance(event, LineCardLost):
            self._line_lost("card", f"line card lost: {event.reason}")
        elif isinstance(event, LineCardRestored):
            self._line_back("card")
        elif isinstance(event, RingStart):
            self._ring()
        elif isinstance(event, CallerIdReceived):
            self.caller_id = event
        elif isinstance(event, LoopCurrentDrop):
            if event.seconds >= self.settings.loop_drop_threshold and self._call is not None:
                self._spawn(self._far_end_gone("loop current drop"))
        elif isinstance(event, PolarityReversal):
            # Only where the line is provisioned for it: elsewhere a reversal means nothing.
            if self.settings.polarity_disconnect and self._call is not None and self._call.answered:
                self._spawn(self._far_end_gone("polarity reversal"))
        elif isinstance(event, LineVoltageLost):
            self._line_lost("voltage", "line voltage lost")
        elif isinstance(event, LineVoltageRestored):
            self._line_back("voltage")

    def _line_lost(self, cause: str, why: str) -> None:
        """No line: end any call now (the phone must not sit in a dead call), refuse new ones."""
        log.warning("event=line_down cause=%s why=%r", cause, why)
        self._down.add(cause)
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
        self.rings = 0
        self._forget_caller()
        self._status(LineState.DOWN)
        if self._call is not None:
            self._spawn(self._far_end_gone(why, refuse=(503, "Phone Line Down")))

    def _line_back(self, cause: str) -> None:
        self._down.discard(cause)
        if not self._down and self._call is None and self.state is LineState.DOWN:
            log.info("event=line_up cause=%s", cause)
            self._status(LineState.IDLE)

    def _resting_state(self) -> LineState:
        return LineState.DOWN if self._down else LineState.IDLE

    async def _off_hook(self, call: LineCall) -> bool:
        """Off hook for ``call``; False (and the call ended) when the card cannot."""
        try:
            await self.line.off_hook()
        except LineCardError as exc:
            await self._far_end_gone(f"off hook failed: {exc}", call, refuse=(503, None))
            return False
        return self._call is call and not call.ending

    def _ring(self) -> None:
        if self._down:
            return
        loop = asyncio.get_running_loop()
        if self._ring_timer is not None:
            self._ring_timer.cancel()
        self._ring_timer = loop.call_later(self.settings.ring_gone, self._caller_gave_up)
        if self.state is LineState.IDLE:
            self._status(LineState.RINGING)
            self.rings = 0
        if self.state is not LineState.RINGING:
            return
        self.rings += 1
        if self.rings == self.settings.answer_after_rings and self._call is None:
            self._spawn(self._inbound())

    def _caller_gave_up(self) -> None:
        self._ring_timer = None
        call = self._call
        if self.state is LineState.RINGING and (call is None or not call.answered):
            log.info(
                "event=caller_gave_up rings=%d call_id=%s",
                self.rings,
                call.call_id if call is not None else "-",
            )
            if call is not None and call.invite is not None:
                self._spawn(self._cancel(call))
            self._call = None
            self._forget_caller()
            self._status(LineState.IDLE)

    def _forget_caller(self) -> None:
        self.caller_id = None
        self._callerid_rx = CallerIdReceiver()

    async def _cancel(self, call: LineCall) -> None:
        invite = call.invite
        assert invite is not None
        headers = Headers(
            [
                ("Via", str(invite.top_via)),
                ("Max-Forwards", "70"),
                ("From", str(invite.from_)),
                ("To", str(invite.to)),
                ("Call-ID", invite.call_id),
                ("CSeq", f"{invite.cseq.seq} CANCEL"),
            ]
        )
        self.trunk.send(Request(method="CANCEL", uri=invite.uri, headers=headers))
        if call.rtp is not None:
            call.rtp.close()

    async def _inbound(self) -> None:
        caller = self.caller_id
        number = (caller.number if caller else None) or "anonymous"
        name = caller.name if caller else None
        rtp = RtpLeg(self.settings.bind, self.line.send_audio)
        self._rtp_port = await rtp.open()
        if self.state is not LineState.RINGING or self._call is not None:
            rtp.close()  # the caller gave up or the line went down meanwhile
            return
        call = LineCall(
            direction="in",
            call_id=secrets.token_hex(10) + "@gateway",
            local_tag=secrets.token_hex(6),
            rtp=rtp,
            started=asyncio.get_running_loop().time(),
        )
        self._call = call
        host, port = self.settings.switch
        offer = self._sdp(rtp, self._rtp_port)
        ident = NameAddress(
            display_name=name, uri=SipUri(user=number, host=host), params=(("tag", call.local_tag),)
        )

        def build(attempt: int, extra: list[tuple[str, str]]) -> Request:
            request = make_request(
                "INVITE",
                SipUri(user="inbound", host=host, port=port),
                via=self.trunk.via(),
                from_=ident,
                to=NameAddress(uri=SipUri(user="inbound", host=host)),
                call_id=call.call_id,
                cseq=attempt,
                contact=self.trunk.contact(),
                headers=[
                    (
                        "P-Asserted-Identity",
                        str(NameAddress(display_name=name, uri=SipUri(user=number, host=host))),
                    ),
                    *extra,
                ],
                body=offer,
                content_type="application/sdp",
            )
            call.invite = request
            call.cseq = attempt
            return request

        log.info("event=inbound_call number=%s name=%r call_id=%s", number, name, call.call_id)
        try:
            invite, response = await self.trunk.authenticated(build)
        except TimeoutError:
            await self._end_line_side("the switch did not answer")
            return
        if response.status >= 300:
            self.trunk.ack_non_2xx(invite, response)  # 487 after our CANCEL too
            if self._call is call:
                log.info(
                    "event=inbound_refused status=%d call_id=%s", response.status, call.call_id
                )
                self._call = None
                rtp.close()
            return
        call.remote_tag = response.to.tag
        call.remote_target = str(response.contacts[0].uri) if response.contacts else None
        self._ack_2xx(response, call)
        call.answered = True  # on the SIP side: from now on only a BYE ends it
        if self._call is not call or call.ending:
            # The phone answered as the line side gave up (our CANCEL crossed its 200).
            log.info("event=answered_after_hang_up call_id=%s", call.call_id)
            await self._bye(call)
            rtp.close()
            return
        answer = SessionDescription.parse(response.body) if response.body else None
        if answer is not None:
            rtp.remote = _remote_of(answer)
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
        if not await self._off_hook(call):
            return
        call.last_sound = asyncio.get_running_loop().time()
        self._status(LineState.IN_USE)
        self._tones = ToneDetector(self.settings.country)
        self._spawn(self._supervise(call))

    def _ack_2xx(self, response: Response, call: LineCall | None = None) -> None:
        call = call or self._call
        if call is None or call.invite is None:
            return
        host, port = self.settings.switch
        target = call.remote_target or f"sip:{host}:{port}"
        ack = make_request(
            "ACK",
            parse_uri(target),
            via=self.trunk.via(),
            from_=call.invite.from_,
            to=response.to,
            call_id=call.call_id,
            cseq=call.cseq,
        )
        self.trunk.send(ack)

    # -- during a call ------------------------------------------------------------------------
    def _on_line_audio(self, frame: bytes) -> None:
        if len(frame) != FRAME_BYTES:
            return
        samples = np.frombuffer(frame, dtype=np.int16)
        if not self.line.is_off_hook and self._call is None:
            # On hook, the line only carries caller ID: FSK between the first rings, or DTMF
            # before the first ring (some countries), so listen whether or not it rang yet.
            for found in self._callerid_rx.push(samples):
                self.caller_id = CallerIdReceived(
                    number=found.number, name=found.name, standard=found.standard
                )
            return
        call = self._call
        if call is None:
            return
        self._tones.push(samples)
        if call.rtp is not None:
            call.rtp.from_line(frame)
        if float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) > 100:
            call.last_sound = asyncio.get_running_loop().time()

    async def _supervise(self, call: LineCall) -> None:
        """Disconnect supervision on the line side: tones, silence, length (``disconnect_reason``);
        loop-current drop and polarity reversal arrive as line events."""
        loop = asyncio.get_running_loop()
        while self._call is call and not call.ending:
            await asyncio.sleep(0.1)
            why = disconnect_reason(self.settings, call, self._tones.current, loop.time())
            if why is not None:
                await self._far_end_gone(why, call)
                return

    async def _far_end_gone(
        self,
        why: str,
        call: LineCall | None = None,
        *,
        refuse: tuple[int, str | None] = (480, None),
    ) -> None:
        """The line side ended the call: BYE if answered; else CANCEL our INVITE, or answer the
        switch's INVITE with ``refuse``; then on hook."""
        call = call or self._call
        if call is None or call is not self._call or call.ending:
            return
        call.ending = True
        log.info("event=far_end_hung_up why=%r call_id=%s", why, call.call_id)
        if call.answered:
            await self._bye(call)
        elif call.invite is not None and call.direction == "in":
            await self._cancel(call)
        elif call.invite is not None:
            status, reason = refuse
            self._reply(call.invite, status, reason, tag=call.local_tag)
        if self._call is call:
            await self._end_line_side(why)

    async def _bye(self, call: LineCall) -> None:
        assert call.invite is not None
        host, port = self.settings.switch
        target = parse_uri(call.remote_target or f"sip:{host}:{port}")
        if call.direction == "in":
            from_, to = (
                call.invite.from_,
                NameAddress(uri=call.invite.to.uri, params=(("tag", call.remote_tag or ""),)),
            )
        else:
            from_ = NameAddress(uri=call.invite.to.uri, params=(("tag", call.local_tag),))
            to = call.invite.from_
        call.cseq += 1
        bye = make_request(
            "BYE",
            target,
            via=self.trunk.via(),
            from_=from_,
            to=to,
            call_id=call.call_id,
            cseq=call.cseq,
        )
        try:
            await self.trunk.transaction(bye)
        except TimeoutError:
            log.info("event=bye_unanswered call_id=%s", call.call_id)

    async def _hang_up(self, why: str) -> None:
        call = self._call
        if call is not None and call.answered:
            await self._bye(call)
        await self._end_line_side(why)

    async def _end_line_side(self, why: str) -> None:
        call = self._call
        self._call = None
        if call is not None and call.rtp is not None:
            call.rtp.close()
        if self.line.is_off_hook:
            try:
                await self.line.on_hook()
            except LineCardError as exc:
                log.warning("event=on_hook_failed error=%r", str(exc))
        if self._ring_timer is not None:
            self._ring_timer.cancel()
            self._ring_timer = None
        ident = call.call_id if call is not None else "-"
        log.info("event=line_idle why=%r call_id=%s", why, ident)
        self._forget_caller()
        self._status(self._resting_state())

    # -- SDP ------------------------------------------------------------------------------------
    def _sdp(self, rtp: RtpLeg, port: int) -> bytes:
        offer = make_offer(
            codecs=[PCMU],
            address=self.settings.bind,
            port=port,
            session_id=secrets.token_hex(4),
            session_version=1,
            telephone_event=None,
        )
        return offer.serialize().encode()

    def _answer(self, offer: SessionDescription, rtp: RtpLeg) -> bytes:
        answer = answer_for(
            offer,
            supported=[PCMU],
            telephone_event=False,
            address=self.settings.bind,
            ports=[self._rtp_port if m.media_type == "audio" else 0 for m in offer.media],
            session_id=secrets.token_hex(4),
            session_version=1,
        )
        return answer.serialize().encode()


def _remote_of(sdp: SessionDescription) -> tuple[str, int] | None:
    for media in sdp.media:
        if media.media_type == "audio" and media.port:
            address = sdp.connection_address_of(media)
            return (address, media.port) if address else None
    return None
