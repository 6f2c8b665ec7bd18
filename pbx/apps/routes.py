"""The dial plan for an incoming INVITE: which application takes it, and whom it rings.

A call from the phone line rings the configured inbound target (or every extension); a call
from an extension goes to an extension or, through the gateway, out on the line.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx.apps.context import Directory
from pbx.apps.dial import Target
from pbx.routing.dialplan import route_dialled
from pbx.sip.message import Request
from pbx.sip.uri import SipUri
from pbx.store.extensions import LINE_ACCOUNT


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    status: int
    reason: str | None = None


def route_invite(
    invite: Request, caller: str, directory: Directory, *, line_busy: bool
) -> Target | Reject:
    if directory.is_line(caller):
        # Inbound from the phone line: the configured ring group, or every extension.
        numbers = directory.inbound_numbers()
        bindings = [b for n in numbers for b in directory.reachable(n)]
        if not bindings:
            return Reject(status=480, reason="Temporarily Unavailable")
        uri = invite.from_.uri
        caller_id = uri.user if isinstance(uri, SipUri) else None
        return Target(",".join(numbers), bindings, None, caller_id or "unknown", True)
    dialled = invite.uri.user if isinstance(invite.uri, SipUri) else None
    extension = directory.extension(caller)
    route = route_dialled(
        dialled or "",
        plan=directory.line_plan(),
        is_extension=lambda number: directory.extension(number) is not None,
        outbound_allowed=extension is not None and extension.outbound_allowed,
    )
    if route.kind == "reject":
        return Reject(status=route.status, reason=route.reason)
    if route.kind == "extension":
        bindings = directory.reachable(route.target)
        if not bindings:
            return Reject(status=480, reason="Temporarily Unavailable")
        return Target(route.target, bindings, None, caller)
    line = directory.reachable(LINE_ACCOUNT)
    if not line:
        return Reject(status=503, reason="Phone Line Not Connected")
    if line_busy:
        return Reject(status=486, reason="Phone Line Busy")  # one analog line, one call
    return Target(route.target, line, route.target, caller)


def route_transfer(
    dialled: str, transferor: str, directory: Directory, *, line_busy: bool
) -> Target | Reject:
    """Whom a blind transfer to ``dialled`` rings: the dial plan as if the transferor had
    dialled it (an outside number needs the transferor's outbound permission)."""
    extension = directory.extension(transferor)
    route = route_dialled(
        dialled,
        plan=directory.line_plan(),
        is_extension=lambda number: directory.extension(number) is not None,
        outbound_allowed=extension is not None and extension.outbound_allowed,
    )
    if route.kind == "reject":
        return Reject(status=route.status, reason=route.reason)
    if route.kind == "extension":
        bindings = directory.reachable(route.target)
        if not bindings:
            return Reject(status=480, reason="Temporarily Unavailable")
        return Target(route.target, bindings, None, transferor)
    line = directory.reachable(LINE_ACCOUNT)
    if not line:
        return Reject(status=503, reason="Phone Line Not Connected")
    if line_busy:
        return Reject(status=486, reason="Phone Line Busy")
    return Target(route.target, line, route.target, transferor)
