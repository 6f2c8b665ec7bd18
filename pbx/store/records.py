"""The rows other layers read and write through the store, as plain frozen values.

They carry no SQL and no behaviour, so the pure layers (the registrar) can use them
without touching the database.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """One contact of an address of record (RFC 3261 §10), with where it really is (NAT)."""

    aor: str
    """The extension number: the user part of the address of record."""
    binding_key: str
    """What identifies the binding: ``instance <urn>;reg-id`` (RFC 5626) or the contact URI."""
    contact: str
    expires_at: float
    """Wall-clock seconds, so a binding keeps its expiry across a restart."""
    received_host: str
    received_port: int
    transport: str
    call_id: str
    cseq: int
    registered_at: float
    q: float | None = None
    local_host: str | None = None
    local_port: int | None = None
    instance_id: str | None = None
    reg_id: int | None = None
    user_agent: str | None = None
    path: tuple[str, ...] = ()
    auth_algorithm: str | None = None
    reachable: bool | None = None
    rtt_ms: float | None = None
    qualified_at: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceBan:
    """A source address whose requests are dropped until ``until`` (wall clock)."""

    address: str
    banned_at: float
    until: float
    failures: int
    reason: str


DEFAULT_FORWARD_AFTER = 20
"""Seconds an extension rings before its no-answer forward takes the call."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardingRecord:
    """Where an extension's calls go instead of, or after, ringing its phones.

    Each target is a DEST as the admin or the phone gave it (an extension number, an outside
    number as dialled, or a ``sip:`` URI for redirect), or None when that forward is off. The
    call core reads it on each call, so a change is live at once.
    """

    number: str
    always: str | None = None
    busy: str | None = None
    no_answer: str | None = None
    after: int = DEFAULT_FORWARD_AFTER
    """Seconds of ringing before ``no_answer`` takes the call."""
    unregistered: str | None = None
    dnd: bool = False
    """Do not disturb: callers get 486, or ``busy`` when that is set."""
    redirect: bool = False
    """Answer 302 with the target's Contact instead of calling the target (redirect server)."""
