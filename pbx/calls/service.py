"""The B2BUA: calls between extensions with the switch in the signalling and the media path.

A call is the caller's leg (we are its UAS) and one branch per registered contact of the
callee (we are their UAC), each with its own dialog. The switch authenticates the caller
(407, the registrar's rules), forks to every binding, relays 180/183 (early media through the
relay), takes the first 2xx, CANCELs the rest and ACKs, and tears both sides down on BYE or
CANCEL. In-dialog re-INVITE, UPDATE and INFO cross to the other leg with their SDP rewritten
to the relay (a re-INVITE without SDP gets the other leg's offer in its 200, and the answer in
its ACK goes on in our ACK to that leg). Out-of-dialog MESSAGE is proxied statefully to the
callee's bindings.

This module is the asyncio edge: transactions come from the pure transaction layer, SDP
from the pure media plan; timers are loop handles.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol
from zlib import crc32

from sqlite_utils import Database

from pbx.calls.media_plan import (
    LegMedia,
    NoCommonMedia,
    answer_to_caller,
    late_caller_leg,
    offer_to_callee,
    offer_to_late_caller,
    parse_body,
    switch_offer,
)
from pbx.calls.model import Branch, Call, CallState, Forwarded, InDialogAck, ServerTxKey
from pbx.calls.session_timer import SessionTimer, TooSmall, negotiate, refresh_interval
from pbx.clock import Clock
from pbx.registrar.location import Location, reach
from pbx.routing.dialplan import DEFAULT_BLOCKED, LinePlan, route_dialled, split_list
from pbx.routing.digest_check import Verdict, check_digest, offer_for
from pbx.sip.auth import NONCE_SALT_LENGTH, DigestAlgorithm, DigestAuthenticator
from pbx.sip.dialog import (
    DialogError,
    DialogId,
    build_ack,
    create_uac_dialog,
    create_uas_dialog,
    next_request,
    receive_request,
    receive_response,
    uas_dialog_id,
)
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_request, make_response, without_top_via
from pbx.sip.sdp import SessionDescription
from pbx.sip.transaction import (
    MAGIC_COOKIE,
    ClientKey,
    DeliverMessage,
    LegacyServerKey,
    Output,
    SendMessage,
    ServerKey,
    TransactionTerminated,
    TransactionTimeout,
    TransportErrorReported,
)
from pbx.sip.transaction_layer import Incoming, TransactionLayer, client_key_of_response
from pbx.sip.uri import SipUri, parse_uri
from pbx.store.calls import (
    ActiveCall,
    CallRecord,
    clear_active,
    finish_call,
    replace_active,
    save_active,
)
from pbx.store.extensions import (
    LINE_ACCOUNT,
    StoredSecrets,
    get_extension,
    is_line_account,
    list_extensions,
)
from pbx.store.records import Binding
from pbx.store.settings import get_setting, get_settings
from pbx.transport.flow import Destination, Flow
from pbx.transport.layer import TransportLayer
from pbx.transport.response_routing import response_destination

log = logging.getLogger("pbx.calls")

CALL_METHODS = ("INVITE", "ACK", "CANCEL", "BYE", "UPDATE", "INFO", "PRACK", "MESSAGE")
T1, T2 = 0.5, 4.0


class RelayHandle(Protocol):
    def local_address(self, leg: str) -> tuple[str, int]: ...
    def update(self, leg: str, **kwargs: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...
    async def close(self) -> None: ...


class MediaRelayLike(Protocol):
    async def open_session(self, call_id: str) -> Any: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPolicy:
    ring_timeout: float = 60.0
    """Seconds a call may ring before the caller gets 408."""
    session_refresh: float = 900.0
    """Seconds between the switch's refreshes of an answered call (RFC 4028 in spirit): each leg
    gets an UPDATE (or a re-INVITE with the same SDP); a leg that does not answer ends the call."""


@dataclass(frozen=True, slots=True)
class _Target:
    callee: str
    bindings: list[Binding]
    dial: str | None
    """Digits for the line gateway to dial, for a call out; None otherwise."""
    caller: str
    from_line: bool = False
    """The call comes in from the phone line (the caller is the line gateway)."""


class CallService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        transport: TransportLayer,
        relay: MediaRelayLike,
        authenticator: DigestAuthenticator,
        secrets_of: Callable[[str], StoredSecrets | None],
        location: Location,
        record_failure: Callable[[str, float], None],
        new_tag: Callable[[], str],
        server: str = "Switchboard",
        policy: CallPolicy | None = None,
        default_offer: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,),
    ) -> None:
        self._db = db
        self._default_offer = default_offer
        self._clock = clock
        self._transport = transport
        self._relay = relay
        self._auth = authenticator
        self._secrets_of = secrets_of
        self._location = location
        self._record_failure = record_failure
        self._new_tag = new_tag
        self._server = server
        self.policy = policy or CallPolicy()
        self.tl = TransactionLayer()
        self._tl_timer: asyncio.TimerHandle | None = None
        self._by_a_invite: dict[ServerTxKey, Call] = {}
        self._by_a_dialog: dict[DialogId, Call] = {}
        self._by_b_call_id: dict[str, Call] = {}
        self._by_branch: dict[ClientKey, Call] = {}
        self._forwarded: dict[ClientKey, Forwarded] = {}
        self._in_dialog_acks: dict[ClientKey, InDialogAck] = {}
        self._messages: dict[ClientKey, tuple[ServerTxKey, list[int], int]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.calls: set[Call] = set()
        clear_active(db)

    # -- in from the transport ------------------------------------------------------------
    def handle_request(self, request: Request, flow: Flow | None) -> Response | None:
        assert flow is not None
        now = self._clock.monotonic()
        self._run(
            self.tl.receive(Incoming(message=request, source=flow, reliable=flow.reliable), now)
        )
        return None

    def handle_response(self, response: Response, flow: Flow) -> bool:
        """True when the response belongs to one of our client transactions."""
        key = client_key_of_response(response)
        if key is None or self.tl.get(key) is None:
            return False
        now = self._clock.monotonic()
        self._run(
            self.tl.receive(Incoming(message=response, source=flow, reliable=flow.reliable), now)
        )
        return True

    async def stop(self) -> None:
        for call in list(self.calls):
            self._end(call, "shutdown", send_bye=True)
        for task in list(self._tasks):
            task.cancel()
        if self._tl_timer is not None:
            self._tl_timer.cancel()

    # -- the transaction layer's outputs -----------------------------------------------------
    def _run(self, outputs: list[Output]) -> None:
        now = self._clock.monotonic()
        for output in outputs:
            if isinstance(output, SendMessage):
                self._send(output, now)
            elif isinstance(output, DeliverMessage):
                try:
                    self._deliver(output)
                except SipParseError as exc:
                    message = output.message
                    if isinstance(message, Request) and output.key is not None:
                        self._respond(output.key, message, exc.status, exc.reason)  # type: ignore[arg-type]
            elif isinstance(output, TransactionTimeout | TransportErrorReported):
                self._client_failed(output.key, 408)
            elif isinstance(output, TransactionTerminated):
                self._forget(output.key)
        self._arm_tl_timer()

    def _send(self, output: SendMessage, now: float) -> None:
        message, destination = output.message, output.destination
        if isinstance(destination, Flow):
            assert isinstance(message, Response)
            destination = response_destination(message.top_via, destination)
        assert isinstance(destination, Destination)
        if not self._transport.send(message, destination) and output.key is not None:
            self._run(self.tl.transport_error(output.key, now, "send failed"))

    def _arm_tl_timer(self) -> None:
        deadline = self.tl.next_deadline()
        if self._tl_timer is not None:
            self._tl_timer.cancel()
            self._tl_timer = None
        if deadline is not None:
            delay = max(0.0, deadline - self._clock.monotonic())
            self._tl_timer = asyncio.get_running_loop().call_later(delay, self._on_tl_timer)

    def _on_tl_timer(self) -> None:
        self._tl_timer = None
        self._run(self.tl.handle_timer(self._clock.monotonic()))

    def _deliver(self, output: DeliverMessage) -> None:
        message = output.message
        if isinstance(message, Response):
            assert isinstance(output.key, ClientKey)
            self._on_response(output.key, message)
            return
        flow = output.source
        assert isinstance(flow, Flow)
        key = output.key
        method = message.method
        if method == "ACK":
            self._on_ack(message)
            return
        assert key is not None and not isinstance(key, ClientKey)
        if method == "CANCEL":
            self._on_cancel(key, message)
        elif message.to.tag is None:
            if method == "INVITE":
                self._new_call(key, message, flow)
            elif method == "MESSAGE":
                self._new_message(key, message, flow)
            elif method == "PRACK":
                self._respond(key, message, 481)
            else:
                self._respond(key, message, 481)  # BYE/UPDATE/INFO outside a dialog (§12.2.2)
        else:
            self._in_dialog(key, message)

    def _respond(
        self,
        key: ServerTxKey,
        request: Request,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
        to_tag: str | None = None,
        body: bytes = b"",
    ) -> Response:
        extra = list(headers or [])
        extra.append(("Server", self._server))
        if body:
            extra.append(("Content-Type", "application/sdp"))
        response = make_response(
            request,
            status,
            reason,
            to_tag=to_tag or self._new_tag(),
            headers=extra,
            body=body,
        )
        self._run(self.tl.respond(key, response, self._clock.monotonic()))
        return response

    # -- a new call --------------------------------------------------------------------------
    def _authenticate(self, key: ServerTxKey, request: Request, flow: Flow) -> str | None:
        wall = self._clock.wall()
        check = check_digest(
            request,
            header="proxy-authorization",
            authenticator=self._auth,
            secrets_of=self._secrets_of,
            now=wall,
            default_offer=self._default_offer,
        )
        if check.verdict is Verdict.OK:
            return check.user
        if check.verdict is Verdict.MALFORMED:
            self._respond(key, request, 400, "Malformed Proxy-Authorization header")
        elif check.verdict is Verdict.FAILED:
            self._record_failure(flow.remote[0], wall)
            self._respond(key, request, 403, "Forbidden")
        else:
            caller = request.from_.uri.user if isinstance(request.from_.uri, SipUri) else None
            values = self._auth.challenge_values(
                now=wall,
                salt=secrets.token_bytes(NONCE_SALT_LENGTH),
                stale=check.verdict is Verdict.STALE,
                offer=offer_for(self._secrets_of(caller) if caller else None, self._default_offer),
            )
            self._respond(
                key,
                request,
                407,
                "Proxy Authentication Required",
                headers=[("Proxy-Authenticate", v) for v in values],
            )
        return None

    def _precheck(self, key: ServerTxKey, request: Request) -> bool:
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards == 0:
            self._respond(key, request, 483)
            return False
        local = self._local(request.top_via.transport)
        for via in request.vias[1:]:
            # §16.3 step 4 in spirit: our own address further down the Via means a loop.
            if via.host_bare == local[0] and (via.port or 5060) == local[1]:
                self._respond(key, request, 482)
                return False
        return True

    def _session_timer(
        self, key: ServerTxKey, request: Request
    ) -> tuple[bool, SessionTimer | None]:
        """RFC 4028 for an INVITE or UPDATE: (refused, the timer to answer with or None when
        none was asked). Refused means answered already: 422 under Min-SE, 400 if malformed."""
        try:
            timer = negotiate(request)
        except SipParseError as exc:
            self._respond(key, request, exc.status, exc.reason)
            return True, None
        if isinstance(timer, TooSmall):
            self._respond(key, request, 422, "Session Interval Too Small", headers=timer.headers())
            return True, None
        return False, timer

    def _reachable(self, aor: str) -> list[Binding]:
        local = self._local("UDP")
        return [b for b in self._location.bindings_of(aor) if reach(b) != local]

    def _line_plan(self) -> LinePlan:
        found = get_settings(
            self._db, "blocked_prefixes", "outside_prefix", "outbound_patterns", "line_country"
        )
        blocked = found.get("blocked_prefixes")
        return LinePlan(
            outside_prefix=found.get("outside_prefix") or "9",
            outbound_patterns=split_list(found.get("outbound_patterns") or ""),
            blocked_prefixes=DEFAULT_BLOCKED if blocked is None else split_list(blocked),
            country=found.get("line_country") or "US",
        )

    def _target(self, key: ServerTxKey, request: Request, caller: str) -> _Target | None:
        """Who this call rings: the office for a call from the line, else the dial plan."""
        db = self._db
        if is_line_account(db, caller):
            # Inbound from the phone line: the configured ring group, or every extension.
            configured = split_list(get_setting(db, "inbound_target") or "")
            numbers = list(configured) or [e.number for e in list_extensions(db)]
            bindings = [b for n in numbers for b in self._reachable(n)]
            if not bindings:
                self._respond(key, request, 480, "Temporarily Unavailable")
                return None
            caller_id = request.from_.uri.user if isinstance(request.from_.uri, SipUri) else None
            return _Target(",".join(numbers), bindings, None, caller_id or "unknown", True)
        uri = request.uri
        dialled = uri.user if isinstance(uri, SipUri) else None
        extension = get_extension(db, caller)
        route = route_dialled(
            dialled or "",
            plan=self._line_plan(),
            is_extension=lambda number: get_extension(db, number) is not None,
            outbound_allowed=extension is not None and extension.outbound_allowed,
        )
        if route.kind == "reject":
            self._respond(key, request, route.status, route.reason)
            return None
        if route.kind == "extension":
            bindings = self._reachable(route.target)
            if not bindings:
                self._respond(key, request, 480, "Temporarily Unavailable")
                return None
            return _Target(route.target, bindings, None, caller)
        line = self._reachable(LINE_ACCOUNT)
        if not line:
            self._respond(key, request, 503, "Phone Line Not Connected")
            return None
        if any(c.via_line for c in self.calls):
            self._respond(key, request, 486, "Phone Line Busy")  # one analog line, one call
            return None
        return _Target(route.target, line, route.target, caller)

    def _new_call(self, key: ServerTxKey, invite: Request, flow: Flow) -> None:
        if not self._precheck(key, invite):
            return
        caller = self._authenticate(key, invite, flow)
        if caller is None:
            return
        target = self._target(key, invite, caller)
        if target is None:
            return
        callee, bindings = target.callee, target.bindings
        try:
            offer = parse_body(invite.content_type, invite.body)
        except SipParseError:
            self._respond(key, invite, 400, "Malformed SDP")
            return
        refused, timer = self._session_timer(key, invite)
        if refused:
            return
        call = Call(
            caller=target.caller,
            callee=callee,
            via_line=target.dial is not None or target.from_line,
            dial=target.dial,
            a_invite=invite,
            a_key=key,
            a_flow=flow,
            a_tag=self._new_tag(),
            b_call_id=f"{secrets.token_hex(12)}@switchboard",
            b_from_tag=self._new_tag(),
            started_at=self._clock.wall(),
            offer_a=offer,
            timer_a=timer,
            a_reliable="100rel" in [t.lower() for t in invite.option_tags("require")],
        )
        self.calls.add(call)
        self._by_a_invite[key] = call
        self._by_b_call_id[call.b_call_id] = call
        self._respond(key, invite, 100, to_tag=None)
        self._save_active(call)
        log.info(
            "event=call_start call_id=%s b_call_id=%s caller=%s callee=%s contacts=%d",
            invite.call_id,
            call.b_call_id,
            caller,
            callee,
            len(bindings),
        )
        task = asyncio.get_running_loop().create_task(self._route(call, bindings))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _route(self, call: Call, bindings: list[Binding]) -> None:
        try:
            relay = await self._relay.open_session(call.a_call_id)
        except Exception:
            log.exception("event=relay_failed call_id=%s", call.a_call_id)
            self._fail(call, 503, "media relay unavailable")
            return
        if call.state is CallState.ENDED:  # cancelled while the relay opened
            await relay.close()
            return
        call.relay = relay
        host, port = relay.local_address("b")
        try:
            if call.offer_a is None:  # a late offer: the switch offers, the caller answers last
                offer_b = switch_offer(
                    address=host, port=port, session_id=self._session_id(call),
                    version=call.sdp_version,
                )  # fmt: skip
            else:
                offer_b = offer_to_callee(
                    call.offer_a,
                    address=host,
                    port=port,
                    session_id=self._session_id(call),
                    version=call.sdp_version,
                )
        except NoCommonMedia:
            self._fail(call, 488, "no common codec")
            return
        body = offer_b.serialize().encode()
        call.last_sdp_to["b"] = body
        now = self._clock.monotonic()
        for binding in bindings:
            self._fork(call, binding, body, now)
        call.timers["ring"] = asyncio.get_running_loop().call_later(
            self.policy.ring_timeout, self._ring_timeout, call
        )

    def _fork(self, call: Call, binding: Binding, body: bytes, now: float) -> None:
        invite = call.a_invite
        try:
            target = parse_uri(binding.contact)
        except SipParseError:
            return
        if call.dial is not None and isinstance(target, SipUri):
            target = replace(target, user=call.dial)  # the gateway dials what the user part says
        destination = Destination(
            transport=binding.transport, host=reach(binding)[0], port=reach(binding)[1]
        )
        via = self._via(binding.transport)
        a_from = invite.from_
        from_ = NameAddress(
            display_name=a_from.display_name,
            uri=SipUri(user=call.caller, host=self._local_host(binding.transport)),
            params=(("tag", call.b_from_tag),),
        )
        to_user = call.dial if call.dial is not None else binding.aor
        to = NameAddress(uri=SipUri(user=to_user, host=self._local_host(binding.transport)))
        max_forwards = invite.max_forwards
        headers = [("Route", hop) for hop in binding.path]
        headers += [
            ("Supported", "100rel, replaces"),
            ("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, PRACK, MESSAGE, OPTIONS"),
            ("User-Agent", self._server),
        ]
        request = make_request(
            "INVITE",
            target,
            via=via,
            from_=from_,
            to=to,
            call_id=call.b_call_id,
            cseq=1,
            max_forwards=69 if max_forwards is None else max(0, max_forwards - 1),
            contact=self._contact(binding.transport),
            headers=headers,
            body=body,
            content_type="application/sdp",
        )
        branch = Branch(
            key=ClientKey(via.branch or "", "INVITE"),
            invite=request,
            binding=binding,
            destination=destination,
        )
        call.branches[branch.key] = branch
        self._by_branch[branch.key] = call
        self._run(
            self.tl.send_request(request, destination, now, reliable=binding.transport != "UDP")
        )

    # -- responses from the callee's branches -------------------------------------------------
    def _on_response(self, key: ClientKey, response: Response) -> None:
        forwarded = self._forwarded.get(key)
        if forwarded is not None:
            self._forwarded_response(key, forwarded, response)
            return
        if key in self._messages:
            self._message_response(key, response)
            return
        in_dialog_ack = self._in_dialog_acks.get(key)
        if in_dialog_ack is not None:
            # A copy of a crossed re-INVITE's 2xx: our ACK was lost (sent again), or the
            # answer it must carry has not come yet (nothing to send until it does).
            if 200 <= response.status < 300 and in_dialog_ack.ack is not None:
                self._send_in_dialog_ack(in_dialog_ack)
            return
        call = self._by_branch.get(key)
        if call is None or key.method != "INVITE":
            return
        branch = call.branches.get(key)
        if branch is None:
            return
        status = response.status
        if status < 200:
            self._provisional(call, branch, response)
        elif status < 300:
            self._answered(call, branch, response)
        else:
            branch.final_status = status
            self._branch_failed(call)

    def _provisional(self, call: Call, branch: Branch, response: Response) -> None:
        if response.status == 100 or call.state not in (CallState.ROUTING, CallState.RINGING):
            return
        now = self._clock.monotonic()
        if response.to.tag is not None:
            if branch.dialog is None:
                branch.dialog = create_uac_dialog(branch.invite, response, now, tls=False)
            else:
                branch.dialog = receive_response(branch.dialog, response, now)
        rseq = response.headers.get("rseq")
        if rseq and "100rel" in [t.lower() for t in response.option_tags("require")]:
            self._prack(branch, response, int(rseq.strip()))
        call.state = CallState.RINGING
        answer = None
        try:
            early = parse_body(response.content_type, response.body)
        except SipParseError:
            early = None
        if early is not None and not call.early_media_sent and call.offer_a is not None:
            # (A late offer's caller gets a plain 180: an offer may not ride an unreliable 1xx.)
            answer = self._sdp_for_a(call, early)
        if answer is None and call.ringing_sent:
            return
        status = 183 if answer is not None else 180
        call.ringing_sent = True
        call.early_media_sent = call.early_media_sent or answer is not None
        headers = [("Contact", str(self._contact(call.a_flow.transport)))]
        if call.a_reliable:
            self._reliable_1xx(call, status, headers, answer or b"")
            return
        self._respond(
            call.a_key,
            call.a_invite,
            status,
            headers=headers,
            to_tag=call.a_tag,
            body=answer or b"",
        )

    # -- reliable provisionals to the caller (RFC 3262) -----------------------------------------
    def _reliable_1xx(
        self, call: Call, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        """§3: one reliable provisional outstanding at a time (later ones wait for its PRACK),
        resent T1 doubling until the PRACK comes."""
        if call.a_unacked is not None:
            call.a_queued.append((status, headers, body))
            return
        call.a_rseq += 1
        call.a_unacked = self._respond(
            call.a_key,
            call.a_invite,
            status,
            headers=[*headers, ("Require", "100rel"), ("RSeq", str(call.a_rseq))],
            to_tag=call.a_tag,
            body=body,
        )
        # RFC 3262 §3: T1 doubling, no ceiling.
        self._resend_to_a(call, call.a_unacked, "rel1xx", self._no_prack, ceiling=math.inf)

    def _no_prack(self, call: Call) -> None:
        """§3: no PRACK in 64*T1: the UAS SHOULD reject the INVITE with a 5xx."""
        self._clear_reliable(call)
        if call.state is CallState.ANSWERED:  # the callee answered meanwhile: BYE it
            self._respond(call.a_key, call.a_invite, 500, to_tag=call.a_tag)
            call.final_status = 500
            self._end(call, "no PRACK from caller", send_bye=True)
        else:
            self._fail(call, 500, "no PRACK from caller")

    def _prack_from_a(self, call: Call, key: ServerTxKey, request: Request) -> None:
        """§4: a PRACK acknowledging our outstanding reliable provisional gets 200 and lets
        the next one go; one that matches none gets 481."""
        unacked = call.a_unacked
        rack = (request.headers.get("rack") or "").split()
        expected = [str(call.a_rseq), str(call.a_invite.cseq.seq), "INVITE"]
        if unacked is None or rack != expected:
            self._respond(key, request, 481, "No Matching Provisional Response")
            return
        self._respond(key, request, 200)
        self._cancel_timer(call, "rel1xx")
        call.a_unacked = None
        if call.ok_held is not None:
            body, call.ok_held = call.ok_held, None
            self._clear_reliable(call)
            self._ok_to_a(call, body)
            return
        if call.a_queued:
            status, headers, body = call.a_queued.pop(0)
            self._reliable_1xx(call, status, headers, body)

    def _clear_reliable(self, call: Call) -> None:
        """A final response to the INVITE ends the wait for PRACKs."""
        self._cancel_timer(call, "rel1xx")
        call.a_unacked = None
        call.a_queued.clear()

    def _prack(self, branch: Branch, response: Response, rseq: int) -> None:
        """RFC 3262 §7.2: acknowledge a reliable provisional with PRACK (once per RSeq)."""
        if branch.dialog is None or rseq <= branch.rseq_acked:
            return
        branch.rseq_acked = rseq
        cseq = response.cseq
        dialog, prack = next_request(
            branch.dialog,
            "PRACK",
            self._clock.monotonic(),
            via=self._via(branch.binding.transport),
            headers=[("RAck", f"{rseq} {cseq.seq} {cseq.method}")],
        )
        branch.dialog = dialog
        self._send_request(prack, branch.destination, branch.binding.transport)

    def _sdp_for_a(self, call: Call, answer_b: SessionDescription) -> bytes | None:
        """What the caller gets with the callee's answer: our answer to its offer or, for a
        late offer, our own offer (its answer comes in the ACK, §13.2.1). The relay is set."""
        assert call.relay is not None
        host, port = call.relay.local_address("a")
        where = {"address": host, "port": port, "session_id": self._session_id(call),
                 "version": call.sdp_version}  # fmt: skip
        try:
            if call.offer_a is not None:
                sdp, leg_a, leg_b = answer_to_caller(call.offer_a, answer_b, **where)
            else:
                sdp, leg_a, leg_b = offer_to_late_caller(answer_b, **where)
        except (NoCommonMedia, SipParseError):
            return None
        self._configure_relay(call, leg_a, leg_b)
        if call.offer_a is None:
            call.offer_to_a = sdp
            call.awaiting_ack_answer = True
        body = sdp.serialize().encode()
        call.last_sdp_to["a"] = body
        return body

    def _late_answer(self, call: Call, ack: Request) -> None:
        """The caller's answer to our offer, in its ACK: leg a takes the agreed codec and the
        caller's address. An ACK without a usable answer ends the call (RFC 3261 §13.3.1.4:
        the session cannot start; BYE both legs)."""
        call.awaiting_ack_answer = False
        assert call.offer_to_a is not None and call.leg_b is not None
        try:
            answer = parse_body(ack.content_type, ack.body)
            leg_a = late_caller_leg(call.offer_to_a, answer) if answer is not None else None
        except (NoCommonMedia, SipParseError):
            leg_a = None
        if leg_a is None:
            log.info("event=late_offer_unanswered call_id=%s", call.a_call_id)
            self._end(call, "caller sent no usable answer", send_bye=True)
            return
        self._configure_relay(call, leg_a, call.leg_b)

    def _configure_relay(self, call: Call, leg_a: LegMedia, leg_b: LegMedia) -> None:
        call.leg_a, call.leg_b = leg_a, leg_b
        for name, leg in (("a", leg_a), ("b", leg_b)):
            call.relay.update(
                name,
                remote=leg.remote,
                audio_pt=leg.audio_pt,
                encoding=leg.encoding,
                dtmf_pt=leg.dtmf_pt,
            )

    def _answered(self, call: Call, branch: Branch, response: Response) -> None:
        now = self._clock.monotonic()
        if branch.dialog is None or branch.dialog.early:
            branch.dialog = (
                create_uac_dialog(branch.invite, response, now, tls=False)
                if branch.dialog is None
                else receive_response(branch.dialog, response, now)
            )
        # §13.2.2.4: every 2xx is ACKed, retransmissions too.
        ack = build_ack(
            branch.dialog, branch.invite.cseq.seq, via=self._via(branch.binding.transport)
        )
        self._transport.send(ack, branch.destination)
        if call.answered is not None:
            if call.answered is not branch:
                self._bye_branch(branch)  # a second callee answered too late
            return
        if call.state is CallState.ENDED:
            self._bye_branch(branch)
            return
        try:
            answer_b = parse_body(response.content_type, response.body)
        except SipParseError:
            answer_b = None
        body = self._sdp_for_a(call, answer_b) if answer_b is not None else None
        if body is None:
            self._bye_branch(branch)
            self._fail(call, 488, "callee answered without usable SDP")
            return
        call.answered = branch
        branch.allows_update = allows(response, "UPDATE")
        call.state = CallState.ANSWERED
        call.answered_at = self._clock.wall()
        self._cancel_timer(call, "ring")
        for other in call.branches.values():
            if other is not branch and other.final_status is None:
                self._run(self.tl.cancel(other.key, now))
        if call.a_unacked is not None and call.a_unacked.body:
            # RFC 3262 §3: no 2xx while a reliable provisional with SDP awaits its PRACK;
            # the PRACK sends it (or, without one in 64*T1, the call ends).
            call.ok_held = body
            return
        self._clear_reliable(call)
        self._ok_to_a(call, body)

    def _ok_to_a(self, call: Call, body: bytes) -> None:
        branch = call.answered
        assert branch is not None
        now = self._clock.monotonic()
        ok = self._respond(
            call.a_key,
            call.a_invite,
            200,
            to_tag=call.a_tag,
            body=body,
            headers=[
                ("Contact", str(self._contact(call.a_flow.transport))),
                ("Allow", "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, PRACK, MESSAGE, OPTIONS"),
                *(call.timer_a.headers() if call.timer_a is not None else []),
            ],
        )
        call.ok_to_a = ok
        call.a_dialog = create_uas_dialog(call.a_invite, ok, now, tls=False)
        self._by_a_dialog[call.a_dialog.id] = call
        self._resend_2xx(call, ok, "ok")
        call.timers["refresh"] = asyncio.get_running_loop().call_later(
            refresh_interval(self.policy.session_refresh, call.timer_a), self._refresh, call
        )
        self._save_active(call)
        log.info(
            "event=call_answered call_id=%s b_call_id=%s by=%s",
            call.a_call_id,
            call.b_call_id,
            branch.binding.contact,
        )

    def _resend_2xx(self, call: Call, ok: Response, timer: str) -> None:
        """§13.3.1.4: the UAS core resends its 2xx over UDP, T1 doubling up to T2, until the
        ACK stops it (``timer`` is cancelled); after 64*T1 without one the session ends."""
        if call.a_flow.reliable:
            return
        self._resend_to_a(call, ok, timer, self._no_ack, ceiling=T2)

    def _no_ack(self, call: Call) -> None:
        self._end(call, "no ACK from caller", send_bye=True)

    def _resend_to_a(
        self,
        call: Call,
        response: Response,
        timer: str,
        give_up: Callable[[Call], None],
        *,
        ceiling: float,
        interval: float = T1,
        waited: float = 0.0,
    ) -> None:
        """Resend ``response`` to the caller (over UDP) every ``interval`` seconds, doubling up
        to ``ceiling``, until ``timer`` is cancelled (what it waits for came); after 64*T1
        without that, ``give_up``. The 2xx (ACK) and reliable 18x (PRACK) waits share it."""
        if waited >= 64 * T1:
            give_up(call)
            return

        def again() -> None:
            if not call.a_flow.reliable:
                self._transport.send(response, response_destination(response.top_via, call.a_flow))
            self._resend_to_a(
                call, response, timer, give_up,
                ceiling=ceiling, interval=min(interval * 2, ceiling), waited=waited + interval,
            )  # fmt: skip

        call.timers[timer] = asyncio.get_running_loop().call_later(interval, again)

    def _branch_failed(self, call: Call) -> None:
        if call.answered is not None or call.state is CallState.ENDED:
            return
        if any(b.final_status is None for b in call.branches.values()):
            return
        statuses = [b.final_status for b in call.branches.values() if b.final_status]
        if call.end_reason == "ring timeout":
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
        self._fail(call, status, call.end_reason or reason)

    def _fail(self, call: Call, status: int, reason: str) -> None:
        if call.state is CallState.ENDED:
            return
        for branch in call.branches.values():
            if branch.final_status is None:
                self._run(self.tl.cancel(branch.key, self._clock.monotonic()))
        self._respond(call.a_key, call.a_invite, status, to_tag=call.a_tag)
        call.final_status = status
        self._end(call, reason, send_bye=False)

    def _ring_timeout(self, call: Call) -> None:
        if call.state in (CallState.ROUTING, CallState.RINGING):
            call.end_reason = "ring timeout"
            self._fail(call, 408, "no answer")

    def _client_failed(self, key: ClientKey | Any, status: int) -> None:
        if not isinstance(key, ClientKey):
            return
        forwarded = self._forwarded.pop(key, None)
        if forwarded is not None and forwarded.from_side == "refresh":
            self._end(forwarded.call, "session refresh failed", send_bye=True)
            return
        if forwarded is not None:
            assert forwarded.server_key is not None and forwarded.request is not None
            self._respond(forwarded.server_key, forwarded.request, 408)
            if forwarded.request.method in ("INVITE", "UPDATE"):
                self._end(forwarded.call, "leg timed out", send_bye=True)
            return
        if key in self._messages:
            self._message_response(key, None)
            return
        call = self._by_branch.get(key)
        if call is not None and key.method == "INVITE":
            branch = call.branches.get(key)
            if branch is not None and branch.final_status is None:
                branch.final_status = status
                self._branch_failed(call)

    # -- CANCEL, ACK, BYE and the rest ---------------------------------------------------------
    def _on_cancel(self, key: ServerTxKey, cancel: Request) -> None:
        invite_tx = self.tl.find_invite_for_cancel(cancel)
        invite_key = invite_tx.key if invite_tx is not None else None
        call = (
            self._by_a_invite.get(invite_key)
            if isinstance(invite_key, ServerKey | LegacyServerKey)
            else None
        )
        if call is None:
            self._respond(key, cancel, 481)
            return
        self._respond(key, cancel, 200)  # §9.2
        if call.state in (CallState.ROUTING, CallState.RINGING):
            call.end_reason = "cancelled"
            self._fail(call, 487, "cancelled")

    def _on_ack(self, ack: Request) -> None:
        dialog_id = uas_dialog_id(ack)
        call = self._by_a_dialog.get(dialog_id) if dialog_id else None
        if call is not None:
            self._cancel_timer(call, "ok")
            self._cancel_timer(call, "reok")
            if call.awaiting_ack_answer and ack.cseq.seq == call.a_invite.cseq.seq:
                self._late_answer(call, ack)
            self._reoffer_answered(call, "a", ack)
        elif dialog_id is not None and dialog_id.call_id in self._by_b_call_id:
            call = self._by_b_call_id[dialog_id.call_id]
            self._cancel_timer(call, "reok")
            self._reoffer_answered(call, "b", ack)

    def _side_of(self, request: Request) -> tuple[Call, str] | None:
        """Which call and which leg an in-dialog request belongs to (§12.2.2)."""
        dialog_id = uas_dialog_id(request)
        if dialog_id is None:
            return None
        call = self._by_a_dialog.get(dialog_id)
        if call is not None:
            return call, "a"
        call = self._by_b_call_id.get(request.call_id)
        branch = call.answered if call is not None else None
        if call is not None and branch is not None and branch.dialog is not None:
            return (call, "b") if branch.dialog.id == dialog_id else None
        return None

    def _in_dialog(self, key: ServerTxKey, request: Request) -> None:
        found = self._side_of(request)
        if found is None:
            if request.method == "PRACK":
                call = self._by_a_dialog_for_prack(request)
                if call is not None:
                    self._prack_from_a(call, key, request)
                    return
            self._respond(key, request, 481)
            return
        call, side = found
        try:
            self._record_in(call, side, request)
        except DialogError as exc:
            self._respond(key, request, exc.status, exc.reason)
            return
        method = request.method
        if method == "BYE":
            self._respond(key, request, 200)
            self._end(
                call,
                "caller hung up" if side == "a" else "callee hung up",
                send_bye=True,
                skip_side=side,
            )
            return
        if method == "PRACK":
            if side == "a" and call.a_reliable:
                self._prack_from_a(call, key, request)
            else:
                self._respond(key, request, 200)
            return
        if method in ("INVITE", "UPDATE", "INFO", "MESSAGE"):
            self._forward(call, side, key, request)
            return
        self._respond(key, request, 405, headers=[("Allow", ", ".join(CALL_METHODS))])

    def _by_a_dialog_for_prack(self, request: Request) -> Call | None:
        """A PRACK for our reliable 18x arrives before the A dialog is confirmed."""
        for call in self.calls:
            if call.a_call_id == request.call_id and request.to.tag == call.a_tag:
                return call
        return None

    def _record_in(self, call: Call, side: str, request: Request) -> None:
        now = self._clock.monotonic()
        if side == "a" and call.a_dialog is not None:
            call.a_dialog = receive_request(call.a_dialog, request, now)
        elif side == "b" and call.answered is not None and call.answered.dialog is not None:
            call.answered.dialog = receive_request(call.answered.dialog, request, now)

    # -- requests crossing to the other leg ----------------------------------------------------
    def _forward(self, call: Call, side: str, key: ServerTxKey, request: Request) -> None:
        other = "b" if side == "a" else "a"
        try:
            offer = parse_body(request.content_type, request.body)
        except SipParseError:
            self._respond(key, request, 400, "Malformed SDP")
            return
        if request.method in ("INVITE", "UPDATE") and self._session_timer(key, request)[0]:
            return  # answered 422 or 400
        body, content_type = request.body, request.content_type
        if offer is not None and request.method in ("INVITE", "UPDATE"):
            try:
                body = self._relay_offer(call, other, offer)
            except NoCommonMedia:
                self._respond(key, request, 488)
                return
            content_type = "application/sdp"
        headers = [(n, v) for n, v in request.headers if n.lower() in ("info-package", "event")]
        sent = self._send_in_dialog(
            call, other, request.method, body=body, content_type=content_type, headers=headers
        )
        if sent is None:
            self._respond(key, request, 481)
            return
        self._forwarded[sent] = Forwarded(
            call=call, from_side=side, server_key=key, request=request, offer=offer
        )
        self._touch(call)

    def _send_in_dialog(
        self,
        call: Call,
        side: str,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> ClientKey | None:
        now = self._clock.monotonic()
        if side == "a":
            dialog = call.a_dialog
            transport = call.a_flow.transport
            destination = Destination(
                transport=transport, host=call.a_flow.remote[0], port=call.a_flow.remote[1]
            )
        else:
            branch = call.answered
            if branch is None or branch.dialog is None:
                return None
            dialog = branch.dialog
            transport = branch.binding.transport
            destination = branch.destination
        if dialog is None or dialog.terminated:
            return None
        via = self._via(transport)
        dialog, request = next_request(
            dialog,
            method,
            now,
            via=via,
            contact=self._contact(transport),
            headers=headers or [],
            body=body,
            content_type=content_type,
        )
        if side == "a":
            call.a_dialog = dialog
        else:
            assert call.answered is not None
            call.answered.dialog = dialog
        return self._send_request(request, destination, transport)

    def _send_request(
        self, request: Request, destination: Destination, transport: str
    ) -> ClientKey:
        key = ClientKey(request.top_via.branch or "", request.method)
        self._run(
            self.tl.send_request(
                request, destination, self._clock.monotonic(), reliable=transport != "UDP"
            )
        )
        return key

    def _forwarded_response(self, key: ClientKey, fwd: Forwarded, response: Response) -> None:
        call = fwd.call
        status = response.status
        if status < 200:
            return
        self._forwarded.pop(key, None)
        if fwd.from_side == "refresh":
            # RFC 4028 §10 in spirit: 408 or 481 to a refresh means the leg is gone.
            if status in (408, 481):
                self._end(call, "session refresh failed", send_bye=True)
            return
        server_key, original = fwd.server_key, fwd.request
        assert server_key is not None and original is not None
        side, other = fwd.from_side, ("b" if fwd.from_side == "a" else "a")
        now = self._clock.monotonic()
        dialog = (
            call.a_dialog if other == "a" else (call.answered.dialog if call.answered else None)
        )
        if dialog is not None:
            dialog = receive_response(dialog, response, now)
            if other == "a":
                call.a_dialog = dialog
            elif call.answered is not None:
                call.answered.dialog = dialog
        pending = None
        if original.method == "INVITE" and status < 300 and dialog is not None:
            pending = InDialogAck(call=call, to_side=other, seq=response.cseq.seq)
            self._in_dialog_acks[key] = pending
        body = b""
        if 200 <= status < 300 and fwd.offer is not None:
            try:
                answer = parse_body(response.content_type, response.body)
            except SipParseError:
                answer = None
            if answer is not None:
                host, port = call.relay.local_address(side)
                try:
                    sdp, leg_from, leg_to = answer_to_caller(
                        fwd.offer,
                        answer,
                        address=host,
                        port=port,
                        session_id=self._session_id(call),
                        version=call.sdp_version,
                    )
                except NoCommonMedia:
                    sdp = None
                if sdp is not None:
                    body = sdp.serialize().encode()
                    call.last_sdp_to[side] = body
                    leg_a, leg_b = (leg_from, leg_to) if side == "a" else (leg_to, leg_from)
                    self._configure_relay(call, leg_a, leg_b)
        elif pending is not None and response.body:
            # A re-INVITE without SDP: the 2xx carries the other leg's offer (RFC 3264 §4),
            # crossed rewritten to the relay; its answer comes in the ACK (§13.2.1).
            crossed = self._offer_across(call, side, response)
            if crossed is None:
                # §13.2.2.4: an offer we cannot take is ACKed, then the session ends.
                self._send_in_dialog_ack(pending)
                self._respond(server_key, original, 488)
                self._end(call, "no usable SDP in the other leg's offer", send_bye=True)
                return
            pending.offer, body = crossed
            pending.answer_seq = original.cseq.seq
            call.awaiting_reoffer_answer = pending
        elif response.body and response.content_type:
            body = response.body
        if pending is not None and pending.offer is None:
            self._send_in_dialog_ack(pending)
        side_transport = call.a_flow.transport
        if side == "b" and call.answered is not None:
            side_transport = call.answered.binding.transport
        headers = [("Contact", str(self._contact(side_transport)))]
        if 200 <= status < 300 and original.method in ("INVITE", "UPDATE"):
            # The refresh the phone sent is answered by us (RFC 4028 §9), whatever the other
            # leg knows of timers; the caller's agreed timer follows its latest refresh.
            timer = negotiate(original)
            if isinstance(timer, SessionTimer):
                headers += timer.headers()
                if side == "a":
                    call.timer_a = timer
        reply = self._respond(
            server_key,
            original,
            status,
            response.reason,
            headers=headers,
            to_tag=original.to.tag,
            body=body,
        )
        if original.method == "INVITE" and 200 <= status < 300 and side == "a":
            self._resend_2xx(call, reply, "reok")
        if status in (408, 481):
            self._end(call, "leg gone", send_bye=True)

    def _offer_across(
        self, call: Call, side: str, response: Response
    ) -> tuple[SessionDescription, bytes] | None:
        """The offer in ``response`` and its rewrite for ``side`` (naming the relay's leg there);
        None when it has none we can carry."""
        try:
            offer = parse_body(response.content_type, response.body)
            if offer is None:
                return None
            return offer, self._relay_offer(call, side, offer)
        except (NoCommonMedia, SipParseError):
            return None

    def _relay_offer(self, call: Call, side: str, offer: SessionDescription) -> bytes:
        """An offer crossed to ``side``: rewritten to the relay's leg there, the session's next
        version, remembered as the last SDP sent that way (NoCommonMedia when none fits)."""
        host, port = call.relay.local_address(side)
        call.sdp_version += 1
        rewritten = offer_to_callee(
            offer,
            address=host,
            port=port,
            session_id=self._session_id(call),
            version=call.sdp_version,
        )
        body = rewritten.serialize().encode()
        call.last_sdp_to[side] = body
        return body

    def _reoffer_answered(self, call: Call, side: str, ack: Request) -> None:
        """``side``'s ACK for the 2xx that carried the other leg's offer: its answer, rewritten to
        the relay, goes on in our ACK to that leg. Without a usable one the session ends (the
        offerer could not be answered, RFC 3261 §13.2.2.4)."""
        pending = call.awaiting_reoffer_answer
        if pending is None or pending.to_side == side or ack.cseq.seq != pending.answer_seq:
            return
        call.awaiting_reoffer_answer = None
        assert pending.offer is not None
        host, port = call.relay.local_address(pending.to_side)
        try:
            answer = parse_body(ack.content_type, ack.body)
            planned = (
                answer_to_caller(
                    pending.offer,
                    answer,
                    address=host,
                    port=port,
                    session_id=self._session_id(call),
                    version=call.sdp_version,
                )
                if answer is not None
                else None
            )
        except (NoCommonMedia, SipParseError):
            planned = None
        if planned is None:
            self._send_in_dialog_ack(pending)
            log.info("event=reoffer_unanswered call_id=%s from=%s", call.a_call_id, side)
            self._end(call, "no usable answer to the other leg's offer", send_bye=True)
            return
        sdp, leg_offerer, leg_answerer = planned
        body = sdp.serialize().encode()
        call.last_sdp_to[pending.to_side] = body
        if pending.to_side == "a":
            self._configure_relay(call, leg_offerer, leg_answerer)
        else:
            self._configure_relay(call, leg_answerer, leg_offerer)
        self._send_in_dialog_ack(pending, body)

    def _send_in_dialog_ack(self, pending: InDialogAck, body: bytes = b"") -> None:
        """Send the ACK of ``pending`` (built once, with ``body``: the same ACK every time)."""
        call, side = pending.call, pending.to_side
        if side == "a":
            transport = call.a_flow.transport
            dialog = call.a_dialog
            destination = Destination(
                transport=transport, host=call.a_flow.remote[0], port=call.a_flow.remote[1]
            )
        else:
            if call.answered is None:
                return
            transport = call.answered.binding.transport
            dialog = call.answered.dialog
            destination = call.answered.destination
        if pending.ack is None:
            if dialog is None:
                return
            pending.ack = build_ack(
                dialog,
                pending.seq,
                via=self._via(transport),
                body=body,
                content_type="application/sdp" if body else None,
            )
        self._transport.send(pending.ack, destination)

    # -- session refresh (keeps dead calls from living forever) -------------------------------
    def _touch(self, call: Call) -> None:
        if call.state is CallState.ANSWERED:
            self._cancel_timer(call, "refresh")
            call.timers["refresh"] = asyncio.get_running_loop().call_later(
                refresh_interval(self.policy.session_refresh, call.timer_a), self._refresh, call
            )

    def _refresh(self, call: Call) -> None:
        """Ask each leg whether it is still there; a 408/481 or silence ends the call. A leg
        that does not list UPDATE in Allow (twinkle) is asked with an in-dialog OPTIONS instead
        (RFC 3311 §5.1; RFC 3261 §11: a 481 to it says the dialog is gone)."""
        if call.state is not CallState.ANSWERED:
            return
        for side in ("a", "b"):
            updates = (
                allows(call.a_invite, "UPDATE")
                if side == "a"
                else call.answered is not None and call.answered.allows_update
            )
            key = self._send_in_dialog(call, side, "UPDATE" if updates else "OPTIONS")
            if key is not None:
                self._forwarded[key] = Forwarded(
                    call=call,
                    from_side="refresh",
                    server_key=None,
                    request=None,
                    offer=None,
                )
        self._touch(call)

    # -- the end of a call ----------------------------------------------------------------------
    def _bye_branch(self, branch: Branch) -> None:
        if branch.dialog is None or branch.dialog.terminated:
            return
        dialog, bye = next_request(
            branch.dialog, "BYE", self._clock.monotonic(), via=self._via(branch.binding.transport)
        )
        branch.dialog = dialog
        self._send_request(bye, branch.destination, branch.binding.transport)

    def _end(
        self, call: Call, reason: str, *, send_bye: bool, skip_side: str | None = None
    ) -> None:
        if call.state is CallState.ENDED:
            return
        answered = call.state is CallState.ANSWERED
        if call.ok_held is not None:  # the caller never got its 200: give it a final answer
            call.ok_held = None
            self._respond(call.a_key, call.a_invite, 480, to_tag=call.a_tag)
            answered = False
        call.state = CallState.ENDED
        call.end_reason = call.end_reason or reason
        for name in list(call.timers):
            self._cancel_timer(call, name)
        if send_bye and answered:
            if skip_side != "a" and call.a_dialog is not None and not call.a_dialog.terminated:
                self._send_in_dialog(call, "a", "BYE")
            if skip_side != "b" and call.answered is not None:
                self._bye_branch(call.answered)
        self.calls.discard(call)
        self._by_a_invite.pop(call.a_key, None)
        if call.a_dialog is not None:
            self._by_a_dialog.pop(call.a_dialog.id, None)
        self._by_b_call_id.pop(call.b_call_id, None)
        relay = call.relay
        # The counters are for the log only: built when someone will read them.
        stats = relay.stats() if relay is not None and log.isEnabledFor(logging.INFO) else None
        if relay is not None:
            task = asyncio.get_running_loop().create_task(relay.close())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        record = CallRecord(
            call_id=call.a_call_id,
            caller=call.caller,
            callee=call.callee,
            started_at=call.started_at,
            answered_at=call.answered_at,
            ended_at=self._clock.wall(),
            end_reason=call.end_reason,
            status=call.final_status or (200 if answered else None),
            caller_codec=call.leg_a.encoding if call.leg_a else None,
            callee_codec=call.leg_b.encoding if call.leg_b else None,
        )
        finish_call(self._db, record)
        log.info(
            "event=call_end call_id=%s b_call_id=%s reason=%r answered=%s relay=%s",
            call.a_call_id,
            call.b_call_id,
            call.end_reason,
            answered,
            stats,
        )

    def _forget(self, key: Any) -> None:
        if isinstance(key, ClientKey):
            self._by_branch.pop(key, None)
            self._forwarded.pop(key, None)
            self._messages.pop(key, None)
            self._in_dialog_acks.pop(key, None)

    def _cancel_timer(self, call: Call, name: str) -> None:
        handle = call.timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def _save_active(self, call: Call) -> None:
        save_active(self._db, _active_row(call))

    def resync_active(self) -> None:
        """After a restore copied an old in-progress table over ours: write the live calls."""
        live = [_active_row(c) for c in self.calls if c.state is not CallState.ENDED]
        replace_active(self._db, live)

    # -- MESSAGE (RFC 3428), proxied ----------------------------------------------------------
    def _new_message(self, key: ServerTxKey, request: Request, flow: Flow) -> None:
        if not self._precheck(key, request):
            return
        if self._authenticate(key, request, flow) is None:
            return
        uri = request.uri
        number = uri.user if isinstance(uri, SipUri) else None
        if not number or get_extension(self._db, number) is None:
            self._respond(key, request, 404)  # messages go to extensions only, not the line
            return
        bindings = self._reachable(number)
        if not bindings:
            self._respond(key, request, 480, "Temporarily Unavailable")
            return
        now = self._clock.monotonic()
        statuses: list[int] = []
        for binding in bindings:
            try:
                uri = parse_uri(binding.contact)
            except SipParseError:
                continue
            via = self._via(binding.transport)
            headers = request.headers.without("proxy-authorization").without("route")
            headers = headers.with_added("Via", str(via), first=True)
            max_forwards = request.max_forwards
            headers = headers.with_set(
                "Max-Forwards", str(69 if max_forwards is None else max_forwards - 1)
            )
            for hop in reversed(binding.path):
                headers = headers.with_added("Route", hop, first=True)
            forwarded = Request(method="MESSAGE", uri=uri, headers=headers, body=request.body)
            client = ClientKey(via.branch or "", "MESSAGE")
            self._messages[client] = (key, statuses, len(bindings))
            destination = Destination(
                transport=binding.transport, host=reach(binding)[0], port=reach(binding)[1]
            )
            self._run(
                self.tl.send_request(
                    forwarded, destination, now, reliable=binding.transport != "UDP"
                )
            )

    def _message_response(self, key: ClientKey, response: Response | None) -> None:
        entry = self._messages.get(key)
        if entry is None or (response is not None and response.status < 200):
            return
        del self._messages[key]
        server_key, statuses, total = entry
        if statuses and statuses[0] < 0:
            return  # already answered
        if response is not None and response.status < 300:
            statuses.insert(0, -1)
            # The stored answer (§17.2.2: every retransmission gets it again) keeps the
            # sender's Vias even when the callee wrote them all in one field.
            forwarded = without_top_via(response)
            if forwarded is not None:
                self._run(self.tl.respond(server_key, forwarded, self._clock.monotonic()))
                return
            transaction = self.tl.get(server_key)
            if transaction is not None:  # the callee dropped the sender's Via: answer it so
                self._respond(
                    server_key, transaction.request, response.status, response.reason,
                    to_tag=response.to.tag,
                )  # fmt: skip
            return
        statuses.append(408 if response is None else response.status)
        if len(statuses) == total:
            transaction = self.tl.get(server_key)
            if transaction is not None:
                request = transaction.request
                self._respond(server_key, request, min(statuses))

    # -- our own addresses ----------------------------------------------------------------------
    def _local(self, transport: str) -> tuple[str, int]:
        address = self._transport.local_address(transport) or self._transport.local_address("UDP")
        return address or ("127.0.0.1", 5060)

    def _local_host(self, transport: str) -> str:
        host = self._local(transport)[0]
        return f"[{host}]" if ":" in host else host

    def _via(self, transport: str) -> Via:
        host, port = self._local(transport)
        shown = f"[{host}]" if ":" in host else host
        branch = f"{MAGIC_COOKIE}{secrets.token_hex(10)}"
        return Via(
            transport=transport, host=shown, port=port, params=(("branch", branch), ("rport", None))
        )

    def _contact(self, transport: str) -> NameAddress:
        host, port = self._local(transport)
        shown = f"[{host}]" if ":" in host else host
        params = () if transport == "UDP" else (("transport", transport.lower()),)
        return NameAddress(uri=SipUri(user="switchboard", host=shown, port=port, params=params))

    @staticmethod
    def _session_id(call: Call) -> str:
        return str(crc32(call.b_call_id.encode()))


def _active_row(call: Call) -> ActiveCall:
    return ActiveCall(
        call_id=call.a_call_id,
        caller=call.caller,
        callee=call.callee,
        state=call.state.value,
        started_at=call.started_at,
        answered_at=call.answered_at,
        caller_media=call.leg_a.encoding if call.leg_a else None,
        callee_media=call.leg_b.encoding if call.leg_b else None,
    )


def allows(message: Request | Response, method: str) -> bool:
    """Whether the message's Allow header fields list ``method`` (RFC 3261 §20.5; method
    names are case-sensitive, §7.1)."""
    return any(
        item.strip() == method
        for value in message.headers.get_all("allow")
        for item in value.split(",")
    )
