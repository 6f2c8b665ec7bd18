"""The gateway's INVITE dialog usages, sans-I/O: what RFC 3261 asks of a UA core above the
transaction layer, for the one call a line carries.

``UasInviteLeg`` (the switch INVITEd us to dial out): our responses, with our tag and Contact,
make the dialog; a 2xx is resent over datagrams at T1, doubling to T2, until the ACK, and after
64*T1 without one the leg reports ``AckTimedOut`` and sends the BYE (§13.3.1.4). A BYE of ours
asked for before the ACK waits for it or for that timeout (§15). ``UacInviteLeg`` (we INVITEd the
switch for a ringing line): the ACK for a 2xx, sent again for each 2xx copy (§13.2.2.4), and a
BYE for a 2xx that arrives after we gave the call up (our CANCEL crossed it, §9.1).

Same surface as the project's protocol objects: ``receive(msg, now)``, ``handle_timer(now)``,
``next_deadline()``, outputs as frozen dataclasses; the Via (and so the random branch) of a
request we send comes from the injected ``new_via``. The lead's shared ``pbx/calls/leg.py`` is
meant to replace this module.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from pbx.sip.dialog import (
    Dialog,
    DialogState,
    build_ack,
    create_uac_dialog,
    create_uas_dialog,
    next_request,
    receive_response,
)
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_response
from pbx.sip.transaction import TimerSettings


class LegState(enum.Enum):
    PROCEEDING = "proceeding"
    """No response with a tag yet (UAS: none sent; UAC: none received)."""
    EARLY = "early"
    ACCEPTED = "accepted"
    """UAS: our 2xx is out, no ACK yet (it is being resent)."""
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResponse:
    """Send this response to the INVITE (through its server transaction while there is one)."""

    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class SendAck:
    """Send this ACK for a 2xx (it is no transaction, §17.1.1.3: straight to the transport)."""

    ack: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    """Send this request within the dialog in a new client transaction (a BYE)."""

    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class LegConfirmed:
    """The dialog is confirmed: the ACK came (UAS) or the 2xx did (UAC)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AckTimedOut:
    """§13.3.1.4: 64*T1 of resending the 2xx brought no ACK; the leg sends BYE and is over."""


LegOutput = SendResponse | SendAck | SendRequest | LegConfirmed | AckTimedOut


