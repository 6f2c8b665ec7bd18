"""What happens to a call for an extension with forwarding, do not disturb or redirect set.

The call core asks at each point where forwarding can apply (the call arrives; the phones
answer busy; nobody answers; no phone is registered) and gets one frozen decision: ring (maybe
with a no-answer forward after N seconds), forward now, redirect (302), reject, or carry on as
without forwarding. Pure: the extension's ``ForwardingRecord``, the dial plan and the call's
chain of visited targets come in as arguments.

Rules, in order: forward-always wins (calls do not reach the phones, so they disturb no one);
then do not disturb (486, or the busy target); then unregistered; then ring. A target that
cannot be used now (no such extension any more, an outside number for an extension not allowed
out, an emergency number, a ``sip:`` URI without redirect, a loop, too many hops) is skipped
as if that forward were off, and the decision's ``skipped`` says why, for the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from pbx.routing.dialplan import LinePlan, route_dialled
from pbx.sip.diversion import DiversionReason
from pbx.store.records import ForwardingRecord

MAX_HOPS = 5
"""Forwards one call may follow (each target once): 201 -> 202 -> ... stops after five."""
BUSY_STATUSES = frozenset({486, 600, 603})
NO_ANSWER_STATUSES = frozenset({408, 480})
URI_SCHEMES = ("sip:", "sips:")


class Situation(StrEnum):
    INCOMING = "incoming"
    """A call for the extension arrives and at least one of its phones is reachable."""
    UNREGISTERED = "unregistered"
    """A call for the extension arrives and none of its phones is registered or reachable."""
    BUSY = "busy"
    """Its phones answered busy (486, 600, 603)."""
    NO_ANSWER = "no-answer"
    """Its forward-after time ran out, or its phones gave up ringing (408, 480)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a forward goes, resolved against the dial plan of now."""

    kind: Literal["extension", "line", "uri"]
    value: str
    """The extension number, the digits to dial on the phone line, or the URI."""
    dest: str
    """The DEST as stored (e.g. ``95551234`` for the line digits ``5551234``)."""


@dataclass(frozen=True, slots=True)
class Ring:
    """Ring the extension's phones; with ``then``, forward there after ``after`` seconds."""

    after: int | None = None
    then: Target | None = None
    skipped: str = ""


@dataclass(frozen=True, slots=True)
class Forward:
    """Call ``target`` instead (the B2BUA's new leg), with this Diversion reason."""

    target: Target
    reason: DiversionReason


@dataclass(frozen=True, slots=True)
class Redirect:
    """Answer 302 with ``target``'s Contact: the caller calls it (RFC 3261 §8.3)."""

    target: Target
    reason: DiversionReason


@dataclass(frozen=True, slots=True)
class Reject:
    status: int
    phrase: str
    skipped: str = ""


@dataclass(frozen=True, slots=True)
class PassOn:
    """No forward applies: answer the caller as without forwarding (e.g. pass the 486 on)."""

    skipped: str = ""


Decision = Ring | Forward | Redirect | Reject | PassOn


def situation_after(status: int) -> Situation | None:
    """The situation a final answer from the extension's phones puts the call in, if any
    forward applies to it (a 5xx or no answer at all: the phones are unavailable)."""
    if status in BUSY_STATUSES:
        return Situation.BUSY
    if status in NO_ANSWER_STATUSES:
        return Situation.NO_ANSWER
    if status == 0 or 500 <= status < 600:
        return Situation.UNREGISTERED
    return None


def forward_allowed(visited: Sequence[str], target: str, *, max_hops: int = MAX_HOPS) -> bool:
    """May the call go on to ``target``? ``visited``: the targets this call has been at,
    first the one dialled. Each target once, and at most ``max_hops`` forwards. Also for
    following a 3xx from a callee (targets as URIs)."""
    return target not in visited and len(visited) <= max_hops


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """What a decision needs besides the record: read by the call core for each call."""

    plan: LinePlan
    is_extension: Callable[[str], bool]
    may_dial_out: bool
    """The forwarding extension's own outbound permission (not the caller's)."""
    visited: tuple[str, ...] = ()
    """Targets this call has already been at (extension numbers, DESTs), first the dialled."""
    max_hops: int = MAX_HOPS


def resolve(dest: str, record: ForwardingRecord, context: Context) -> Target | str:
    """The usable target of ``dest`` now, or why it cannot be used."""
    if dest.lower().startswith(URI_SCHEMES):
        if not record.redirect:
            return f"{dest} is a URI: only a redirecting extension can send calls there"
        target = Target("uri", dest, dest)
    else:
        route = route_dialled(
            dest,
            plan=context.plan,
            is_extension=context.is_extension,
            outbound_allowed=context.may_dial_out,
        )
        if route.kind == "reject":
            return f"{dest}: {route.status} {route.reason}"
        if route.kind == "line" and route.target in context.plan.emergency:
            return f"{dest} is an emergency number: calls are not forwarded there"
        kind: Literal["extension", "line"] = "extension" if route.kind == "extension" else "line"
        target = Target(kind, route.target, dest)
    visited = context.visited or (record.number,)
    if record.number not in visited:
        visited = (*visited, record.number)
    key = target.value if target.kind == "extension" else target.dest
    if not forward_allowed(visited, key, max_hops=context.max_hops):
        return f"{dest}: loop or more than {context.max_hops} forwards ({' -> '.join(visited)})"
    return target


def decide(record: ForwardingRecord, situation: Situation, context: Context) -> Decision:
    """What to do with a call for ``record.number`` in ``situation``."""
    skipped: list[str] = []

    def usable(dest: str | None) -> Target | None:
        if dest is None:
            return None
        found = resolve(dest, record, context)
        if isinstance(found, str):
            skipped.append(found)
            return None
        return found

    def divert(target: Target, reason: DiversionReason) -> Decision:
        return Redirect(target, reason) if record.redirect else Forward(target, reason)

    if situation in (Situation.INCOMING, Situation.UNREGISTERED):
        always = usable(record.always)
        if always is not None:
            return divert(always, DiversionReason.UNCONDITIONAL)
        if record.dnd:
            busy = usable(record.busy)
            if busy is not None:
                return divert(busy, DiversionReason.DO_NOT_DISTURB)
            return Reject(486, "Busy Here", "; ".join(skipped))
        if situation is Situation.UNREGISTERED:
            away = usable(record.unregistered)
            if away is not None:
                return divert(away, DiversionReason.UNAVAILABLE)
            return Reject(480, "Temporarily Unavailable", "; ".join(skipped))
        later = usable(record.no_answer)
        if later is not None:
            return Ring(record.after, later)
        return Ring(skipped="; ".join(skipped))
    dest, reason = (
        (record.busy, DiversionReason.USER_BUSY)
        if situation is Situation.BUSY
        else (record.no_answer, DiversionReason.NO_ANSWER)
    )
    target = usable(dest)
    if target is not None:
        return divert(target, reason)
    return PassOn("; ".join(skipped))
