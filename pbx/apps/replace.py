"""An INVITE with Replaces from a phone (RFC 3891 §3): it takes the place of a dialog of ours.

The switch holds every dialog itself, so the named one is a leg of some call. §3's verdicts
come from ``pbx.sip.replaces.judge_replaces`` (481 no such dialog, 603 terminated, 486
early-only on a confirmed one, 403 not allowed). Who may replace a leg: a phone of the same
extension as the party on it (moving a call to another device, or a pickup from a phone
sharing the line); pickup groups and BLF pickup widen that in a later issue.

A confirmed leg: the new phone is answered on that leg's relay side and joined to the other
party; the replaced leg gets a BYE. An early leg of ours (a ringing fork): the new phone answers
the ringing call (pickup) and every fork is CANCELled.
"""

from __future__ import annotations

import logging
from typing import Any

from pbx.apps.context import Context
from pbx.apps.dial import DialApp
from pbx.apps.party import Party
from pbx.apps.transfer import TransferApp
from pbx.calls.bridge import Bridge
from pbx.calls.leg import Leg
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.calls.leg_states import LIVE, LegState
from pbx.calls.media_plan import NoCommonMedia, relay_answer
from pbx.calls.outputs import Output
from pbx.sip.errors import SipParseError
from pbx.sip.replaces import (
    ReplaceableDialog,
    ReplacedDialogState,
    Replaces,
    ReplacesVerdict,
    judge_replaces,
)
from pbx.sip.sdp import SessionDescription

log = logging.getLogger("pbx.calls")

_STATES = {
    LegState.EARLY: ReplacedDialogState.EARLY,
    LegState.PROCEEDING: ReplacedDialogState.EARLY,
    LegState.CONFIRMED: ReplacedDialogState.CONFIRMED,
}


def judge(replaces: Replaces, legs: list[Leg], caller: str) -> tuple[ReplacesVerdict, Leg | None]:
    """§3 for ``replaces`` against our legs with that Call-ID; the leg it names."""
    dialogs: list[tuple[ReplaceableDialog, Leg]] = []
    for leg in legs:
        if leg.dialog is None:
            continue
        state = _STATES.get(leg.state, ReplacedDialogState.TERMINATED)
        dialogs.append(
            (
                ReplaceableDialog(
                    id=leg.dialog.id, state=state, initiated_here=isinstance(leg, OutgoingLeg)
                ),
                leg,
            )
        )
    named = next((leg for d, leg in reversed(dialogs) if replaces.matches(d.id)), None)
    owner: Any = named.owner if named is not None else None
    party = owner.party(named) if owner is not None and hasattr(owner, "party") else None
    authorized = party is not None and party.number == caller
    verdict, _ = judge_replaces(replaces, [d for d, _ in dialogs], authorized=authorized)
    return verdict, named


def replace(
    ctx: Context,
    named: Leg,
    leg: IncomingLeg,
    caller: str,
    offer: SessionDescription | None,
    now: float,
) -> list[Output]:
    """Carry out an accepted Replaces (``leg`` is the new phone's, started already; ``offer``
    is its INVITE's, as admission read it)."""
    owner: Any = named.owner
    if named.state is not LegState.CONFIRMED:
        if isinstance(owner, DialApp) and isinstance(named, OutgoingLeg):
            return owner.picked_up(named, leg, caller, offer, now)
        return leg.reject(481, now)
    other: Party | None = owner.other_party(named) if hasattr(owner, "other_party") else None
    relay = getattr(owner, "relay", None)
    if other is None or relay is None or other.leg.state not in LIVE:
        return leg.reject(481, now)
    if offer is None:
        return leg.reject(488, now)
    try:
        host, port = relay.local_address(named.id)
        answer, media = relay_answer(offer, address=host, port=port, session_id="1", version=1)
    except (NoCommonMedia, SipParseError):
        return leg.reject(488, now)
    joined = Party(leg=leg, number=caller)
    app = TransferApp(
        id=ctx.new_app_id(),
        ctx=ctx,
        wall=getattr(owner, "wall", None) or (lambda: 0.0),
        transferee=other,
        transferor=None,
        refer_ref=0,
        refer_seq=0,
        relay=relay,
        bridge=None,
        target_number=caller,
        joined=joined,
        released=[named],
    )
    ctx.start_app(app)
    for adopted in (other.leg, named, leg):
        ctx.adopt(adopted, app)
    relay.name(leg.id, relay.side(named.id))
    relay.update(leg.id, remote=media.remote, audio_pt=media.audio_pt,
                 encoding=media.encoding, dtmf_pt=media.dtmf_pt)  # fmt: skip
    app.bridge = Bridge.join(other.leg, leg, relay, name=app.id)
    app.bridge.media[leg.id] = media
    app.started_at = app.answered_at = app.wall()
    out: list[Output] = owner.handover(f"replaced by {caller}", now)
    out += leg.answer(answer.serialize().encode(), now)
    out += named.hangup(now)
    log.info(
        "event=call_replaced call_id=%s by=%s other=%s",
        named.call_id,
        caller,
        other.number,
    )
    return out