class UasInviteLeg:
    """The dialog usage of an INVITE we received."""

    __slots__ = (
        "invite", "local_tag", "contact", "settings", "state", "dialog", "_new_via",
        "_final", "_resend_at", "_interval", "_give_up_at", "_bye_wanted",
    )  # fmt: skip

    def __init__(
        self,
        invite: Request,
        *,
        local_tag: str,
        contact: NameAddress,
        new_via: Callable[[], Via],
        settings: TimerSettings | None = None,
    ) -> None:
        self.invite = invite
        self.local_tag = local_tag
        self.contact = contact
        self.settings = settings if settings is not None else TimerSettings()
        self.state = LegState.PROCEEDING
        self.dialog: Dialog | None = None
        self._new_via = new_via
        self._final: Response | None = None
        self._resend_at: float | None = None
        self._interval = self.settings.t1
        self._give_up_at: float | None = None
        self._bye_wanted = False

    @property
    def answered(self) -> bool:
        """A final response has been sent (no CANCEL can change anything now, §9.2)."""
        return self._final is not None

    def respond(
        self,
        status: int,
        now: float,
        reason: str | None = None,
        *,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[LegOutput]:
        """Our response to the INVITE; nothing once a final one was sent."""
        if self._final is not None or status == 100:
            return []
        fields = [("Contact", str(self.contact)), *headers]
        if body:
            fields.append(("Content-Type", "application/sdp"))
        response = make_response(
            self.invite, status, reason, to_tag=self.local_tag, headers=fields, body=body
        )
        if status < 300 and self.dialog is None and self.invite.contacts:
            self.dialog = create_uas_dialog(self.invite, response, now, tls=False)
        elif 200 <= status < 300 and self.dialog is not None and self.dialog.early:
            # §12.1.1: the early dialog of our 183 is confirmed by the 2xx.
            self.dialog = replace(self.dialog, state=DialogState.CONFIRMED, confirmed_at=now)
        if status < 200:
            self.state = LegState.EARLY
        elif status < 300:
            # §13.3.1.4: resend at T1, doubling to T2, until the ACK; give up at 64*T1.
            self._final = response
            self.state = LegState.ACCEPTED
            self._interval = self.settings.t1
            self._resend_at = now + self._interval
            self._give_up_at = now + self.settings.sixty_four_t1
        else:
            self._final = response
            self.state = LegState.TERMINATED
        return [SendResponse(response=response)]

    def receive(self, request: Request, now: float) -> list[LegOutput]:
        """An ACK for our 2xx confirms the dialog (a BYE wanted meanwhile goes now); a BYE
        received ends it. Other requests are the agent's."""
        if request.method == "ACK" and request.cseq.seq == self.invite.cseq.seq:
            if self.state is not LegState.ACCEPTED:
                return []  # a retransmitted ACK, or one for a call already over
            self.state = LegState.CONFIRMED
            self._stop_timers()
            out: list[LegOutput] = [LegConfirmed()]
            return out + (self._send_bye(now) if self._bye_wanted else [])
        if request.method == "BYE":
            self.state = LegState.TERMINATED
            self._stop_timers()
        return []

    def hang_up(self, now: float) -> list[LegOutput]:
        """End the answered call with a BYE; before the ACK, the BYE waits for it (§15)."""
        if self.state is LegState.ACCEPTED:
            self._bye_wanted = True
            return []
        if self.state is LegState.CONFIRMED:
            return self._send_bye(now)
        return []

    def next_deadline(self) -> float | None:
        times = [t for t in (self._resend_at, self._give_up_at) if t is not None]
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[LegOutput]:
        if self.state is not LegState.ACCEPTED or self._final is None:
            return []
        if self._give_up_at is not None and now >= self._give_up_at:
            self._stop_timers()
            return [AckTimedOut(), *self._send_bye(now)]
        if self._resend_at is not None and now >= self._resend_at:
            self._interval = min(2 * self._interval, self.settings.t2)
            self._resend_at = now + self._interval
            return [SendResponse(response=self._final)]
        return []

    def _stop_timers(self) -> None:
        self._resend_at = self._give_up_at = None

    def _send_bye(self, now: float) -> list[LegOutput]:
        self.state = LegState.TERMINATED
        self._bye_wanted = False
        if self.dialog is None:
            return []
        self.dialog, bye = next_request(self.dialog, "BYE", now, via=self._new_via())
        return [SendRequest(request=bye)]


class UacInviteLeg:
    """The dialog usage of an INVITE we sent (the latest, after a digest challenge)."""

    __slots__ = ("invite", "state", "dialog", "ack", "_new_via", "_ack_headers", "_given_up")

    def __init__(
        self,
        invite: Request,
        *,
        new_via: Callable[[], Via],
        ack_headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.invite = invite
        self.state = LegState.PROCEEDING
        self.dialog: Dialog | None = None
        self.ack: Request | None = None
        self._new_via = new_via
        self._ack_headers = tuple(ack_headers)
        self._given_up = False

    def resent_with(self, invite: Request, ack_headers: Iterable[tuple[str, str]]) -> None:
        """The INVITE went again with credentials; its ACK carries them too (§22.1)."""
        self.invite = invite
        self._ack_headers = tuple(ack_headers)

    def receive(self, response: Response, now: float) -> list[LegOutput]:
        if response.cseq.method != "INVITE" or response.cseq.seq != self.invite.cseq.seq:
            return []
        status = response.status
        if status < 200:
            if status > 100 and response.to.tag and self.dialog is None and not self._given_up:
                self.dialog = create_uac_dialog(self.invite, response, now, tls=False)
                self.state = LegState.EARLY
            return []
        if status >= 300:
            self.state = LegState.TERMINATED
            return []
        if self.ack is not None:
            return [SendAck(ack=self.ack)]  # §13.2.2.4: every 2xx copy gets the ACK again
        if self.dialog is None or self.dialog.id.remote_tag != response.to.tag:
            self.dialog = create_uac_dialog(self.invite, response, now, tls=False)
        else:
            self.dialog = receive_response(self.dialog, response, now)
        self.ack = build_ack(
            self.dialog, self.invite.cseq.seq, via=self._new_via(), headers=self._ack_headers
        )
        out: list[LegOutput] = [SendAck(ack=self.ack)]
        if self._given_up:
            # §9.1: our CANCEL crossed the 2xx; the call is set up, so it is ended by BYE.
            return out + self._send_bye(now)
        self.state = LegState.CONFIRMED
        return [*out, LegConfirmed()]

    def hang_up(self, now: float) -> list[LegOutput]:
        """BYE when confirmed; before that the agent CANCELs, and a 2xx still coming is BYEd."""
        if self.state is LegState.CONFIRMED:
            return self._send_bye(now)
        self._given_up = True
        self.state = LegState.TERMINATED
        return []

    def next_deadline(self) -> float | None:
        return None  # the INVITE's retransmissions are its client transaction's

    def handle_timer(self, now: float) -> list[LegOutput]:
        return []

    def _send_bye(self, now: float) -> list[LegOutput]:
        self.state = LegState.TERMINATED
        if self.dialog is None or self.dialog.terminated:
            return []
        self.dialog, bye = next_request(self.dialog, "BYE", now, via=self._new_via())
        return [SendRequest(request=bye)]
