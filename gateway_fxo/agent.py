"""The gateway's SIP user agent: it registers to the switch as the line and bridges calls.

What happens to the line is the pure table of ``line_machine``; this module turns what the line
card, the tone detector, the timers and the switch say into its inputs and carries its actions
out. The SIP side is the project's transaction layer (``trunk.py``) with the switch's own legs
(``pbx.calls.leg*``, carried out by ``sip_legs``: the 2xx resent until the ACK, §13.3.1.4).
Time comes from the injected clock; one ``loop.call_at`` is armed for the earliest of the
layer's, the legs' and the line's deadlines.

Inbound: the line rings, caller ID arrives between the first rings, and after
``answer_after_rings`` we INVITE the switch; when a phone answers we go off hook and bridge
audio; if the caller gives up (no ring for ``ring_gone``) we CANCEL. Outbound: the switch
INVITEs us with the digits in the Request-URI; we go off hook, wait for dial tone, dial DTMF,
send 183 with SDP so the line's ringback is early media, and answer (200) when the far party is
heard (sound that is no call-progress tone), on a polarity reversal where the line signals
answer so, or after ``early_media_limit``; busy or congestion tone refuse the call (486, 503).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

import numpy as np

from gateway_fxo.agent_sip import SipSide
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
)  # fmt: skip
from gateway_fxo.line_machine import STATUS, LineAction, LineInput, LineMachineState, step
from gateway_fxo.line_policy import AgentSettings, LineCall, disconnect_reason
from gateway_fxo.media import RtpLeg
from gateway_fxo.sip_legs import LegRunner
from gateway_fxo.sip_media import answer_sdp, offer_sdp, remote_of
from gateway_fxo.trunk import ServerTransactionKey, TrunkClient
from pbx.calls.leg_states import UNANSWERED
from pbx.clock import Clock, SystemClock
from pbx.sip.message import Request
from pbx.sip.sdp import SessionDescription
from pbx.sip.transaction import TimerSettings
from pbx.sip.uri import SipUri
from pbx.transport.flow import Flow
from pbx.transport.layer import TransportLayer

log = logging.getLogger("gateway.agent")

S = LineMachineState
I = LineInput  # noqa: E741
A = LineAction
SUPERVISE_EVERY = 0.1
ANSWER_LEVEL_RMS = 400.0  # about -35 dBm0: the far party's voice, not line noise or our echo


class Agent(SipSide):
    def __init__(
        self,
        line: LineCard,
        settings: AgentSettings,
        *,
        on_status: Any = lambda _status: None,
        clock: Clock | None = None,
        timers: TimerSettings | None = None,
    ) -> None:
        self.line = line
        self.settings = settings
        self.on_status = on_status
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.transport = TransportLayer(on_message=self._on_message, on_error=lambda e, f: None)
        self.trunk = TrunkClient(
            account=settings.account, password=settings.password, switch=settings.switch,
            bind=settings.bind, register_expires=settings.register_expires,
            transport=self.transport, clock=self.clock, timers=timers,
        )  # fmt: skip
        self.trunk.on_request = self._on_request
        self.trunk.on_deadline_changed = self._rearm
        self.legs = LegRunner(self.trunk, self.clock, self._on_leg_event)
        self.machine = S.IDLE
        self.status = STATUS[S.IDLE]
        self.rings = 0
        self.caller_id: CallerIdReceived | None = None
        self._callerid_rx = CallerIdReceiver()
        self._tones = ToneDetector(settings.country)
        self._call: LineCall | None = None
        self._deadlines: dict[str, float] = {}
        """The line's timers by name: ring_gone, dial_tone, early_limit, supervise."""
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._hook = asyncio.Lock()  # hook changes run in order, never two at once
        self._tasks: set[asyncio.Task[Any]] = set()
        self._register_task: asyncio.Task[None] | None = None
        self._down: set[str] = set()
        """Why the line is unusable now: "card" (device lost), "voltage" (no line)."""

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        self.trunk.local = await self.transport.listen_udp(self.settings.bind, 0)
        self.line.on_event = self._on_line_event
        self.line.on_audio = self._on_line_audio
        await self.line.open()
        self._register_task = asyncio.get_running_loop().create_task(self.trunk.register_loop())
        self.on_status(self.status)

    async def stop(self) -> None:
        self._feed(I.STOP, why="gateway stopping")
        async with self._hook:
            pass  # the on hook the stop asked for is done
        if self._register_task is not None:
            self._register_task.cancel()
        for task in list(self._tasks):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()
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

    # -- the machine ----------------------------------------------------------------------
    def _feed(
        self,
        event: LineInput,
        *,
        why: str = "",
        request: Request | None = None,
        key: ServerTransactionKey | None = None,
        flow: Flow | None = None,
    ) -> None:
        """One input to the line's table; its actions, in order; the status if it changed."""
        before = self.machine
        transition = step(before, event)
        if transition.ignored:
            log.debug("event=line_input_ignored state=%s input=%s", before.value, event.value)
            return
        self.machine = transition.state
        if event in (I.LINE_LOST, I.FAR_HANGUP) and self._call is not None:
            log.info("event=far_end_hung_up why=%r call_id=%s", why, self._call.call_id)
        for action in transition.actions:
            self._do(action, why, request, key, flow)
        if self.machine in (S.IDLE, S.DOWN) and before not in (S.IDLE, S.DOWN):
            log.info("event=line_idle why=%r state=%s", why or event.value, self.machine.value)
        if STATUS[self.machine] != self.status:
            self.status = STATUS[self.machine]
            self.on_status(self.status)
        self._rearm()

    def _do(self, action: LineAction, why: str, request: Request | None,
            key: ServerTransactionKey | None, flow: Flow | None) -> None:  # fmt: skip
        call = self._call
        now = self.clock.monotonic()
        if action is A.ARM_RING_GONE:
            self._deadlines["ring_gone"] = now + self.settings.ring_gone
        elif action is A.DISARM_RING_GONE:
            self._deadlines.pop("ring_gone", None)
        elif action is A.FORGET_CALLER:
            self.caller_id, self.rings = None, 0
            self._callerid_rx = CallerIdReceiver()
        elif action is A.OFFER:
            self._offer_call()
        elif action is A.CANCEL_OFFER and call is not None:
            self._hang_up(call)  # our INVITE is CANCELled (§9.1)
        elif action is A.ACCEPT:
            assert request is not None and key is not None
            self._accept(request, key, flow)
        elif action is A.REJECT_LINE_BUSY and request is not None and key is not None:
            self._reply(request, key, flow, 486, "Line Busy")
        elif action is A.REJECT_LINE_DOWN and request is not None and key is not None:
            self._reply(request, key, flow, 503, "Phone Line Down")
        elif action is A.OFF_HOOK and call is not None:
            self._spawn(self._off_hook(call))
        elif action is A.ON_HOOK:
            self._spawn(self._on_hook())
        elif action is A.AWAIT_DIAL_TONE:
            self._deadlines["dial_tone"] = now + self.settings.dial_tone_wait
        elif action is A.DIAL and call is not None:
            self._deadlines.pop("dial_tone", None)
            self._spawn(self._dial(call))
        elif action is A.EARLY_MEDIA and call is not None:
            self._respond(call, 183, body=self._local_sdp(call))
            self._deadlines["early_limit"] = now + self.settings.early_media_limit
        elif action is A.ANSWER and call is not None:
            self._deadlines.pop("early_limit", None)
            call.answered = True
            call.last_sound = now
            self._respond(call, 200, body=self._local_sdp(call))
        elif action in _REFUSALS and call is not None:
            self._respond(call, *_REFUSALS[action])
        elif action is A.BYE and call is not None:
            self._hang_up(call)
        elif action is A.START_SUPERVISION and call is not None:
            call.answered = True  # answered on both sides: the hang-up tones count now
            call.last_sound = now
            self._tones = ToneDetector(self.settings.country)
            self._deadlines["supervise"] = now + SUPERVISE_EVERY
        elif action is A.STOP_MEDIA:
            self._stop_media(now)

    def _stop_media(self, now: float) -> None:
        call, self._call = self._call, None
        for name in ("dial_tone", "early_limit", "supervise"):
            self._deadlines.pop(name, None)
        if call is None:
            return
        if call.rtp is not None:
            call.rtp.close()
        leg = self.legs.legs.get(call.call_id)
        if leg is not None and leg.state in UNANSWERED:
            # Our INVITE is CANCELled (a 2xx crossing it gets ACK and BYE); theirs refused.
            self._hang_up(call)

    # -- one timer for everything ---------------------------------------------------------
    def _rearm(self) -> None:
        times = [t for t in self._deadlines.values()]
        times += [t for t in (self.trunk.next_deadline(), self.legs.next_deadline()) if t]
        when = min(times) if times else None
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = None, when
        if when is not None:
            loop = asyncio.get_running_loop()
            delay = max(0.0, when - self.clock.monotonic())
            self._timer = loop.call_at(loop.time() + delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, None
        now = self.clock.monotonic()
        self.trunk.handle_timer(now)
        self.legs.handle_timer(now)
        for name, when in sorted(self._deadlines.items(), key=lambda item: item[1]):
            if when <= now and self._deadlines.get(name) == when:
                del self._deadlines[name]
                self._line_timer(name, now)
        self._rearm()

    def _line_timer(self, name: str, now: float) -> None:
        call = self._call
        if name == "ring_gone":
            log.info("event=caller_gave_up rings=%d call_id=%s", self.rings,
                     call.call_id if call is not None else "-")  # fmt: skip
            self._feed(I.RING_GONE, why="the caller gave up")
        elif name == "dial_tone":
            log.info("event=no_dial_tone dialling_anyway=true")
            self._feed(I.DIAL_TONE)
        elif name == "early_limit":
            log.info("event=answer_assumed why='early media limit'")
            self._feed(I.FAR_ANSWER, why="early media limit")
        elif name == "supervise" and call is not None and self.machine is S.CONNECTED:
            why = disconnect_reason(self.settings, call, self._tones.current, now)
            if why is not None:
                self._feed(I.FAR_HANGUP, why=why)
            else:
                self._deadlines["supervise"] = now + SUPERVISE_EVERY

    # -- outbound: the switch asks us to dial ---------------------------------------------
    def _accept(self, invite: Request, key: ServerTransactionKey, flow: Flow | None) -> None:
        uri = invite.uri
        assert isinstance(uri, SipUri) and uri.user
        call = LineCall(direction="out", call_id=invite.call_id, local_tag=secrets.token_hex(6),
                        invite=invite, digits=uri.user, offer=invite.body,
                        started=self.clock.monotonic())  # fmt: skip
        self._call = call
        assert flow is not None  # a request from the transport always has its flow
        self.legs.incoming(invite, key, flow, local_tag=call.local_tag)
        self._tones = ToneDetector(self.settings.country)
        self._spawn(self._open_rtp(call))

    async def _open_rtp(self, call: LineCall) -> None:
        rtp = RtpLeg(self.settings.bind, self.line.send_audio)
        call.rtp_port = await rtp.open()
        call.rtp = rtp
        if self._call is not call:
            rtp.close()  # the call ended while the socket opened
        elif call.offer:
            rtp.remote = remote_of(SessionDescription.parse(call.offer))

    async def _off_hook(self, call: LineCall) -> None:
        async with self._hook:
            if self._call is not call:
                return
            try:
                await self.line.off_hook()
            except LineCardError as exc:
                self._feed(I.OFF_HOOK_FAILED, why=f"off hook failed: {exc}")
                return
        if self._call is call:
            self._feed(I.OFF_HOOK_DONE)

    async def _on_hook(self) -> None:
        async with self._hook:
            if self.line.is_off_hook:
                try:
                    await self.line.on_hook()
                except LineCardError as exc:
                    log.warning("event=on_hook_failed error=%r", str(exc))
        self._feed(I.ON_HOOK_DONE)

    async def _dial(self, call: LineCall) -> None:
        while call.rtp is None and self._call is call:
            await asyncio.sleep(FRAME_SECONDS)  # the RTP socket is still opening
        log.info("event=dialling digits=%s call_id=%s", call.digits, call.call_id)
        samples = generate_dtmf(call.digits, on_s=0.1, off_s=0.1, level_dbm0=-8.0)
        data = np.clip(np.asarray(samples), -32768, 32767).astype(np.int16)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for index in range(0, len(data) - FRAME_SAMPLES + 1, FRAME_SAMPLES):
            if self._call is not call:
                return
            self.line.send_audio(data[index : index + FRAME_SAMPLES].tobytes())
            wait = start + (index // FRAME_SAMPLES + 1) * FRAME_SECONDS - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)  # audio is paced in real time, 20 ms a frame
        if self._call is call:
            self._feed(I.DIALLED)

    # -- inbound: the line rings ----------------------------------------------------------
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
                self._feed(I.FAR_HANGUP, why="loop current drop")
        elif isinstance(event, PolarityReversal):
            # Only where the line is provisioned for it: elsewhere a reversal means nothing.
            if self.settings.polarity_disconnect and self.machine is S.EARLY:
                self._feed(I.FAR_ANSWER, why="polarity reversal")
            elif self.settings.polarity_disconnect and self.machine is S.CONNECTED:
                self._feed(I.FAR_HANGUP, why="polarity reversal")
        elif isinstance(event, LineVoltageLost):
            self._line_lost("voltage", "line voltage lost")
        elif isinstance(event, LineVoltageRestored):
            self._line_back("voltage")

    def _line_lost(self, cause: str, why: str) -> None:
        """No line: end any call now (the phone must not sit in a dead call), refuse new ones."""
        log.warning("event=line_down cause=%s why=%r", cause, why)
        self._down.add(cause)
        self._feed(I.LINE_LOST, why=why)

    def _line_back(self, cause: str) -> None:
        self._down.discard(cause)
        if not self._down:
            log.info("event=line_up cause=%s", cause)
            self._feed(I.LINE_BACK)

    def _ring(self) -> None:
        if self.machine is S.IDLE:
            self.rings = 0
        if self.machine in (S.IDLE, S.RINGING):
            self.rings += 1
            if self.rings == self.settings.answer_after_rings:
                self._feed(I.ANSWER_RING)
                return
        self._feed(I.RING)

    def _offer_call(self) -> None:
        call = LineCall(direction="in", call_id=secrets.token_hex(10) + "@gateway",
                        local_tag=secrets.token_hex(6), started=self.clock.monotonic())  # fmt: skip
        self._call = call
        self._spawn(self._inbound(call))

    # -- audio ----------------------------------------------------------------------------
    def _on_line_audio(self, frame: bytes) -> None:
        if len(frame) != FRAME_BYTES:
            return
        samples = np.frombuffer(frame, dtype=np.int16)
        call = self._call
        if not self.line.is_off_hook:
            if self.machine in (S.IDLE, S.RINGING, S.OFFERING):
                # On hook, the line only carries caller ID: FSK between the first rings, or
                # DTMF before the first ring (some countries), so listen whether it rang yet.
                for found in self._callerid_rx.push(samples):
                    self.caller_id = CallerIdReceived(
                        number=found.number, name=found.name, standard=found.standard
                    )
            return
        if call is None:
            return
        self._tones.push(samples)
        sent = call.rtp.from_line(frame) if call.rtp is not None else None
        heard = samples if sent is None else sent
        loud = float(np.sqrt(np.mean(heard.astype(np.float64) ** 2)))
        if loud > 100:
            call.last_sound = self.clock.monotonic()
        if self.machine is S.AWAITING_DIAL_TONE and self._tones.current == "dial":
            self._feed(I.DIAL_TONE)
        elif self.machine is S.EARLY:
            self._detect_answer(call, loud)

    def _detect_answer(self, call: LineCall, loud: float) -> None:
        """Early media: a busy or congestion cadence refuses the call; sound that is no
        call-progress tone for ``answer_sound_seconds`` is the far party answering."""
        tone = self._tones.current
        if tone == "busy":
            self._feed(I.FAR_BUSY, why="busy tone")
            return
        if tone == "congestion":
            self._feed(I.FAR_CONGESTION, why="congestion tone")
            return
        talking = loud > ANSWER_LEVEL_RMS and not self._tones.hearing_tone and tone is None
        call.sound_frames = call.sound_frames + 1 if talking else 0
        if call.sound_frames * FRAME_SECONDS >= self.settings.answer_sound_seconds:
            log.info("event=far_end_answered call_id=%s", call.call_id)
            self._feed(I.FAR_ANSWER, why="far party heard")

    def _local_sdp(self, call: LineCall) -> bytes:
        if call.direction == "out" and call.offer:
            return answer_sdp(call.offer, self.settings.bind, call.rtp_port)
        return offer_sdp(self.settings.bind, call.rtp_port)


_REFUSALS: dict[LineAction, tuple[int, str | None]] = {
    A.REFUSE_BUSY: (486, None),
    A.REFUSE_CONGESTION: (503, "Network Congestion"),
    A.REFUSE_GONE: (480, None),
    A.REFUSE_LINE_DOWN: (503, "Phone Line Down"),
    A.REFUSE_CANCELLED: (487, None),
}
