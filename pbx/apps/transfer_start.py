"""A REFER from a party of a bridged call: checked, answered 202, and handed to a transfer.

The application that owns the call (dial, or an earlier transfer) hands its legs over to a new
``TransferApp`` and closes its own record as transferred. A REFER whose target cannot be
called gets the dial plan's refusal (403 for a number the transferor may not dial, 404...); a
Replaces naming a dialog the switch does not have is accepted and reported failed in the
NOTIFY (the call goes on: the transferor keeps its party).
"""

from __future__ import annotations

from typing import Any, Protocol

from pbx.apps.context import Context
from pbx.apps.party import Party
from pbx.apps.routes import Reject, route_transfer
from pbx.apps.transfer import TransferApp, notify_refer
from pbx.calls.bridge import Bridge
from pbx.calls.leg import Leg
from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.calls.leg_states import LIVE, LegState
from pbx.calls.outputs import Output, PeerRequest
from pbx.calls.relay_sides import SideRelay
from pbx.sip.errors import SipParseError
from pbx.sip.refer import parse_referred_by, refer_to_of_request
from pbx.sip.uri import SipUri


class Transferable(Protocol):
    """An application whose call can be transferred."""

    id: str
    done: bool

    @property
    def bridge(self) -> Bridge | None: ...
    @property
    def relay(self) -> SideRelay | None: ...

    def party(self, leg: Leg) -> Party | None: ...
    def other_party(self, leg: Leg) -> Party | None: ...
    def legs(self) -> list[Leg]: ...
    def handover(
        self, reason: str, now: float, *, by: str | None = None, to: str | None = None
    ) -> list[Output]: ...


def start_transfer(
    ctx: Context, app: Transferable, leg: Leg, event: PeerRequest, now: float
) -> list[Output]:
    request = event.request
    transferor, transferee = app.party(leg), app.other_party(leg)
    if (
        transferor is None
        or transferee is None
        or app.relay is None
        or transferee.leg.state is not LegState.CONFIRMED
    ):
        return leg.reply(event.ref, 491, now, reason="Request Pending")
    try:
        refer_to = refer_to_of_request(request.headers.get_all("refer-to"))
        referred_by = request.headers.get("referred-by")
        if referred_by:
            parse_referred_by(referred_by)
    except SipParseError as exc:
        return leg.reply(event.ref, exc.status, now, reason=exc.reason)
    if refer_to.replaces is not None:
        return _attended(ctx, app, transferor, transferee, event, refer_to.replaces, now)
    target_uri = refer_to.target
    number = target_uri.user if isinstance(target_uri, SipUri) else None
    if not number:
        return leg.reply(event.ref, 404, now, reason="Not Found")
    target = route_transfer(number, transferor.number, ctx.directory, line_busy=ctx.line_busy())
    if isinstance(target, Reject):
        return leg.reply(event.ref, target.status, now, reason=target.reason)
    out = leg.reply(event.ref, 202, now)
    transfer = TransferApp(
        id=ctx.new_app_id(),
        ctx=ctx,
        wall=getattr(app, "wall", None) or (lambda: 0.0),
        transferee=transferee,
        transferor=transferor,
        refer_ref=event.ref,
        refer_seq=request.cseq.seq,
        relay=app.relay,
        bridge=app.bridge,
        target_number=target.callee,
        target=target,
        referred_by=referred_by or f"<sip:{transferor.number}@{ctx.local_host(leg.transport)}>",
        transferred_by=transferor.number,
    )
    out += _take_over(
        ctx, transfer, [app], "transferred", now, by=transferor.number, to=target.callee
    )
    return out + transfer.start_blind(now)


def _attended(
    ctx: Context,
    app: Transferable,
    transferor: Party,
    transferee: Party,
    event: PeerRequest,
    replaces: Any,
    now: float,
) -> list[Output]:
    out = transferor.leg.reply(event.ref, 202, now)
    found = ctx.leg_replaced_by(replaces)
    consultation: Transferable | None = found.owner if found is not None else None
    joined = (
        consultation.other_party(found) if consultation is not None and found is not None else None
    )
    if (
        found is None
        or joined is None
        or consultation is None
        or consultation is app
        or consultation.relay is None
    ):
        return out + notify_refer(transferor.leg, event.request.cseq.seq, 481, now)
    transfer = TransferApp(
        id=ctx.new_app_id(),
        ctx=ctx,
        wall=getattr(app, "wall", None) or (lambda: 0.0),
        transferee=transferee,
        transferor=transferor,
        refer_ref=event.ref,
        refer_seq=event.request.cseq.seq,
        relay=consultation.relay,
        bridge=app.bridge,
        target_number=joined.number,
        released=[found],
        old_relays=[app.relay.handle] if app.relay is not None else [],
        transferred_by=transferor.number,
    )
    if joined.leg.state is not LegState.CONFIRMED:
        # Semi-attended: the consultation still rings; its other forks may still answer.
        transfer.forks.update(
            {leg.id: leg for leg in consultation.legs() if isinstance(leg, OutgoingLeg)}
        )
    out += _take_over(
        ctx, transfer, [app, consultation], "transferred", now, by=transferor.number,
        to=joined.number,
    )  # fmt: skip
    if found.state is not LegState.CONFIRMED:
        out += found.hangup(now, status=487)  # the transferor's consultation INVITE ends
    return out + transfer.start_attended(joined, now)


def _take_over(
    ctx: Context,
    transfer: TransferApp,
    apps: list[Any],
    reason: str,
    now: float,
    *,
    by: str,
    to: str,
) -> list[Output]:
    out: list[Output] = []
    ctx.start_app(transfer)
    for app in apps:
        for leg in app.legs():
            if leg.state in LIVE:
                ctx.adopt(leg, transfer)
        out += app.handover(reason, now, by=by, to=to)
    return out
