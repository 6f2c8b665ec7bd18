"""Dial: ring a callee's registered contacts in parallel and join the caller to the first
that answers.

The caller's leg is an incoming leg; each contact gets an outgoing leg with the relay's address
in its offer (or the switch's own offer when the caller sent none). A provisional with SDP
becomes the caller's early media (183) through the relay; the first 2xx wins, the other forks
are CANCELled, and the caller gets the answer (or, for a late offer, our offer, answered in its
ACK). Then a bridge carries the rest. Failures combine into one status for the caller.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pbx.apps.context import Context, legs_deadline, legs_timers
from pbx.apps.forking import fork_leg
from pbx.apps.party import Party
from pbx.calls.bridge import Bridge, session_id_of
from pbx.calls.leg import Leg
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.calls.leg_states import UNANSWERED, LegState
from pbx.calls.media_plan import (
    LegMedia,
    NoCommonMedia,
    answer_to_caller,
    late_caller_leg,
    offer_to_callee,
    offer_to_late_caller,
    parse_body,
    relay_answer,
    switch_offer,
)
from pbx.calls.outputs import (
    Answered,
    CloseRelay,
    Confirmed,
    Ended,
    Failed,
    LegEvent,
    OpenRelay,
    Output,
    PeerRequest,
    Persist,
    Progress,
)
from pbx.calls.relay_sides import SideRelay
from pbx.sip.errors import SipParseError
from pbx.sip.sdp import SessionDescription
from pbx.sip.uri import SipUri
from pbx.store.calls import ActiveCall, CallRecord
from pbx.store.records import Binding

if TYPE_CHECKING:
    from pbx.apps.forward import Final, Forwarding

log = logging.getLogger("pbx.calls")


@dataclass(frozen=True, slots=True)
class Target:
    """Who a call rings: the callee's name for the records, its contacts, and for a call out
    through the line the digits the gateway dials."""

    callee: str
    bindings: list[Binding]
    dial: str | None
    caller: str
    from_line: bool = False
    forward: Forwarding | None = None
    """The call's forwarding chain (``pbx/apps/forward.py``); None: no forwarding applies."""


