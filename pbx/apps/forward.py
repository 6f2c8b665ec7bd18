"""Forwarding for the dial application: where a call for an extension rings, and where it
goes when that extension's phones are busy, do not answer, are not registered, or redirect.

The decisions themselves are ``pbx/routing/forwarding.py`` (pure, per extension); this module
walks them along a call. One ``Forwarding`` per call remembers the chain: the targets visited
(each once, at most ``MAX_HOPS`` forwards), the Diversion entries the next INVITE carries
(RFC 5806, most recent first), the extension ringing now and its no-answer deadline, and the
extension that first forwarded (the CDR's ``forwarded_from``).

What the dial application gets back is a ``Target`` (ring these contacts), a ``Final`` (answer
the caller this: 486 for do not disturb, 302 with a Contact in redirect mode, 482 when a loop
left nothing to ring) or None (no forward applies: fail the call as without forwarding).

A 3xx from a callee's phone is followed only to our own extensions and, for an extension
allowed out, to an outside number through the line (as if it had been dialled): the switch
never sends a call to a host a phone names, so a phone cannot make the switch call anywhere.
Contacts not followed are passed on to the caller in the 3xx.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Literal

from pbx.apps.context import Directory, dial_plan
from pbx.apps.dial import Target
from pbx.routing import forwarding as rules
from pbx.sip.diversion import (
    Diversion,
    DiversionReason,
    add_diversion,
    format_diversion,
    parse_diversion,
)
from pbx.sip.errors import SipParseError
from pbx.sip.uri import SipUri, parse_uri
from pbx.store.extensions import LINE_ACCOUNT, Extension
from pbx.store.records import ForwardingRecord

log = logging.getLogger("pbx.calls")


@dataclass(frozen=True, slots=True, kw_only=True)
class Final:
    """A final answer for the caller instead of ringing anyone."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()


Outcome = Target | Final


