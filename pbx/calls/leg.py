"""A leg: one INVITE dialog usage the switch takes part in, sans-I/O.

What both kinds share lives here: the state (moved only through the table of
``leg_states``), requests inside the dialog either way (re-INVITE and UPDATE with glare,
INFO, REFER, NOTIFY, OPTIONS, BYE), the 2xx to a peer's re-INVITE resent until its ACK, the
session check, and the timers. ``IncomingLeg`` (we are the UAS of the INVITE) and
``OutgoingLeg`` (its UAC) add the initial transaction. A leg never knows whether it is a
caller or a callee of a call: its owner (an application) decides what it is for.

Every public method takes ``now`` and returns the outputs to carry out (``pbx.calls.outputs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pbx.calls.leg_states import LIVE, LegInput, LegState, next_state
from pbx.calls.outputs import (
    Ended,
    Output,
    PeerAck,
    PeerRequest,
    RequestAnswered,
    Respond,
    ServerTxKey,
    StartClient,
    Transmit,
)
from pbx.calls.resend import Resend
from pbx.calls.session_timer import SessionTimer, TooSmall, negotiate
from pbx.sip.dialog import (
    Dialog,
    DialogError,
    build_ack,
    next_request,
    receive_request,
    receive_response,
    terminate,
)
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_response
from pbx.sip.transaction import ClientKey
from pbx.transport.flow import Destination, Flow

ALLOW = "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, PRACK, MESSAGE, OPTIONS, REFER, NOTIFY"
OWNER_DECIDES = ("INVITE", "UPDATE", "INFO", "REFER", "NOTIFY", "MESSAGE")
"""In-dialog methods handed to the owner (``PeerRequest``); the leg answers the rest."""
GLARE_RETRIES = 3


def allows(message: Request | Response, method: str) -> bool:
    """Whether the message's Allow header fields list ``method`` (RFC 3261 §20.5; method
    names are case-sensitive, §7.1)."""
    return any(
        item.strip() == method
        for value in message.headers.get_all("allow")
        for item in value.split(",")
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class LegSetup:
    """What a leg needs from where it runs: names, our addresses, randomness, timers."""

    server: str
    contact: Callable[[str], NameAddress]
    """Our Contact for a transport name."""
    new_via: Callable[[str], Via]
    """A Via for a transport name, with a fresh branch."""
    new_tag: Callable[[], str]
    random_delay: Callable[[float, float], float]
    """A random number in [low, high): the §14.1 glare retry delays."""
    t1: float = 0.5
    t2: float = 4.0
    refresh: float = 900.0
    """Seconds between session checks of a confirmed leg (RFC 4028 in spirit)."""


@dataclass(slots=True, kw_only=True)
class _Sent:
    """A request the owner sent in the dialog, until its final response."""

    ref: int
    method: str
    body: bytes
    content_type: str | None
    headers: tuple[tuple[str, str], ...]
    key: ClientKey | None = None
    retries: int = 0
    ack: Request | None = None
    """For a re-INVITE: the ACK sent for its 2xx (every copy of the 2xx gets it again)."""
    seq: int = 0
    check: bool = False
    """The switch's own session check (its outcome is not the owner's business)."""
    done: bool = False
    """Its final response came (a re-INVITE is kept to ACK copies of its 2xx)."""


@dataclass(slots=True, kw_only=True)
class _Answered:
    """Our 2xx to the peer's re-INVITE ``ref``, resent until its ACK."""

    ref: int
    seq: int
    response: Response
    resend: Resend | None
    offered: bool