@dataclass(eq=False, slots=True, kw_only=True)
class DialApp:
    id: str
    ctx: Context
    caller_leg: IncomingLeg
    target: Target
    started_at: float
    wall: Any
    """The wall clock (a callable) for the records; the core's time is monotonic."""
    done: bool = False
    relay: SideRelay | None = None
    offer: SessionDescription | None = None
    """The caller's offer, as admission read it; None for a late offer (INVITE without SDP)."""
    forks: dict[str, OutgoingLeg] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    answered: Leg | None = None
    picked: Party | None = None
    """A phone that took the ringing call over with an INVITE/Replaces (pickup)."""
    bridge: Bridge | None = None
    ring_deadline: float | None = None
    ringing_sent: bool = False
    early_media_sent: bool = False
    offer_to_caller: SessionDescription | None = None
    media: dict[str, LegMedia] = field(default_factory=dict)
    answered_at: float | None = None
    end_reason: str | None = None
    final_status: int | None = None
    call_id_b: str = ""
    from_tag_b: str = ""
    offer_b: bytes = b""
    """The offer every fork gets (kept for the forks of a forward)."""

    @property
    def via_line(self) -> bool:
        return self.target.dial is not None or self.target.from_line

    # -- start ---------------------------------------------------------------------------
    def start(self, now: float) -> list[Output]:
        self.call_id_b = self.ctx.new_call_id()
        self.from_tag_b = self.ctx.setup.new_tag()
        out = self.caller_leg.start(now)
        out.append(Persist(row=self._active()))
        log.info(
            "event=call_start call_id=%s b_call_id=%s caller=%s callee=%s contacts=%d",
            self.caller_leg.call_id,
            self.call_id_b,
            self.target.caller,
            self.target.callee,
            len(self.target.bindings),
        )
        out.append(OpenRelay(app=self.id, name=self.caller_leg.call_id))
        return out

    def relay_failed(self, now: float) -> list[Output]:
        log.error("event=relay_failed call_id=%s", self.caller_leg.call_id)
        return self._fail(503, "media relay unavailable", now)

    def relay_ready(self, relay: Any, now: float) -> list[Output]:
        if self.done:  # cancelled while the relay opened
            return [CloseRelay(relay=relay)]
        self.relay = SideRelay(relay, {self.caller_leg.id: "a"}, default="b")
        host, port = self.relay.local_address("callee")
        session_id, version = self._session_id(), 1
        try:
            if self.offer is None:  # a late offer: the switch offers, the caller answers last
                offer_b = switch_offer(
                    address=host, port=port, session_id=session_id, version=version
                )
            else:
                offer_b = offer_to_callee(
                    self.offer, address=host, port=port, session_id=session_id, version=version
                )
        except NoCommonMedia:
            return self._fail(488, "no common codec", now)
        body = self.offer_b = offer_b.serialize().encode()
        out: list[Output] = []
        for binding in self.target.bindings:
            out += self._fork(binding, body, now)
        if not self.forks:
            return out + self._fail(480, "no reachable contact", now)
        self.ring_deadline = now + self.ctx.policy.ring_timeout
        if self.target.forward is not None:  # forwarding hook: arm the no-answer forward
            self.target.forward.ringing(now)
        return out

    def _fork(self, binding: Binding, body: bytes, now: float) -> list[Output]:
        invite = self.caller_leg.invite
        leg = fork_leg(
            self.ctx,
            leg_id=f"{self.id}/{len(self.forks) + 1}",
            binding=binding,
            caller=self.target.caller,
            display_name=invite.from_.display_name,
            call_id=self.call_id_b,
            from_tag=self.from_tag_b,
            headers=self.target.forward.headers() if self.target.forward else (),  # Diversion
            body=body,
            dial=self.target.dial,
            max_forwards=invite.max_forwards,
        )
        if leg is None:
            return []
        self.forks[leg.id] = leg
        self.ctx.add_leg(leg, self)
        return leg.start(now)

    # -- events ----------------------------------------------------------------------------
    def on_event(self, event: LegEvent, now: float) -> list[Output]:
        if self.bridge is not None:
            crossed = self.bridge.handle(event, now)
            if crossed is not None:
                if self.bridge.failed:
                    crossed += self._end(self.bridge.failed, now)
                return crossed
        if event.leg == self.caller_leg.id:
            return self._from_caller(event, now)
        if self.picked is not None and event.leg == self.picked.leg.id:
            if isinstance(event, Ended):
                return self._end("callee hung up" if event.reason == "hung up" else event.reason,
                                 now)  # fmt: skip
            if isinstance(event, PeerRequest):
                return self._peer_request(self.picked.leg, event, now)
            return []
        fork = self.forks.get(event.leg)
        if fork is None:
            return []
        if isinstance(event, Progress):
            return self._progress(fork, event, now)
        if isinstance(event, Answered):
            return self._answered(fork, event, now)
        if isinstance(event, Failed):
            self.statuses[fork.id] = event.status
            if event.contacts and self.target.forward is not None:  # forwarding hook: a 3xx
                followed = self._forwarded(self.target.forward.follow(
                    event.contacts, line_busy=self.ctx.line_busy()), fork.id, now)  # fmt: skip
                if followed is not None:
                    return followed
            return self._fork_failed(now)
        if isinstance(event, Ended) and fork is self.answered:
            return self._end("callee hung up" if event.reason == "hung up" else event.reason, now)
        if isinstance(event, PeerRequest):
            return self._peer_request(fork, event, now)
        return []

    def _peer_request(self, leg: Leg, event: PeerRequest, now: float) -> list[Output]:
        """What the bridge does not carry: REFER starts a transfer; the rest is refused."""
        if event.request.method == "REFER" and self.bridge is not None:
            from pbx.apps.transfer_start import start_transfer

            return start_transfer(self.ctx, self, leg, event, now)
        if event.request.method == "REFER":
            status = 491  # not bridged yet: nothing to transfer
        elif self.bridge is not None and event.request.method in ("NOTIFY", "SUBSCRIBE"):
            status = 489  # RFC 6665 §8.3.1: no event package of ours in a call
        else:
            status = 481
        return leg.reply(event.ref, status, now)

    # -- parties, for a transfer -------------------------------------------------------
    def party(self, leg: Leg) -> Party | None:
        if self.picked is not None and leg is self.picked.leg:
            return self.picked
        if leg is self.caller_leg:
            return Party(leg=leg, number=self.target.caller)
        if isinstance(leg, OutgoingLeg) and leg.id in self.forks:
            uri = leg.invite.to.uri
            number = uri.user if isinstance(uri, SipUri) and uri.user else self.target.callee
            return Party(leg=leg, number=number)
        return None

    def other_party(self, leg: Leg) -> Party | None:
        if leg is self.caller_leg:
            other = self.answered or next(
                (f for f in self.forks.values() if f.state in UNANSWERED), None
            )
            return self.party(other) if other is not None else None
        known = leg.id in self.forks or (self.picked is not None and leg is self.picked.leg)
        return self.party(self.caller_leg) if known else None

    def picked_up(
        self,
        fork: OutgoingLeg,
        leg: IncomingLeg,
        number: str,
        offer: SessionDescription | None,
        now: float,
    ) -> list[Output]:
        """RFC 3891 §3 for an early dialog of ours: ``leg`` (a phone's INVITE with Replaces)
        answers the call that rings ``fork``; every fork is CANCELled."""
        if self.answered is not None or self.done or self.relay is None:
            return leg.reject(481, now)
        if offer is None:
            return leg.reject(488, now)
        try:
            host, port = self.relay.local_address(fork.id)
            answer, media = relay_answer(
                offer, address=host, port=port, session_id=self._session_id(), version=1
            )
        except (NoCommonMedia, SipParseError):
            return leg.reject(488, now)
        body = self._sdp_for_caller(offer)
        if body is None:
            return leg.reject(488, now)
        self.picked = Party(leg=leg, number=number)
        self.answered = leg
        self.answered_at = self.wall()
        self.ring_deadline = None
        self.relay.name(leg.id, "b")
        self._configure(self.media["a"], media)
        out: list[Output] = []
        for other in self.forks.values():
            if other.state in UNANSWERED:
                out += other.hangup(now)
        out += leg.answer(answer.serialize().encode(), now)
        self.bridge = Bridge.join(self.caller_leg, leg, self.relay, name=self.call_id_b)
        self.bridge.media = {self.caller_leg.id: self.media["a"], leg.id: media}
        out += self.caller_leg.answer(body, now)
        out.append(Persist(row=self._active("answered")))
        log.info(
            "event=call_picked_up call_id=%s by=%s ringing=%s",
            self.caller_leg.call_id,
            number,
            fork.invite.uri,
        )
        return out

    def handover(
        self, reason: str, now: float, *, by: str | None = None, to: str | None = None
    ) -> list[Output]:
        """The call's legs now belong to a transfer (``by`` whom, ``to`` whom): close this
        record, hang up nothing."""
        if self.done:
            return []
        self.done = True
        self.end_reason = reason
        self.ring_deadline = None
        log.info(
            "event=call_end call_id=%s b_call_id=%s reason=%r answered=%s relay=None",
            self.caller_leg.call_id,
            self.call_id_b,
            reason,
            self.answered is not None,
        )
        record = replace(
            self._record(self.answered is not None), transferred_by=by, transferred_to=to
        )
        return [Persist(row=record)]

    def _from_caller(self, event: LegEvent, now: float) -> list[Output]:
        if isinstance(event, Ended):
            if event.reason == "cancelled":
                self.end_reason = "cancelled"
                self.final_status = 487
                return self._end("cancelled", now)
            if self.caller_leg.state is LegState.TERMINATED and self.answered is None:
                self.final_status = 500 if event.reason == "no PRACK" else 487
            reason = "caller hung up" if event.reason == "hung up" else event.reason
            if event.reason == "no PRACK":
                reason = "no PRACK from caller"
            elif event.reason == "no ACK":
                reason = "no ACK from caller"
            return self._end(reason, now)
        if isinstance(event, Confirmed):
            return self._late_answer(event, now)
        if isinstance(event, PeerRequest):
            return self._peer_request(self.caller_leg, event, now)
        return []

    # -- the callee's responses -----------------------------------------------------------
    def _progress(self, fork: OutgoingLeg, event: Progress, now: float) -> list[Output]:
        if self.answered is not None or self.caller_leg.state not in UNANSWERED:
            return []
        answer = None
        if event.sdp is not None and not self.early_media_sent and self.offer is not None:
            # (A late offer's caller gets a plain 180: an offer may not ride an unreliable 1xx.)
            try:
                early = parse_body("application/sdp", event.sdp)
            except SipParseError:
                early = None
            if early is not None:
                answer = self._sdp_for_caller(early)
        if answer is None and self.ringing_sent:
            return []
        self.ringing_sent = True
        self.early_media_sent = self.early_media_sent or answer is not None
        return self.caller_leg.progress(183 if answer else 180, now, sdp=answer or b"")

    def _sdp_for_caller(self, callee_sdp: SessionDescription) -> bytes | None:
        """What the caller gets with the callee's answer: our answer to its offer or, for a
        late offer, our own offer (its answer comes in the ACK, §13.2.1). The relay is set."""
        assert self.relay is not None
        host, port = self.relay.local_address(self.caller_leg.id)
        session_id = self._session_id()
        try:
            if self.offer is not None:
                sdp, media_a, media_b = answer_to_caller(
                    self.offer, callee_sdp, address=host, port=port, session_id=session_id,
                    version=1,
                )  # fmt: skip
            else:
                sdp, media_a, media_b = offer_to_late_caller(
                    callee_sdp, address=host, port=port, session_id=session_id, version=1
                )
        except (NoCommonMedia, SipParseError):
            return None
        self._configure(media_a, media_b)
        if self.offer is None:
            self.offer_to_caller = sdp
        return sdp.serialize().encode()

    def _configure(self, caller: LegMedia, callee: LegMedia) -> None:
        assert self.relay is not None
        self.media = {"a": caller, "b": callee}
        for side, media in self.media.items():
            self.relay.update(
                side,
                remote=media.remote,
                audio_pt=media.audio_pt,
                encoding=media.encoding,
                dtmf_pt=media.dtmf_pt,
            )

    def _answered(self, fork: OutgoingLeg, event: Answered, now: float) -> list[Output]:
        if self.answered is not None or self.done:
            return fork.hangup(now)  # a second callee answered too late
        try:
            callee_sdp = parse_body("application/sdp", event.sdp) if event.sdp else None
        except SipParseError:
            callee_sdp = None
        body = self._sdp_for_caller(callee_sdp) if callee_sdp is not None else None
        if body is None:
            return fork.hangup(now) + self._fail(488, "callee answered without usable SDP", now)
        self.answered = fork
        self.answered_at = self.wall()
        self.ring_deadline = None
        out: list[Output] = []
        for other in self.forks.values():
            if other is not fork and other.state in UNANSWERED:
                out += other.hangup(now)
        assert self.relay is not None
        self.relay.name(fork.id, "b")
        self.bridge = Bridge.join(self.caller_leg, fork, self.relay, name=self.call_id_b)
        self.bridge.media = {self.caller_leg.id: self.media["a"], fork.id: self.media["b"]}
        out += self.caller_leg.answer(body, now)
        out.append(Persist(row=self._active("answered")))
        log.info(
            "event=call_answered call_id=%s b_call_id=%s by=%s",
            self.caller_leg.call_id,
            self.call_id_b,
            fork.invite.uri,
        )
        return out

    def _late_answer(self, event: Confirmed, now: float) -> list[Output]:
        """The caller's answer to our offer, in its ACK. Without a usable one the call ends
        (RFC 3261 §13.3.1.4: the session cannot start; BYE both legs)."""
        if self.offer is not None or self.offer_to_caller is None:
            return []
        try:
            answer = parse_body("application/sdp", event.sdp) if event.sdp else None
            media_a = late_caller_leg(self.offer_to_caller, answer) if answer else None
        except (NoCommonMedia, SipParseError):
            media_a = None
        if media_a is None:
            log.info("event=late_offer_unanswered call_id=%s", self.caller_leg.call_id)
            return self._end("caller sent no usable answer", now)
        self._configure(media_a, self.media["b"])
        if self.bridge is not None:
            self.bridge.media[self.caller_leg.id] = media_a
        return []

    def _fork_failed(self, now: float) -> list[Output]:
        if self.answered is not None or self.done:
            return []
        if any(f.state in UNANSWERED for f in self.forks.values()):
            return []
        statuses = list(self.statuses.values())
        if self.end_reason == "ring timeout":
            status = 408
        elif any(s in (486, 600) for s in statuses):
            status = 486
        elif any(s == 603 for s in statuses):
            status = 603
        elif statuses and all(s == 408 for s in statuses):
            status = 480
        elif statuses:
            status = min(statuses, key=lambda s: (s // 100 != 4, s))
        else:
            status = 480
        reason = {486: "busy", 408: "no answer", 603: "declined"}.get(status, "failed")
        if self.target.forward is not None:  # forwarding hook: busy, no answer, unavailable
            forwarded = self._forwarded(
                self.target.forward.after_failure(status, line_busy=self.ctx.line_busy()), "", now
            )
            if forwarded is not None:
                return forwarded
        return self._fail(status, self.end_reason or reason, now)

    # -- timers ------------------------------------------------------------------------
    def legs(self) -> list[Leg]:
        picked = [self.picked.leg] if self.picked is not None else []
        return [self.caller_leg, *self.forks.values(), *picked]

    def next_deadline(self) -> float | None:
        forward = self.target.forward.deadline if self.target.forward is not None else None
        own = min((d for d in (self.ring_deadline, forward) if d is not None), default=None)
        return legs_deadline(self.legs(), own)

    def handle_timer(self, now: float) -> list[Output]:
        out = legs_timers(self.legs(), now)
        forward = self.target.forward
        ring_out = self.ring_deadline is not None and now >= self.ring_deadline
        if forward is not None and (forward.due(now) or ring_out) and self.answered is None:
            # forwarding hook: the no-answer time ran out (or the ring timeout came first)
            forwarded = self._forwarded(
                forward.after_failure(408, line_busy=self.ctx.line_busy()), "", now
            )
            if forwarded is not None:
                return out + forwarded
        if self.ring_deadline is not None and now >= self.ring_deadline:
            self.ring_deadline = None
            if self.answered is None and not self.done:
                self.end_reason = "ring timeout"
                out += self._fail(408, "no answer", now)
        return out

    # -- forwarding: pbx/apps/forward.py decides, the dial app rings the new target -------
    def _forwarded(
        self, outcome: Target | Final | None, fork: str, now: float
    ) -> list[Output] | None:
        """Carry out a forwarding outcome: None when there is none (fail as usual); a
        Final answers the caller (for a followed 3xx: that fork's status instead)."""
        if outcome is None or self.done or self.answered is not None:
            return None
        if not isinstance(outcome, Target):
            if fork:
                self.statuses[fork] = outcome.status
                return None
            return self._fail(outcome.status, f"forwarded: {outcome.reason}", now,
                              headers=outcome.headers)  # fmt: skip
        out: list[Output] = []
        for old in self.forks.values():
            if old.state in UNANSWERED and not fork:
                out += old.hangup(now)  # a no-answer forward: the phones stop ringing
        self.statuses.pop(fork, None)
        if not fork:
            self.statuses.clear()
        self.target = outcome
        before = len(self.forks)
        for binding in outcome.bindings:
            out += self._fork(binding, self.offer_b, now)
        if len(self.forks) == before:
            return None
        self.ring_deadline = now + self.ctx.policy.ring_timeout
        if outcome.forward is not None:
            outcome.forward.ringing(now)
        return out + [Persist(row=self._active())]

    # -- the end -------------------------------------------------------------------------
    def _fail(
        self, status: int, reason: str, now: float, *, headers: tuple[tuple[str, str], ...] = ()
    ) -> list[Output]:
        if self.done:
            return []
        out: list[Output] = []
        for fork in self.forks.values():
            if fork.state in UNANSWERED:
                out += fork.hangup(now)
        out += self.caller_leg.reject(status, now, headers=headers)
        self.final_status = status
        return out + self._end(reason, now)

    def stop(self, now: float) -> list[Output]:
        return self._end("shutdown", now)

    def _end(self, reason: str, now: float) -> list[Output]:
        if self.done:
            return []
        self.done = True
        answered = self.answered is not None and self.caller_leg.state in (
            LegState.CONFIRMED, LegState.TERMINATING, LegState.TERMINATED,
        )  # fmt: skip
        self.end_reason = self.end_reason or reason
        self.ring_deadline = None
        out: list[Output] = []
        if self.caller_leg.state in UNANSWERED:
            status = 480
            out += self.caller_leg.reject(status, now)
            self.final_status = self.final_status or status
            answered = False
        out += self.caller_leg.hangup(now)
        for fork in self.forks.values():
            out += fork.hangup(now)
        relay = self.relay
        stats = relay.stats() if relay is not None and log.isEnabledFor(logging.INFO) else None
        if relay is not None:
            out.append(CloseRelay(relay=relay.handle))
        out.append(Persist(row=self._record(answered)))
        log.info(
            "event=call_end call_id=%s b_call_id=%s reason=%r answered=%s relay=%s",
            self.caller_leg.call_id,
            self.call_id_b,
            self.end_reason,
            answered,
            stats,
        )
        return out

    # -- records ---------------------------------------------------------------------------
    def _session_id(self) -> str:
        return session_id_of(self.call_id_b)  # the bridge joined at the answer takes it too

    def active_row(self) -> ActiveCall:
        return self._active("answered" if self.answered is not None else "routing")

    def _active(self, state: str = "routing") -> ActiveCall:
        return ActiveCall(
            call_id=self.caller_leg.call_id,
            caller=self.target.caller,
            callee=self.target.callee,
            state=state,
            started_at=self.started_at,
            answered_at=self.answered_at,
            caller_media=self._codec("a"),
            callee_media=self._codec("b"),
        )

    def _record(self, answered: bool) -> CallRecord:
        return CallRecord(
            call_id=self.caller_leg.call_id,
            caller=self.target.caller,
            callee=self.target.callee,
            started_at=self.started_at,
            answered_at=self.answered_at,
            ended_at=self.wall(),
            end_reason=self.end_reason or "",
            status=self.final_status or (200 if answered else None),
            caller_codec=self._codec("a"),
            callee_codec=self._codec("b"),
            forwarded_from=self.target.forward.forwarded_from if self.target.forward else None,
        )

    def _codec(self, side: str) -> str | None:
        if self.bridge is not None and self.relay is not None:
            for leg_id, media in self.bridge.media.items():
                if self.relay.side(leg_id) == side:
                    return media.encoding
        found = self.media.get(side)
        return found.encoding if found is not None else None
