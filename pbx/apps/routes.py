"""The dial plan for an incoming INVITE: which application takes it, and whom it rings.

A call from the phone line rings the configured inbound target (or every extension); a call
from an extension goes to an extension or, through the gateway, out on the line. A call for one
extension follows its forwarding (``pbx/apps/forward.py``); a feature code dialled by an
extension (``*72``...) goes to the feature-code application instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx.apps.context import Directory, dial_plan
from pbx.apps.dial import Target
from pbx.apps.feature_code import FeatureCall
from pbx.apps.forward import Final, Forwarding, incoming_diversions
from pbx.routing.feature_codes import parse_feature_code
from pbx.sip.message import Request
from pbx.sip.uri import SipUri
from pbx.store.extensions import LINE_ACCOUNT


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    """E.g. a 302's Contact."""


def route_invite(
    invite: Request, caller: str, directory: Directory, *, line_busy: bool
) -> Target | Reject | FeatureCall:
    if directory.is_line(caller):
        # Inbound from the phone line: the configured ring group, or every extension.
        numbers = directory.inbound_numbers()
        if len(numbers) == 1:  # one extension: its forwarding applies
            uri = invite.from_.uri
            outside = uri.user if isinstance(uri, SipUri) and uri.user else "unknown"
            return _forwarded(invite, outside, numbers[0], directory, True, line_busy)
        bindings = [b for n in numbers for b in directory.reachable(n)]
        if not bindings:
            return Reject(status=480, reason="Temporarily Unavailable")
        uri = invite.from_.uri
        caller_id = uri.user if isinstance(uri, SipUri) else None
        return Target(",".join(numbers), bindings, None, caller_id or "unknown", True)
    dialled = invite.uri.user if isinstance(invite.uri, SipUri) else None
    extension = directory.extension(caller)
    if extension is not None and dialled:
        command = parse_feature_code(dialled, directory.feature_codes())
        if command is not None:
            return FeatureCall(caller=caller, command=command)
    route = dial_plan(directory, dialled or "", extension)
    if route.kind == "reject":
        return Reject(status=route.status, reason=route.reason)
    if route.kind == "extension":
        return _forwarded(invite, caller, route.target, directory, False, line_busy)
    return _out_on_the_line(route.target, caller, directory, line_busy=line_busy)


def _out_on_the_line(
    digits: str, caller: str, directory: Directory, *, line_busy: bool
) -> Target | Reject:
    """The line gateway dialling ``digits``, when it is there and free."""
    line = directory.reachable(LINE_ACCOUNT)
    if not line:
        return Reject(status=503, reason="Phone Line Not Connected")
    if line_busy:
        return Reject(status=486, reason="Phone Line Busy")  # one analog line, one call
    return Target(digits, line, digits, caller)


def _forwarded(
    invite: Request,
    caller: str,
    number: str,
    directory: Directory,
    from_line: bool,
    line_busy: bool,
) -> Target | Reject:
    """Extension ``number``'s phones, or where its forwarding sends the call."""
    uri = invite.uri
    host, port = (uri.host, uri.port) if isinstance(uri, SipUri) else ("localhost", None)
    forwarding = Forwarding(
        directory=directory, caller=caller, host=host, port=port, from_line=from_line,
        line_busy=from_line or line_busy,
        diversions=incoming_diversions(invite.headers.get_all("Diversion")),
    )  # fmt: skip
    outcome = forwarding.ring(number)
    if isinstance(outcome, Final):
        return Reject(status=outcome.status, reason=outcome.reason, headers=outcome.headers)
    return outcome


def route_transfer(
    dialled: str, transferor: str, directory: Directory, *, line_busy: bool
) -> Target | Reject:
    """Whom a blind transfer to ``dialled`` rings: the dial plan as if the transferor had
    dialled it (an outside number needs the transferor's outbound permission)."""
    route = dial_plan(directory, dialled, directory.extension(transferor))
    if route.kind == "reject":
        return Reject(status=route.status, reason=route.reason)
    if route.kind == "extension":
        bindings = directory.reachable(route.target)
        if not bindings:
            return Reject(status=480, reason="Temporarily Unavailable")
        return Target(route.target, bindings, None, transferor)
    return _out_on_the_line(route.target, transferor, directory, line_busy=line_busy)