@dataclass(eq=False, slots=True, kw_only=True)
class Leg:
    id: str
    setup: LegSetup
    transport: str
    reliable: bool
    destination: Destination
    """Where requests in the dialog go (the peer's flow or its registered contact)."""
    state: LegState = LegState.NEW
    dialog: Dialog | None = None
    timer: SessionTimer | None = None
    peer_allows_update: bool = False
    owner: Any = None
    end_reason: str | None = None
    _out: list[Output] = field(default_factory=list)
    _timers: dict[str, float] = field(default_factory=dict)
    _next_ref: int = 0
    _pending_in: dict[int, tuple[ServerTxKey, Request]] = field(default_factory=dict)
    _answered: dict[int, _Answered] = field(default_factory=dict)
    _sent: dict[ClientKey, _Sent] = field(default_factory=dict)
    _glare: dict[int, _Sent] = field(default_factory=dict)

    # -- the table ---------------------------------------------------------------------
    def _move(self, event: LegInput) -> bool:
        state = next_state(self.state, event)
        if state is None:
            return False
        self.state = state
        if state is LegState.TERMINATED:
            self._stop()
        return True

    def _stop(self) -> None:
        self._timers.clear()
        self._answered.clear()
        self._glare.clear()
        if self.dialog is not None:
            self.dialog = terminate(self.dialog, 0.0)

    @property
    def call_id(self) -> str:
        raise NotImplementedError

    @property
    def flow(self) -> Flow | None:
        """The flow responses to the peer's requests go back over (incoming legs)."""
        return None

    def _flush(self) -> list[Output]:
        out, self._out = self._out, []
        return out

    def _end(self, reason: str) -> None:
        """The leg ended by itself (the peer or a give-up): tell the owner once."""
        if self.end_reason is None:
            self.end_reason = reason
            self._out.append(Ended(leg=self.id, reason=reason))

    # -- timers ----------------------------------------------------------------------------
    def next_deadline(self) -> float | None:
        deadlines = list(self._timers.values())
        deadlines += [a.resend.deadline() for a in self._answered.values() if a.resend]
        deadlines += self._extra_deadlines()
        return min(deadlines) if deadlines else None

    def _extra_deadlines(self) -> list[float]:
        return []

    def handle_timer(self, now: float) -> list[Output]:
        for name, at in list(self._timers.items()):
            if at <= now and self._timers.get(name) == at:
                del self._timers[name]
                self._timer_fired(name, now)
        for answered in list(self._answered.values()):
            if answered.resend is not None:
                self._resend_answer(answered, now)
        self._extra_timers(now)
        return self._flush()

    def _extra_timers(self, now: float) -> None:
        return

    def _timer_fired(self, name: str, now: float) -> None:
        if name == "check":
            self._session_check(now)
        elif name.startswith("glare:"):
            sent = self._glare.pop(int(name[6:]), None)
            if sent is not None and self.state is LegState.CONFIRMED:
                self._send_sent(sent, now)

    def _resend_answer(self, answered: _Answered, now: float) -> None:
        assert answered.resend is not None
        due = answered.resend.due(now)
        if due == "resend":
            # An outgoing leg has no flow of the peer's: its copies go where its requests go.
            flow = self.flow
            destination = self.destination if flow is None else None
            self._out.append(
                Transmit(message=answered.response, flow=flow, destination=destination)
            )
        elif due == "give up":
            # §13.3.1.4: no ACK for the 2xx in 64*T1: the session is over.
            self._answered.pop(answered.ref, None)
            self._end("no ACK")
            self._bye(now)

    def _arm_check(self, now: float) -> None:
        if self.state is LegState.CONFIRMED:
            interval = self.setup.refresh
            if self.timer is not None:
                interval = min(interval, self.timer.interval / 2)
            self._timers["check"] = now + max(1.0, interval)

    # -- requests from the peer inside the dialog ------------------------------------------
    def on_request(self, key: ServerTxKey, request: Request, now: float) -> list[Output]:
        """A request within our dialog (not ACK or CANCEL)."""
        method = request.method
        event = LegInput.BYE_RECEIVED if method == "BYE" else LegInput.IN_DIALOG_REQUEST
        if self.dialog is None or next_state(self.state, event) is None:
            self._respond(key, request, 481)
            return self._flush()
        try:
            self.dialog = receive_request(self.dialog, request, now)
        except DialogError as exc:
            self._respond(key, request, exc.status, exc.reason)
            return self._flush()
        self._move(event)
        if method == "BYE":
            self._respond(key, request, 200)
            self._peer_bye(now)
            self._end("hung up")
            return self._flush()
        self._arm_check(now)
        if method == "PRACK":
            self._on_prack(key, request, now)
        elif method == "OPTIONS":
            self._respond(key, request, 200, headers=[("Allow", ALLOW)])
        elif method in OWNER_DECIDES:
            self._to_owner(key, request, now)
        else:
            self._respond(key, request, 405, headers=[("Allow", ALLOW)])
        return self._flush()

    def _peer_bye(self, now: float) -> None:
        """The peer's BYE arrived (the state table moved already)."""
        self._stop()

    def _on_prack(self, key: ServerTxKey, request: Request, now: float) -> None:
        self._respond(key, request, 200)

    def _to_owner(self, key: ServerTxKey, request: Request, now: float) -> None:
        sdp: bytes | None = None
        if request.method in ("INVITE", "UPDATE"):
            if self._offer_outstanding(request.method):
                # §14.2 / RFC 3311 §5.2: an offer of ours is outstanding: glare.
                self._respond(key, request, 491)
                return
            try:
                timer = negotiate(request)
            except SipParseError as exc:
                self._respond(key, request, exc.status, exc.reason)
                return
            if isinstance(timer, TooSmall):
                self._respond(key, request, 422, headers=timer.headers())
                return
            sdp = request.body if request.body else None
        self._next_ref += 1
        self._pending_in[self._next_ref] = (key, request)
        self._out.append(PeerRequest(leg=self.id, ref=self._next_ref, request=request, sdp=sdp))

    def _offer_outstanding(self, method: str) -> bool:
        ours = any(
            s.method in ("INVITE", "UPDATE") and not s.check and (not s.done or s.ack is None)
            for s in self._sent.values()
        )
        theirs = any(r.method in ("INVITE", "UPDATE") for _, r in self._pending_in.values())
        unacked = any(a.offered for a in self._answered.values())
        return ours or theirs or unacked or bool(self._glare)

    def reply(
        self,
        ref: int,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[Output]:
        """Answer the peer's request ``ref`` (a ``PeerRequest``)."""
        pending = self._pending_in.pop(ref, None)
        if pending is None:
            return []
        key, request = pending
        extra = list(headers)
        if request.method in ("INVITE", "UPDATE") and 200 <= status < 300:
            extra.append(("Contact", str(self.setup.contact(self.transport))))
            timer = negotiate(request)
            if isinstance(timer, SessionTimer):
                # RFC 4028 §9: we answer the refresh the peer sent, whatever the rest knows.
                extra += timer.headers()
                self.timer = timer
        response = self._respond(key, request, status, reason, headers=extra, body=body)
        if request.method == "INVITE" and 200 <= status < 300:
            resend = None if self.reliable else Resend.start(now, t1=self.setup.t1)
            self._answered[ref] = _Answered(
                ref=ref,
                seq=request.cseq.seq,
                response=response,
                resend=resend,
                offered=not request.body and bool(body),
            )
        self._arm_check(now)
        return self._flush()

    def on_ack(self, ack: Request, now: float) -> list[Output]:
        """An ACK in our dialog: for our 2xx to the INVITE or to a re-INVITE."""
        for ref, answered in list(self._answered.items()):
            if answered.seq == ack.cseq.seq:
                del self._answered[ref]
                sdp = ack.body if answered.offered and ack.body else None
                self._out.append(PeerAck(leg=self.id, ref=ref, sdp=sdp))
        return self._flush()

    # -- requests we send inside the dialog ---------------------------------------------
    def send(
        self,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
    ) -> tuple[int, list[Output]]:
        """Send ``method`` in the dialog for the owner; its final response comes back as
        ``RequestAnswered`` with the returned ref (a 408 one when it cannot be sent)."""
        self._next_ref += 1
        sent = _Sent(
            ref=self._next_ref,
            method=method,
            body=body,
            content_type=content_type,
            headers=tuple(headers),
        )
        self._send_sent(sent, now)
        return sent.ref, self._flush()

    def _send_sent(self, sent: _Sent, now: float) -> None:
        dialog = self.dialog
        if dialog is None or dialog.terminated or self.state not in LIVE:
            if not sent.check:
                self._out.append(
                    RequestAnswered(
                        leg=self.id, ref=sent.ref, method=sent.method, status=481, response=None
                    )
                )
            return
        contact = self.setup.contact(self.transport) if sent.method != "OPTIONS" else None
        self.dialog, request = next_request(
            dialog,
            sent.method,
            now,
            via=self.setup.new_via(self.transport),
            contact=contact,
            headers=sent.headers,
            body=sent.body,
            content_type=sent.content_type,
        )
        sent.key = ClientKey(request.top_via.branch or "", sent.method)
        sent.seq = request.cseq.seq
        self._sent[sent.key] = sent
        self._out.append(StartClient(request=request, destination=self.destination, leg=self.id))

    def on_response(self, key: ClientKey, response: Response, now: float) -> list[Output]:
        """A response to a request of ours in the dialog."""
        if response.status >= 200 and self.bye_done(key):
            return self._flush()
        sent = self._sent.get(key)
        if sent is None:
            return []
        if sent.done:
            if sent.ack is not None and 200 <= response.status < 300:
                # A copy of the re-INVITE's 2xx: our ACK was lost (§13.2.2.4).
                self._out.append(Transmit(message=sent.ack, destination=self.destination))
            return self._flush()
        if response.status < 200:
            return []
        gone = response.status in (408, 481) and self.state is LegState.CONFIRMED
        if self.dialog is not None and not self.dialog.terminated and not gone:
            # (A 408/481 would end the dialog here; _answered_by ends it with a BYE instead.)
            self.dialog = receive_response(self.dialog, response, now)
        sent.done = True
        if sent.method == "INVITE" and response.status < 300:
            if sent.body or not response.body:
                acked = self.ack(sent.ref, b"", now)  # (it flushes: keep what it returns)
                self._out.extend(acked)
            # else: the 2xx offers; the owner answers it through ack() (kept until then).
        else:
            del self._sent[key]
        if response.status == 491 and sent.retries < GLARE_RETRIES:
            self._glare_retry(sent, now)
            return self._flush()
        self._answered_by(sent, response.status, response, now)
        return self._flush()

    def on_client_failure(self, key: ClientKey, now: float) -> list[Output]:
        """Our request timed out or could not be sent (§8.1.3.1: as a 408)."""
        if self.bye_done(key):
            return self._flush()
        sent = self._sent.pop(key, None)
        if sent is not None:
            self._answered_by(sent, 408, None, now)
        return self._flush()

    def _answered_by(self, sent: _Sent, status: int, response: Response | None, now: float) -> None:
        if not sent.check:
            self._out.append(
                RequestAnswered(
                    leg=self.id, ref=sent.ref, method=sent.method, status=status, response=response
                )
            )
        if status in (408, 481) and self.state is LegState.CONFIRMED:
            # §12.2.1.2: the dialog is gone; RFC 4028 §10 for a check that got no answer.
            self._end("session refresh failed" if sent.check else "dialog gone")
            self._bye(now)

    def _glare_retry(self, sent: _Sent, now: float) -> None:
        """§14.1: after a 491, try again later: 2.1-4 s when we chose the Call-ID, else 0-2 s."""
        sent.retries += 1
        sent.done = False  # the retry is a new request: its answer is not a copy of the 491
        low, high = (2.1, 4.0) if self.chose_call_id else (0.0, 2.0)
        self._glare[sent.ref] = sent
        self._timers[f"glare:{sent.ref}"] = now + self.setup.random_delay(low, high)

    @property
    def chose_call_id(self) -> bool:
        return False

    def ack(self, ref: int, sdp: bytes, now: float) -> list[Output]:
        """ACK the 2xx to our re-INVITE ``ref``, with ``sdp`` answering the offer it carried."""
        sent = next((s for s in self._sent.values() if s.ref == ref), None)
        if sent is None or sent.ack is not None or self.dialog is None:
            return self._flush()
        sent.ack = build_ack(
            self.dialog,
            sent.seq,
            via=self.setup.new_via(self.transport),
            body=sdp,
            content_type="application/sdp" if sdp else None,
        )
        self._out.append(Transmit(message=sent.ack, destination=self.destination))
        return self._flush()

    def forget_client(self, key: ClientKey) -> None:
        """The client transaction ``key`` is over (the layer forgot it)."""
        self._sent.pop(key, None)

    # -- the session check -----------------------------------------------------------------
    def _session_check(self, now: float) -> None:
        """Is the peer still there? UPDATE without SDP where its Allow lists UPDATE, else an
        in-dialog OPTIONS (RFC 3311 §5.1; a 481 to either says the dialog is gone)."""
        if self.state is not LegState.CONFIRMED:
            return
        method = "UPDATE" if self.peer_allows_update else "OPTIONS"
        self._next_ref += 1
        sent = _Sent(
            ref=self._next_ref, method=method, body=b"", content_type=None, headers=(), check=True
        )
        self._send_sent(sent, now)
        self._arm_check(now)

    # -- ending ------------------------------------------------------------------------
    def hangup(self, now: float, *, status: int = 480) -> list[Output]:
        """End the leg whatever its state: BYE when confirmed, CANCEL an unanswered INVITE of
        ours, ``status`` for an unanswered INVITE we received."""
        if self.state is LegState.CONFIRMED:
            self._bye(now)
        return self._flush()

    def _bye(self, now: float) -> None:
        if not self._move(LegInput.BYE_SENT) and self.state is not LegState.TERMINATING:
            return
        self._answered.clear()
        self._timers.clear()
        dialog = self.dialog
        if dialog is None or dialog.terminated:
            self._move(LegInput.BYE_DONE)
            return
        self.dialog, bye = next_request(dialog, "BYE", now, via=self.setup.new_via(self.transport))
        self._next_ref += 1
        sent = _Sent(
            ref=self._next_ref, method="BYE", body=b"", content_type=None, headers=(), check=True
        )
        sent.key = ClientKey(bye.top_via.branch or "", "BYE")
        self._sent[sent.key] = sent
        self._out.append(StartClient(request=bye, destination=self.destination, leg=self.id))

    def bye_done(self, key: ClientKey) -> bool:
        """Whether ``key`` was our BYE (the leg is then terminated)."""
        sent = self._sent.get(key)
        if sent is None or sent.method != "BYE":
            return False
        del self._sent[key]
        self._move(LegInput.BYE_DONE)
        return True

    # -- responses to the peer ---------------------------------------------------------
    def _respond(
        self,
        key: ServerTxKey,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> Response:
        extra = [*headers, ("Server", self.setup.server)]
        if body:
            extra.append(("Content-Type", "application/sdp"))
        tag = to_tag or (self.dialog.id.local_tag if self.dialog else None) or self.setup.new_tag()
        response = make_response(request, status, reason, to_tag=tag, headers=extra, body=body)
        self._out.append(Respond(key=key, response=response))
        return response
