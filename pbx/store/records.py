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