@dataclass(eq=False, slots=True, kw_only=True)
class Forwarding:
    """The forwarding state of one call (created by the dial plan, kept by the dial app)."""

    directory: Directory
    caller: str
    host: str
    """The switch as the caller addressed it: the host of 302 Contacts and Diversion URIs."""
    port: int | None = None
    from_line: bool = False
    line_busy: bool = False
    visited: list[str] = field(default_factory=list)
    """Extensions and DESTs the call has been at, first the one dialled."""
    diversions: tuple[Diversion, ...] = ()
    current: str = ""
    """The extension whose phones ring now."""
    after: float | None = None
    """Seconds of ringing before the current extension's no-answer forward."""
    deadline: float | None = None
    forwarded_from: str | None = None
    unfollowed: tuple[str, ...] = ()
    """3xx Contacts not followed: the caller gets them if the call fails with the 3xx."""

    # -- what the dial app asks ---------------------------------------------------------
    def headers(self) -> list[tuple[str, str]]:
        """What a forwarded INVITE carries so the phone shows why it rings."""
        return [("Diversion", format_diversion(self.diversions))] if self.diversions else []

    def ringing(self, now: float) -> None:
        """The current extension's phones start ringing: arm its no-answer forward."""
        self.deadline = None if self.after is None else now + self.after

    def due(self, now: float) -> bool:
        if self.deadline is None or now < self.deadline:
            return False
        self.deadline = None
        return True

    def after_failure(self, status: int, *, line_busy: bool) -> Outcome | None:
        """Where the call goes when the current extension's phones ended with ``status``
        (408 for the no-answer time running out)."""
        self.deadline = None
        self.line_busy = line_busy
        if 300 <= status < 400 and self.unfollowed:
            contacts = tuple(("Contact", f"<{c}>") for c in self.unfollowed)
            return Final(status=status, reason="Moved Temporarily", headers=contacts)
        situation = rules.situation_after(status)
        extension = self.directory.extension(self.current) if self.current else None
        if situation is None or extension is None or extension.forwarding is None:
            return None
        decision = rules.decide(extension.forwarding, situation, self._context(extension))
        if isinstance(decision, rules.Forward | rules.Redirect):
            return self._divert(self.current, decision)
        if isinstance(decision, rules.PassOn) and decision.skipped:
            log.info("event=forward_skipped ext=%s why=%r", self.current, decision.skipped)
        return None

    def follow(self, contacts: tuple[str, ...], *, line_busy: bool) -> Outcome | None:
        """A phone of the current extension answered 3xx: the first Contact we may follow
        (an extension of ours, or an outside number for an extension allowed out)."""
        self.line_busy = line_busy
        extension = self.directory.extension(self.current) if self.current else None
        for contact in contacts:
            try:
                uri = parse_uri(contact)
            except SipParseError:
                continue
            user = uri.user if isinstance(uri, SipUri) else None
            if extension is None or not user or not rules.forward_allowed(self.visited, user):
                self.unfollowed += (contact,)
                continue
            route = dial_plan(self.directory, user, extension)
            if route.kind == "reject":
                self.unfollowed += (contact,)
                continue
            kind: Literal["extension", "line"] = (
                "extension" if route.kind == "extension" else "line"
            )
            target = rules.Target(kind, route.target, user)
            return self._divert(self.current, rules.Forward(target, DiversionReason.DEFLECTION))
        return None

    # -- the chain ----------------------------------------------------------------------
    def ring(self, number: str) -> Outcome:
        """Whom a call for extension ``number`` rings now, following forward-always, do not
        disturb and forward-when-unregistered as far as they go."""
        extension = self.directory.extension(number)
        if extension is None:
            return Final(status=404, reason="Not Found")
        if number not in self.visited:
            self.visited.append(number)
        record = extension.forwarding or ForwardingRecord(number=number)
        bindings = self.directory.reachable(number)
        situation = rules.Situation.INCOMING if bindings else rules.Situation.UNREGISTERED
        context = self._context(extension)
        decision = rules.decide(record, situation, context)
        if isinstance(decision, rules.Ring):
            if decision.skipped:
                log.info("event=forward_skipped ext=%s why=%r", number, decision.skipped)
            self.current = number
            has_then = decision.then is not None and decision.after is not None
            self.after = float(decision.after) if has_then and decision.after else None
            return Target(number, bindings, None, self.caller, self.from_line, forward=self)
        if isinstance(decision, rules.Reject):
            if _looped(record, situation, context):
                log.info("event=forward_loop ext=%s chain=%s", number, ",".join(self.visited))
                return Final(status=482, reason="Loop Detected")
            return Final(status=decision.status, reason=decision.phrase)
        if isinstance(decision, rules.PassOn):
            return Final(status=480, reason="Temporarily Unavailable")
        return self._divert(number, decision)

    def _divert(self, number: str, decision: rules.Forward | rules.Redirect) -> Outcome:
        target = decision.target
        self.diversions = add_diversion(
            self.diversions,
            uri=SipUri(user=number, host=self.host, port=self.port),
            reason=decision.reason,
        )
        self.forwarded_from = self.forwarded_from or number
        key = target.value if target.kind == "extension" else target.dest
        if key not in self.visited:
            self.visited.append(key)
        log.info(
            "event=call_forward from=%s to=%s reason=%s redirect=%s",
            number, target.dest, decision.reason, isinstance(decision, rules.Redirect),
        )  # fmt: skip
        if isinstance(decision, rules.Redirect):
            ours = SipUri(user=target.dest, host=self.host, port=self.port)
            uri = target.value if target.kind == "uri" else str(ours)
            return Final(
                status=302,
                reason="Moved Temporarily",
                headers=(("Contact", f"<{uri}>"), *self.headers()),
            )
        if target.kind == "extension":
            return self.ring(target.value)
        if target.kind != "line":
            return Final(status=404, reason="Not Found")  # (a URI is for redirect only)
        if self.from_line or self.line_busy:
            return Final(status=486, reason="Phone Line Busy")  # one analog line, one call
        line = self.directory.reachable(LINE_ACCOUNT)
        if not line:
            return Final(status=503, reason="Phone Line Not Connected")
        self.current = ""
        self.after = None
        return Target(target.dest, line, target.value, self.caller, self.from_line, forward=self)

    def _context(self, extension: Extension) -> rules.Context:
        return rules.Context(
            plan=self.directory.line_plan(),
            is_extension=lambda n: self.directory.extension(n) is not None,
            may_dial_out=extension.outbound_allowed,
            visited=tuple(self.visited),
        )


def _looped(record: ForwardingRecord, situation: rules.Situation, context: rules.Context) -> bool:
    """Was a forward of ``record`` left out only because the call has been there already
    (or has made too many hops)? Then the caller hears 482, not a plain 480 or 486."""
    fresh = rules.Context(
        plan=context.plan,
        is_extension=context.is_extension,
        may_dial_out=context.may_dial_out,
        visited=(record.number,),
        max_hops=context.max_hops,
    )
    dests = [record.always, record.unregistered if situation is rules.Situation.UNREGISTERED
             else None, record.busy if record.dnd else None]  # fmt: skip
    return any(
        dest is not None
        and isinstance(rules.resolve(dest, record, context), str)
        and isinstance(rules.resolve(dest, record, fresh), rules.Target)
        for dest in dests
    )


def incoming_diversions(values: list[str]) -> tuple[Diversion, ...]:
    """The Diversion entries a call arrived with (a forward from another server), or none
    when they do not parse: ours go first, theirs stay below."""
    try:
        return parse_diversion(values)
    except (SipParseError, ValueError):
        return ()
