"""Forwarding, do not disturb and redirect of an extension: checked, then stored.

One function changes an extension's name, permissions, PIN and forwarding together
(``update_extension_and_forwarding``), so the CLI, the API and the web admin check the same
rules and a bad value changes nothing. The checks look at the state the change leads to: an
outside forward needs the extension's outbound permission *after* the change, a ``sip:`` URI
needs redirect on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from sqlite_utils import Database

from pbx.routing.dialplan import DEFAULT_BLOCKED, LinePlan, route_dialled, split_list
from pbx.sip.errors import SipParseError
from pbx.sip.uri import parse_sip_uri
from pbx.store.extensions import ExtensionError, get_extension, update_extension
from pbx.store.records import ForwardingRecord
from pbx.store.settings import get_settings
from pbx.store.transaction import write_transaction

FORWARD_AFTER_RANGE = range(5, 301)
"""Seconds of ringing before a no-answer forward: at least a ring or two, at most 5 min."""
MAX_DEST_LENGTH = 256
_WHOLE_RE = re.compile(r"[0-9]{1,4}")
FORWARD_LABELS = {
    "always": "forward always",
    "busy": "forward on busy",
    "no_answer": "forward on no answer",
    "unregistered": "forward when unregistered",
}


class DestinationError(ExtensionError):
    """A forward target that cannot be used; ``status`` is what a phone dialling it hears."""

    def __init__(self, message: str, status: int = 404) -> None:
        super().__init__(message)
        self.status = status


def line_plan(db: Database) -> LinePlan:
    """The dial plan's line settings as the web admin's Phone line page stores them."""
    found = get_settings(
        db, "blocked_prefixes", "outside_prefix", "outbound_patterns", "line_country"
    )
    blocked = found.get("blocked_prefixes")
    return LinePlan(
        outside_prefix=found.get("outside_prefix") or "9",
        outbound_patterns=split_list(found.get("outbound_patterns") or ""),
        blocked_prefixes=DEFAULT_BLOCKED if blocked is None else split_list(blocked),
        country=found.get("line_country") or "US",
    )


def check_destination(
    db: Database, number: str, dest: str, *, redirect: bool, outbound_allowed: bool
) -> str:
    """``dest`` as stored, or DestinationError saying why extension ``number`` cannot
    forward there: an extension, an outside number as dialled, or (redirect) a sip: URI."""
    text = dest.strip()
    if len(text) > MAX_DEST_LENGTH:
        raise DestinationError(f"a forward target is at most {MAX_DEST_LENGTH} characters")
    if text.lower().startswith(("sip:", "sips:")):
        try:
            parse_sip_uri(text)
        except SipParseError as exc:
            raise DestinationError(f"{text[:60]!r} is not a SIP URI ({exc.reason})") from None
        if not redirect:
            raise DestinationError(
                f"{text[:60]} is a URI on another server: turn redirect on to send callers there",
                403,
            )
        return text
    if text == number:
        raise DestinationError(f"extension {number} cannot forward to itself", 482)
    plan = line_plan(db)
    route = route_dialled(
        text,
        plan=plan,
        is_extension=lambda n: get_extension(db, n) is not None,
        outbound_allowed=outbound_allowed,
    )
    if route.kind == "extension":
        return text
    if route.kind == "line":
        if route.target in plan.emergency:
            raise DestinationError(f"calls are not forwarded to the emergency number {text}", 403)
        return text
    if route.status == 403 and route.reason == "Outbound Calls Not Allowed":
        raise DestinationError(
            f"extension {number} may not call out, so it cannot forward to {text}", 403
        )
    if route.status == 403:
        raise DestinationError(f"{text} starts with a blocked prefix", 403)
    if not text:
        raise DestinationError("a forward needs a number", 484)
    prefix = plan.outside_prefix
    hint = f" (outside numbers start with {prefix})" if prefix else ""
    raise DestinationError(
        f"{text[:40]!r} is neither an extension nor an outside number{hint}", 404
    )


def check_forward_after(text: str | int) -> int:
    value = int(text) if isinstance(text, int) or _WHOLE_RE.fullmatch(text.strip()) else None
    if value is None or value not in FORWARD_AFTER_RANGE:
        low, high = FORWARD_AFTER_RANGE[0], FORWARD_AFTER_RANGE[-1]
        raise ExtensionError(f"forward after: a whole number of seconds from {low} to {high}")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardingChange:
    """What to change; None leaves a field as it is, "" turns a forward off."""

    always: str | None = None
    busy: str | None = None
    no_answer: str | None = None
    after: str | int | None = None
    unregistered: str | None = None
    dnd: bool | None = None
    redirect: bool | None = None

    @property
    def empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


def get_forwarding(db: Database, number: str) -> ForwardingRecord | None:
    """The extension's forwarding (one read per call), or None when there is no such one."""
    extension = get_extension(db, number)
    return None if extension is None else extension.forwarding


def set_forwarding(
    db: Database, number: str, change: ForwardingChange, *, now: float
) -> ForwardingRecord:
    """Apply ``change`` and check the state it leads to; ExtensionError and no change when a
    value is bad (within an outer transaction: the whole of it is rolled back)."""
    with write_transaction(db):
        extension = get_extension(db, number)
        if extension is None or extension.forwarding is None:
            raise ExtensionError(f"no extension {number}")
        old = extension.forwarding
        redirect = old.redirect if change.redirect is None else change.redirect
        after = old.after if change.after is None else check_forward_after(change.after)
        targets: dict[str, str | None] = {}
        for name, label in FORWARD_LABELS.items():
            new, current = getattr(change, name), getattr(old, name)
            value = current if new is None else (new.strip() or None)
            if value is not None:
                try:
                    value = check_destination(
                        db, number, value, redirect=redirect,
                        outbound_allowed=extension.outbound_allowed,
                    )  # fmt: skip
                except DestinationError as exc:
                    raise DestinationError(f"{label}: {exc}", exc.status) from None
            targets[name] = value
        dnd = old.dnd if change.dnd is None else change.dnd
        db.execute(
            "UPDATE extensions SET forward_always = ?, forward_busy = ?, forward_no_answer = ?, "
            "forward_after = ?, forward_unregistered = ?, dnd = ?, redirect = ?, updated_at = ? "
            "WHERE number = ?",
            [targets["always"], targets["busy"], targets["no_answer"], after,
             targets["unregistered"], int(dnd), int(redirect), now, number],
        )  # fmt: skip
    record = get_forwarding(db, number)
    assert record is not None
    return record


def update_extension_and_forwarding(
    db: Database,
    number: str,
    *,
    name: str | None = None,
    outbound_allowed: bool | None = None,
    voicemail_pin: str | None = None,
    digest_algorithms: str | None = None,
    forwarding: ForwardingChange | None = None,
    now: float,
) -> None:
    """Everything an extension's page, ``pbx ext set`` or PATCH /api/extensions/N changes,
    in one transaction: all of it, or nothing and an ExtensionError that says why."""
    with write_transaction(db):
        update_extension(
            db, number, name=name, outbound_allowed=outbound_allowed,
            voicemail_pin=voicemail_pin, digest_algorithms=digest_algorithms, now=now,
        )  # fmt: skip
        # Always checked: taking outbound away must not leave an outside forward behind.
        set_forwarding(db, number, forwarding or ForwardingChange(), now=now)
