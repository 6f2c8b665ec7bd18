"""An outgoing leg: the switch is the UAC of the INVITE (RFC 3261 §13.2).

Beyond ``Leg``: the provisionals (an early dialog, a PRACK for each reliable one, RFC 3262
§7.2), the 2xx (ACKed, every copy of it too, §13.2.2.4; a 2xx after our CANCEL or from a second
fork is ACKed and BYEd), the final failures (a 3xx's Contacts for the owner to follow) and
CANCEL (§9.1), with a give-up if the CANCELled INVITE never ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx.calls.leg import Leg, allows
from pbx.calls.leg_states import UNANSWERED, LegInput, LegState
from pbx.calls.outputs import (
    Answered,
    CancelClient,
    Failed,
    Output,
    Progress,
    StartClient,
    Transmit,
)
from pbx.sip.dialog import (
    Dialog,
    build_ack,
    create_uac_dialog,
    next_request,
    receive_response,
)
from pbx.sip.message import Request, Response
from pbx.sip.transaction import ClientKey


@dataclass(eq=False, slots=True, kw_only=True)
class OutgoingLeg(Leg):
    invite: Request
    _rseq_acked: int = 0
    _ack: Request | None = None

    @property
    def call_id(self) -> str:
        return self.invite.call_id

    @property
    def final_ack(self) -> Request | None:
        """The ACK sent for the INVITE's 2xx (sent again to each copy of it)."""
        return self._ack

    @property
    def invite_key(self) -> ClientKey:
        return ClientKey(self.invite.top_via.branch or "", "INVITE")

    @property
    def chose_call_id(self) -> bool:
        return True

    def start(self, now: float) -> list[Output]:
        if self._move(LegInput.INVITE_SENT):
            self._out.append(
                StartClient(request=self.invite, destination=self.destination, leg=self.id)
            )
        return self._flush()

    def on_response(self, key: ClientKey, response: Response, now: float) -> list[Output]:
        if key != self.invite_key:
            return Leg.on_response(self, key, response, now)
        status = response.status
        if status < 200:
            self._provisional(response, now)
        elif status < 300:
            self._success(response, now)
        else:
            self._failure(response)
        return self._flush()

    def on_client_failure(self, key: ClientKey, now: float) -> list[Output]:
        if key == self.invite_key:
            was_live = self.state in UNANSWERED
            if self._move(LegInput.FAILURE_RECEIVED) and was_live:
                self._out.append(Failed(leg=self.id, status=408, reason="no response"))
            return self._flush()
        return Leg.on_client_failure(self, key, now)

    # -- the INVITE's responses -----------------------------------------------------
    def _provisional(self, response: Response, now: float) -> None:
        if response.status == 100 or self.state not in UNANSWERED:
            return
        if response.to.tag is not None:
            if self.dialog is None:
                self.dialog = create_uac_dialog(self.invite, response, now, tls=False)
            elif self.dialog.id.remote_tag == response.to.tag:
                self.dialog = receive_response(self.dialog, response, now)
        rseq = (response.headers.get("rseq") or "").strip()
        reliable = "100rel" in [t.lower() for t in response.option_tags("require")]
        if reliable and rseq.isdigit() and int(rseq) > self._rseq_acked:
            self._prack(response, int(rseq), now)
        self._move(LegInput.PROVISIONAL_RECEIVED)
        sdp = response.body if response.body and _is_sdp(response) else None
        self._out.append(Progress(leg=self.id, status=response.status, sdp=sdp))

    def _prack(self, response: Response, rseq: int, now: float) -> None:
        """RFC 3262 §7.2: acknowledge a reliable provisional with PRACK, once per RSeq."""
        if self.dialog is None or self.dialog.id.remote_tag != response.to.tag:
            return
        self._rseq_acked = rseq
        cseq = response.cseq
        self.dialog, prack = next_request(
            self.dialog,
            "PRACK",
            now,
            via=self.setup.new_via(self.transport),
            headers=[("RAck", f"{rseq} {cseq.seq} {cseq.method}")],
        )
        self._out.append(StartClient(request=prack, destination=self.destination, leg=self.id))

    def _success(self, response: Response, now: float) -> None:
        dialog = self.dialog
        same = dialog is not None and dialog.id.remote_tag == response.to.tag
        if dialog is not None and not same and self.state is not LegState.TERMINATING:
            if not dialog.early:
                # A second fork answered behind a proxy: ACK it and send it away.
                self._ack_and_bye(create_uac_dialog(self.invite, response, now, tls=False), now)
                return
            dialog = None  # another early dialog than the one that answers
        if dialog is None or dialog.early:
            self.dialog = (
                create_uac_dialog(self.invite, response, now, tls=False)
                if dialog is None
                else receive_response(dialog, response, now)
            )
        assert self.dialog is not None
        if self._ack is None or not same:
            self._ack = build_ack(
                self.dialog,
                self.invite.cseq.seq,
                via=self.setup.new_via(self.transport),
                headers=self._credentials(),
            )
        # §13.2.2.4: every 2xx is ACKed, retransmissions too.
        self._out.append(Transmit(message=self._ack, destination=self.destination))
        if self.state is LegState.TERMINATING:
            self._bye(now)  # answered after our CANCEL
            return
        was = self.state
        if not self._move(LegInput.SUCCESS_RECEIVED) or was not in UNANSWERED:
            return  # a copy of the 2xx: ACKed again, nothing new
        self.peer_allows_update = allows(response, "UPDATE")
        self._arm_check(now)
        sdp = response.body if response.body else None
        self._out.append(Answered(leg=self.id, sdp=sdp, response=response))

    def _ack_and_bye(self, dialog: Dialog, now: float) -> None:
        ack = build_ack(
            dialog,
            self.invite.cseq.seq,
            via=self.setup.new_via(self.transport),
            headers=self._credentials(),
        )
        self._out.append(Transmit(message=ack, destination=self.destination))
        _, bye = next_request(dialog, "BYE", now, via=self.setup.new_via(self.transport))
        self._out.append(StartClient(request=bye, destination=self.destination, leg=self.id))

    def _credentials(self) -> list[tuple[str, str]]:
        """§13.2.2.4: the ACK for a 2xx carries the credentials the INVITE carried (an INVITE
        sent again after a 401/407 challenge)."""
        return [
            (name, value)
            for name in ("Authorization", "Proxy-Authorization")
            for value in self.invite.headers.get_all(name.lower())
        ]

    def _failure(self, response: Response) -> None:
        was_live = self.state in UNANSWERED
        if not self._move(LegInput.FAILURE_RECEIVED) or not was_live:
            return
        contacts = tuple(str(c.uri) for c in response.contacts) if response.status < 400 else ()
        self._out.append(
            Failed(
                leg=self.id,
                status=response.status,
                reason=response.reason,
                contacts=contacts,
            )
        )

    # -- ending ----------------------------------------------------------------------
    def hangup(self, now: float, *, status: int = 480) -> list[Output]:
        """CANCEL an unanswered INVITE (§9.1), BYE a confirmed dialog."""
        if self.state in UNANSWERED:
            self._move(LegInput.CANCEL_SENT)
            self._out.append(CancelClient(key=self.invite_key))
            # If the INVITE never ends after the CANCEL, give up on it (Timer C in spirit).
            self._timers["cancelled"] = now + 64 * self.setup.t1
            return self._flush()
        return Leg.hangup(self, now, status=status)

    def _timer_fired(self, name: str, now: float) -> None:
        if name == "cancelled":
            self._move(LegInput.GIVE_UP)
            return
        Leg._timer_fired(self, name, now)


def _is_sdp(message: Request | Response) -> bool:
    content_type = (message.content_type or "").split(";")[0].strip().lower()
    return content_type == "application/sdp"
