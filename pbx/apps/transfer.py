"""Transfer: a REFER from one party of a bridged call (RFC 3515) moves the other party.

Blind: the transferee (the other party) stays on its relay side; the target's contacts are
rung with the switch's offer on the transferor's side of the same relay, the transferor hears
the progress in NOTIFYs (``message/sipfrag``, RFC 3515 §2.4.4), and when the target answers the
transferee gets a re-INVITE with a fresh offer (it may be on hold) and is bridged to the target;
the transferor is released. Referred-By goes onto the new INVITE (RFC 3892).

Attended: the Refer-To carries a Replaces naming the transferor's consultation call (RFC 3891;
the transferor sees only the switch's dialogs, so it names one of ours). The transferee moves to
the transferor's side of the consultation's relay and is joined to the consultation's other
party; the transferor's two legs are released. If that party is still ringing
(semi-attended), the transferor's consultation INVITE is ended (487) and the transferee is
joined when it answers.

After the join this application is the call: it carries the bridge, ends both parties when one
hangs up, and starts another transfer on a REFER.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from pbx.apps.context import Context, legs_deadline, legs_timers
from pbx.apps.dial import Target
from pbx.apps.forking import fork_leg
from pbx.apps.party import Party
from pbx.calls.bridge import Bridge, session_id_of
from pbx.calls.leg import Leg
from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.calls.leg_states import UNANSWERED, LegState
from pbx.calls.media_plan import LegMedia, NoCommonMedia, late_caller_leg, parse_body, switch_offer
from pbx.calls.outputs import (
    Answered,
    CloseRelay,
    Ended,
    Failed,
    LegEvent,
    Output,
    PeerRequest,
    Persist,
    Progress,
    RequestAnswered,
)
from pbx.calls.relay_sides import SideRelay
from pbx.sip.errors import SipParseError
from pbx.sip.refer import refer_notify
from pbx.sip.sdp import SessionDescription
from pbx.store.calls import CallRecord

log = logging.getLogger("pbx.calls")


def notify_refer(leg: Leg, refer_seq: int, status: int, now: float) -> list[Output]:
    """One NOTIFY of the REFER's implicit subscription (RFC 3515 §2.4.4) on ``leg``."""
    notify = refer_notify(refer_seq, status)
    _, out = leg.send(
        "NOTIFY",
        now,
        body=notify.body,
        content_type=notify.content_type,
        headers=notify.header_fields(),
    )
    return out


