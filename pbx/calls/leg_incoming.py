"""An incoming leg: the switch is the UAS of the INVITE (RFC 3261 §13.3).

Beyond ``Leg``: 100 Trying, provisionals (reliable ones per RFC 3262 §3, one outstanding at a
time, resent T1 doubling until PRACK, a 5xx after 64*T1 without one), the 2xx resent until its
ACK (§13.3.1.4, a BYE after 64*T1 without one), a late offer (our offer in the 2xx, the answer
in the ACK), CANCEL (§9.2) and a BYE on the early dialog.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from pbx.calls.leg import ALLOW, Leg, allows
from pbx.calls.leg_states import UNANSWERED, LegInput, LegState
from pbx.calls.outputs import Confirmed, Output, ServerTxKey, Transmit
from pbx.calls.resend import Resend
from pbx.sip.dialog import DialogError, create_uas_dialog
from pbx.sip.message import Request, Response
from pbx.transport.flow import Flow


@dataclass(eq=False, slots=True, kw_only=True)
class IncomingLeg(Leg):
    invite: Request
    invite_key: ServerTxKey
    peer_flow: Flow
    local_tag: str
    reliable_1xx: bool = False
    """The caller requires 100rel: our provisionals are sent reliably (RFC 3262)."""
    _rseq: int = 0
    _unacked: Response | None = None
    _unacked_resend: Resend | None = None
    _queued: list[tuple[int, tuple[tuple[str, str], ...], bytes]] = field(default_factory=list)
    _held_ok: tuple[bytes, tuple[tuple[str, str], ...]] | None = None
    _ok: Response | None = None
    _ok_resend: Resend | None = None
    _confirmed: bool = False
    _bye_held: bool = False
    """The owner hung up after our 2xx but before its ACK: the BYE waits for it (§15)."""

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def flow(self) -> Flow | None:
        return self.peer_flow

    @property
    def offered_late(self) -> bool:
        """The INVITE had no offer: ours goes in the 2xx and the answer comes in the ACK."""
        return not self.invite.body

    def start(self, now: float) -> list[Output]:
        """The INVITE is ours to answer: 100 Trying (§8.2.6.1) at once."""
        if self._move(LegInput.INVITE_RECEIVED):
            self.peer_allows_update = allows(self.invite, "UPDATE")  # RFC 3311 §5.1
            self._respond(self.invite_key, self.invite, 100, to_tag=None)
        return self._flush()

    # -- provisionals ------------------------------------------------------------------
    def progress(self, status: int, now: float, *, sdp: bytes = b"") -> list[Output]:
        """Send 180 or 183 (with an early answer in ``sdp``), reliably if the caller asked."""
        if self.state not in UNANSWERED:
            return []
        headers: tuple[tuple[str, str], ...] = (
            ("Contact", str(self.setup.contact(self.transport))),
        )
        if self.reliable_1xx:
            if self._unacked is not None:
                self._queued.append((status, headers, sdp))  # §3: one outstanding at a time
                return []
            self._rseq += 1
            headers += (("Require", "100rel"), ("RSeq", str(self._rseq)))
        response = self._respond(
            self.invite_key, self.invite, status, headers=headers, body=sdp, to_tag=self.local_tag
        )
        if self.reliable_1xx:
            self._unacked = response
            # RFC 3262 §3: T1 doubling, no ceiling; 64*T1 is the give-up.
            self._unacked_resend = Resend.start(now, ceiling=math.inf, t1=self.setup.t1)
        self._move(LegInput.PROVISIONAL_SENT)
        if self.dialog is None:
            try:
                self.dialog = create_uas_dialog(self.invite, response, now, tls=False)
            except DialogError:
                self.dialog = None  # no Contact: no early dialog (PRACK cannot come)
        return self._flush()

    def _on_prack(self, key: ServerTxKey, request: Request, now: float) -> None:
        """§4: a PRACK for our outstanding reliable provisional gets 200 and lets the next one
        (or the held 2xx) go; one that matches none gets 481."""
        rack = (request.headers.get("rack") or "").split()
        expected = [str(self._rseq), str(self.invite.cseq.seq), "INVITE"]
        if self._unacked is None or rack != expected:
            self._respond(key, request, 481, "No Matching Provisional Response")
            return
        self._respond(key, request, 200)
        self._unacked = self._unacked_resend = None
        if self._held_ok is not None:
            sdp, headers = self._held_ok
            self._held_ok = None
            self._send_ok(sdp, headers, now)
        elif self._queued:
            status, _, sdp = self._queued.pop(0)
            sent = self.progress(status, now, sdp=sdp)  # (it flushes: keep what it returns)
            self._out.extend(sent)

    # -- the final response ------------------------------------------------------------
    def answer(
        self, sdp: bytes, now: float, *, headers: Iterable[tuple[str, str]] = ()
    ) -> list[Output]:
        """Send the 2xx with ``sdp`` (our answer, or our offer when the INVITE had none)."""
        if self.state not in UNANSWERED:
            return []
        if self._unacked is not None and self._unacked.body:
            # RFC 3262 §3: no 2xx while a reliable provisional with SDP awaits its PRACK.
            self._held_ok = (sdp, tuple(headers))
            return []
        self._send_ok(sdp, tuple(headers), now)
        return self._flush()

    def _clear_reliable(self) -> None:
        self._unacked = self._unacked_resend = self._held_ok = None
        self._queued.clear()

    def _send_ok(self, sdp: bytes, headers: tuple[tuple[str, str], ...], now: float) -> None:
        self._clear_reliable()
        extra = [
            ("Contact", str(self.setup.contact(self.transport))),
            ("Allow", ALLOW),
            ("Supported", "replaces"),
            *(self.timer.headers() if self.timer is not None else []),
            *headers,
        ]
        ok = self._respond(
            self.invite_key, self.invite, 200, headers=extra, body=sdp, to_tag=self.local_tag
        )
        self._ok = ok
        self.dialog = create_uas_dialog(self.invite, ok, now, tls=False)
        self._move(LegInput.SUCCESS_SENT)
        if not self.reliable:
            self._ok_resend = Resend.start(now, t1=self.setup.t1)
        self._arm_check(now)

    def reject(
        self,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[Output]:
        """A final non-2xx to the INVITE (a 3xx with its Contact in ``headers``)."""
        if self.state not in UNANSWERED:
            return []
        self._clear_reliable()
        self._respond(
            self.invite_key, self.invite, status, reason, headers=headers, to_tag=self.local_tag
        )
        self._move(LegInput.FAILURE_SENT)
        return self._flush()

    def hangup(self, now: float, *, status: int = 480) -> list[Output]:
        if self.state in UNANSWERED:
            return self.reject(status, now)
        if self.state is LegState.CONFIRMED and self._ok is not None and not self._confirmed:
            # §15: no BYE on a confirmed dialog before the ACK for our 2xx came or the wait for
            # it is over (64*T1 of resending it, or of waiting over a reliable transport).
            self._bye_held = True
            if self._ok_resend is None:
                self._timers["held bye"] = now + 64 * self.setup.t1
            return self._flush()
        return Leg.hangup(self, now, status=status)

    # -- what the caller sends ---------------------------------------------------------
    def on_cancel(self, key: ServerTxKey, cancel: Request, now: float) -> list[Output]:
        """§9.2: 200 to the CANCEL; 487 to the INVITE if it has no final response yet."""
        self._respond(key, cancel, 200)
        if self.state in UNANSWERED:
            self._clear_reliable()
            self._respond(self.invite_key, self.invite, 487, to_tag=self.local_tag)
            self._move(LegInput.CANCEL_RECEIVED)
            self._end("cancelled")
        return self._flush()

    def on_ack(self, ack: Request, now: float) -> list[Output]:
        if ack.cseq.seq == self.invite.cseq.seq and self._ok is not None:
            self._ok_resend = None
            if not self._confirmed:
                self._confirmed = True
                sdp = ack.body if self.offered_late and ack.body else None
                self._out.append(Confirmed(leg=self.id, sdp=sdp))
                if self._bye_held:
                    self._bye_held = False
                    self._bye(now)
            return self._flush()
        return Leg.on_ack(self, ack, now)

    def _peer_bye(self, now: float) -> None:
        """A BYE on the early dialog (§15.1.2): the INVITE gets 487."""
        if self._ok is None:
            self._clear_reliable()
            self._respond(self.invite_key, self.invite, 487, to_tag=self.local_tag)
        self._ok_resend = None
        Leg._peer_bye(self, now)

    # -- timers ------------------------------------------------------------------------
    def _extra_deadlines(self) -> list[float]:
        return [r.deadline() for r in (self._unacked_resend, self._ok_resend) if r is not None]

    def _extra_timers(self, now: float) -> None:
        if self._unacked_resend is not None and self._unacked is not None:
            due = self._unacked_resend.due(now)
            if due == "resend":
                self._out.append(Transmit(message=self._unacked, flow=self.peer_flow))
            elif due == "give up":
                self._no_prack(now)
        if self._ok_resend is not None and self._ok is not None:
            due = self._ok_resend.due(now)
            if due == "resend":
                self._out.append(Transmit(message=self._ok, flow=self.peer_flow))
            elif due == "give up":
                # §13.3.1.4: no ACK in 64*T1: the session ends (the owner is told unless it
                # asked for the end already).
                self._ok_resend = None
                if not self._bye_held:
                    self._end("no ACK")
                self._bye_held = False
                self._bye(now)

    def _timer_fired(self, name: str, now: float) -> None:
        if name == "held bye":
            self._bye_held = False
            self._bye(now)
            return
        Leg._timer_fired(self, name, now)

    def _no_prack(self, now: float) -> None:
        """RFC 3262 §3: no PRACK in 64*T1: the UAS SHOULD reject the INVITE with a 5xx."""
        self._clear_reliable()
        self._respond(self.invite_key, self.invite, 500, to_tag=self.local_tag)
        self._move(LegInput.GIVE_UP)
        self._end("no PRACK")

    @property
    def confirmed(self) -> bool:
        """The ACK for our 2xx came."""
        return self._confirmed and self.state is LegState.CONFIRMED