@dataclass(eq=False, slots=True, kw_only=True)
class TransferApp:
    id: str
    ctx: Context
    wall: Any
    transferee: Party
    transferor: Party | None
    """Told the progress by NOTIFY while it is there; released at the join."""
    refer_ref: int
    refer_seq: int
    relay: SideRelay
    """The relay the transferee is on now (blind) or will move to (attended)."""
    bridge: Bridge | None
    """The call as it is until the join (the transferor and the transferee), then the new one."""
    target_number: str
    target: Target | None = None
    """Whom a blind transfer rings; None for an attended one (its party is ``joined``)."""
    referred_by: str | None = None
    joined: Party | None = None
    forks: dict[str, OutgoingLeg] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    released: list[Leg] = field(default_factory=list)
    """Legs to hang up at the join (the transferor's; the consultation's)."""
    old_relays: list[Any] = field(default_factory=list)
    offer_to_target: SessionDescription | None = None
    offer_to_transferee: SessionDescription | None = None
    moving_ref: int | None = None
    """Our re-INVITE of the transferee, awaiting its answer."""
    transferred_by: str | None = None
    """The transferor's number, for this call's record."""
    target_side: str | None = None
    """The relay side the target takes: the one the transferor had (blind)."""
    ring_deadline: float | None = None
    """When a blind transfer's target has rung long enough (the policy's ring timeout)."""
    notified_ringing: bool = False
    done: bool = False
    started_at: float = 0.0
    answered_at: float | None = None
    end_reason: str | None = None

    def legs(self) -> list[Leg]:
        legs = [self.transferee.leg, *self.forks.values(), *self.released]
        if self.transferor is not None and self.transferor.leg not in legs:
            legs.append(self.transferor.leg)
        if self.joined is not None and self.joined.leg not in legs:
            legs.append(self.joined.leg)
        return legs

    # -- start -----------------------------------------------------------------------------
    def start_blind(self, now: float) -> list[Output]:
        """Ring the target from the transferor's side of the relay (202 already sent)."""
        assert self.target is not None and self.transferor is not None
        self.started_at = self.wall()
        out = self._notify(100, now)
        self.target_side = self.relay.side(self.transferor.leg.id)
        host, port = self.relay.local_address(self.transferor.leg.id)
        self.offer_to_target = switch_offer(
            address=host, port=port, session_id=self._session_id(), version=1
        )
        body = self.offer_to_target.serialize().encode()
        call_id, from_tag = self.ctx.new_call_id(), self.ctx.setup.new_tag()
        headers = [("Referred-By", self.referred_by)] if self.referred_by else []
        for binding in self.target.bindings:
            leg = fork_leg(
                self.ctx,
                leg_id=f"{self.id}/{len(self.forks) + 1}",
                binding=binding,
                caller=self.transferee.number,
                display_name=None,
                call_id=call_id,
                from_tag=from_tag,
                body=body,
                dial=self.target.dial,
                headers=headers,
            )
            if leg is not None:
                self.forks[leg.id] = leg
                self.ctx.add_leg(leg, self)
                out += leg.start(now)
        if not self.forks:
            return out + self._failed(480, now)
        self.ring_deadline = now + self.ctx.policy.ring_timeout
        log.info(
            "event=transfer_start call_id=%s transferee=%s target=%s by=%s",
            self.transferee.leg.call_id,
            self.transferee.number,
            self.target_number,
            self.transferor.number,
        )
        return out

    def start_attended(self, joined: Party, now: float) -> list[Output]:
        """Move the transferee to ``joined``'s relay (the consultation's), now or, if it
        still rings (semi-attended), when it answers."""
        self.started_at = self.wall()
        out = self._notify(100, now)
        log.info(
            "event=transfer_start call_id=%s transferee=%s target=%s attended=1 ringing=%d",
            self.transferee.leg.call_id,
            self.transferee.number,
            joined.number,
            joined.leg.state is not LegState.CONFIRMED,
        )
        if joined.leg.state is LegState.CONFIRMED:
            self.joined = joined
            return out + self._move_transferee(now)
        assert isinstance(joined.leg, OutgoingLeg)
        self.forks[joined.leg.id] = joined.leg
        return out

    # -- events ----------------------------------------------------------------------------
    def on_event(self, event: LegEvent, now: float) -> list[Output]:
        if self.bridge is not None:
            crossed = self.bridge.handle(event, now)
            if crossed is not None:
                if self.bridge.failed:
                    crossed += self._end(self.bridge.failed, now)
                return crossed
        if isinstance(event, RequestAnswered):
            if event.ref == self.moving_ref and event.leg == self.transferee.leg.id:
                return self._transferee_moved(event, now)
            return []
        if isinstance(event, PeerRequest):
            return self._peer_request(event, now)
        fork = self.forks.get(event.leg)
        if fork is not None and self.joined is None:
            return self._from_fork(fork, event, now)
        if isinstance(event, Ended):
            return self._party_left(event, now)
        return []

    def _peer_request(self, event: PeerRequest, now: float) -> list[Output]:
        leg = self._leg(event.leg)
        if leg is None:
            return []
        if event.request.method == "REFER" and self.joined is not None and self.moving_ref is None:
            from pbx.apps.transfer_start import start_transfer

            return start_transfer(self.ctx, self, leg, event, now)
        status = 489 if event.request.method == "NOTIFY" else 491
        return leg.reply(event.ref, status, now)

    def _leg(self, leg_id: str) -> Leg | None:
        return next((leg for leg in self.legs() if leg.id == leg_id), None)

    def _from_fork(self, fork: OutgoingLeg, event: LegEvent, now: float) -> list[Output]:
        if isinstance(event, Progress) and event.status in (180, 183):
            if not self.notified_ringing:
                self.notified_ringing = True
                return self._notify(180, now)
            return []
        if isinstance(event, Answered):
            return self._target_answered(fork, event, now)
        if isinstance(event, Failed):
            self.statuses[fork.id] = event.status
            if any(f.state in UNANSWERED for f in self.forks.values()):
                return []
            statuses = list(self.statuses.values())
            status = 486 if any(s in (486, 600) for s in statuses) else min(statuses or [480])
            return self._failed(status, now)
        if isinstance(event, Ended):
            return self._failed(487, now)
        return []

    def _target_answered(self, fork: OutgoingLeg, event: Answered, now: float) -> list[Output]:
        self.ring_deadline = None
        out: list[Output] = []
        for other in self.forks.values():
            if other is not fork and other.state in UNANSWERED:
                out += other.hangup(now)
        media = self._answer_media(fork, event)
        if media is None:
            return out + fork.hangup(now) + self._failed(488, now)
        self.joined = Party(leg=fork, number=self.target_number)
        self.relay.name(fork.id, self.target_side or self.relay.side(fork.id))
        self.relay.update(fork.id, remote=media.remote, audio_pt=media.audio_pt,
                          encoding=media.encoding, dtmf_pt=media.dtmf_pt)  # fmt: skip
        return out + self._move_transferee(now)

    def _answer_media(self, fork: OutgoingLeg, event: Answered) -> LegMedia | None:
        try:
            answer = parse_body("application/sdp", event.sdp) if event.sdp else None
            offer = self.offer_to_target or parse_body(fork.invite.content_type, fork.invite.body)
            if answer is None or offer is None:
                return None
            return late_caller_leg(offer, answer)
        except (NoCommonMedia, SipParseError):
            return None

    def _move_transferee(self, now: float) -> list[Output]:
        """Offer the transferee the relay side facing the joined party's other side: a
        re-INVITE with a fresh sendrecv offer (it may be on hold from the transferor)."""
        assert self.joined is not None
        side = "a" if self.relay.side(self.joined.leg.id) == "b" else "b"
        self.relay.name(self.transferee.leg.id, side)
        host, port = self.relay.local_address(self.transferee.leg.id)
        self.offer_to_transferee = switch_offer(
            address=host, port=port, session_id=self._session_id(), version=2
        )
        ref, out = self.transferee.leg.send(
            "INVITE",
            now,
            body=self.offer_to_transferee.serialize().encode(),
            content_type="application/sdp",
        )
        self.moving_ref = ref
        if self.target is not None:
            out += self._notify(200, now)  # blind: the target's answer is the outcome
        return out

    def _transferee_moved(self, event: RequestAnswered, now: float) -> list[Output]:
        self.moving_ref = None
        assert self.joined is not None and self.offer_to_transferee is not None
        media = None
        if event.response is not None and 200 <= event.status < 300:
            try:
                answer = parse_body(event.response.content_type, event.response.body)
                media = late_caller_leg(self.offer_to_transferee, answer) if answer else None
            except (NoCommonMedia, SipParseError):
                media = None
        if media is None:
            return self._end("transferee could not be moved", now)
        self.relay.update(self.transferee.leg.id, remote=media.remote, audio_pt=media.audio_pt,
                          encoding=media.encoding, dtmf_pt=media.dtmf_pt)  # fmt: skip
        self.bridge = Bridge.join(self.transferee.leg, self.joined.leg, self.relay, name=self.id)
        self.bridge.media[self.transferee.leg.id] = media
        self.answered_at = self.wall()
        out: list[Output] = []
        if self.target is None:
            out += self._notify(200, now)  # attended: the join is the outcome
        for leg in [*self.released, *([self.transferor.leg] if self.transferor else [])]:
            if leg is not self.joined.leg and leg is not self.transferee.leg:
                out += leg.hangup(now, status=487)
        self.released = []
        self.transferor = None
        out += [CloseRelay(relay=r) for r in self.old_relays]
        self.old_relays = []
        log.info(
            "event=call_transferred call_id=%s transferee=%s joined=%s",
            self.transferee.leg.call_id,
            self.transferee.number,
            self.joined.number,
        )
        return out

    def _failed(self, status: int, now: float) -> list[Output]:
        """The target did not answer: tell the transferor; without it the call is over.
        With it, the call goes on as it was (the transferor may take the transferee back)."""
        self.ring_deadline = None
        out = self._notify(status, now)
        log.info("event=transfer_failed call_id=%s status=%d", self.transferee.leg.call_id, status)
        self.forks.clear()
        if self.transferor is None or self.transferor.leg.state is not LegState.CONFIRMED:
            return out + self._end("transfer failed", now)
        # The transferor and the transferee stay bridged as before.
        self.joined = self.transferor
        self.transferor = None
        return out

    def _party_left(self, event: Ended, now: float) -> list[Output]:
        if self.transferor is not None and event.leg == self.transferor.leg.id:
            self.transferor = None  # it hung up after the REFER: the transfer goes on
            return []
        if event.leg in (self.transferee.leg.id, self.joined.leg.id if self.joined else None):
            return self._end("hung up", now)
        return []

    # -- NOTIFY ----------------------------------------------------------------------------
    def _notify(self, status: int, now: float) -> list[Output]:
        """RFC 3515 §2.4.4: the refer's implicit subscription, one NOTIFY per step."""
        if self.transferor is None or self.transferor.leg.state is not LegState.CONFIRMED:
            return []
        return notify_refer(self.transferor.leg, self.refer_seq, status, now)

    # -- parties, for the next transfer -------------------------------------------------
    def party(self, leg: Leg) -> Party | None:
        for party in (self.transferee, self.joined):
            if party is not None and party.leg is leg:
                return party
        return None

    def other_party(self, leg: Leg) -> Party | None:
        if self.joined is None:
            return None
        if leg is self.transferee.leg:
            return self.joined
        return self.transferee if leg is self.joined.leg else None

    def handover(
        self, reason: str, now: float, *, by: str | None = None, to: str | None = None
    ) -> list[Output]:
        if self.done:
            return []
        self.done = True
        record = self._record(reason)
        assert isinstance(record.row, CallRecord)
        return [Persist(row=replace(record.row, transferred_by=by, transferred_to=to))]

    # -- timers and the end ----------------------------------------------------------------
    def next_deadline(self) -> float | None:
        return legs_deadline(self.legs(), self.ring_deadline)

    def handle_timer(self, now: float) -> list[Output]:
        out = legs_timers(self.legs(), now)
        if self.ring_deadline is not None and now >= self.ring_deadline:
            self.ring_deadline = None
            if self.joined is None and not self.done:
                for fork in self.forks.values():
                    out += fork.hangup(now)
                out += self._failed(408, now)
        return out

    def relay_ready(self, relay: Any, now: float) -> list[Output]:
        return [CloseRelay(relay=relay)]

    def relay_failed(self, now: float) -> list[Output]:
        return []

    def stop(self, now: float) -> list[Output]:
        return self._end("shutdown", now)

    def _end(self, reason: str, now: float) -> list[Output]:
        if self.done:
            return []
        self.done = True
        self.end_reason = reason
        out: list[Output] = []
        for leg in self.legs():
            out += leg.hangup(now)
        out += [CloseRelay(relay=r) for r in [self.relay.handle, *self.old_relays]]
        out.append(self._record(reason))
        log.info(
            "event=call_end call_id=%s reason=%r answered=%s transferred=1",
            self.transferee.leg.call_id,
            reason,
            self.answered_at is not None,
        )
        return out

    def _record(self, reason: str) -> Persist:
        callee = self.joined.number if self.joined is not None else self.target_number
        return Persist(
            row=CallRecord(
                call_id=self.transferee.leg.call_id,
                caller=self.transferee.number,
                callee=callee,
                started_at=self.started_at,
                answered_at=self.answered_at,
                ended_at=self.wall(),
                end_reason=reason,
                status=200 if self.answered_at is not None else None,
                caller_codec=None,
                callee_codec=None,
                transferred_by=self.transferred_by,
                transferred_to=callee if self.transferred_by else None,
            )
        )

    def _session_id(self) -> str:
        return session_id_of(self.id)  # the bridge joined at the end takes it too
