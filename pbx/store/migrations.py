"""The schema, as numbered migrations recorded in the database itself.

Each migration runs once, in its own write transaction together with the row that
records it, so a crash mid-migration leaves the file as it was before. Append new
migrations to MIGRATIONS; never edit one that has shipped.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlite_utils import Database

from pbx.store.transaction import write_transaction

DEFAULT_REALM = "switchboard"


def _0001_extensions_and_location(db: Database) -> None:
    db.table("extensions").create(
        {
            "number": str,
            "display_name": str,
            # H(number:realm:password) per RFC 7616 for each algorithm we offer; the
            # password itself is not kept unless the admin asks (provisioning).
            "ha1_md5": str,
            "ha1_sha256": str,
            "provisioning_password": str,
            "voicemail_pin": str,
            "outbound_allowed": int,
            "last_auth_algorithm": str,
            "created_at": float,
            "updated_at": float,
        },
        pk="number",
        not_null={"number", "display_name", "ha1_md5", "ha1_sha256", "outbound_allowed"},
        defaults={"display_name": "", "outbound_allowed": 1},
    )
    db.table("registrations").create(
        {
            "id": int,
            "aor": str,
            # What identifies the binding: +sip.instance (with reg-id) or the contact URI.
            "binding_key": str,
            "contact": str,
            "expires_at": float,
            "q": float,
            "received_host": str,
            "received_port": int,
            "transport": str,
            "local_host": str,
            "local_port": int,
            "instance_id": str,
            "reg_id": int,
            "user_agent": str,
            "call_id": str,
            "cseq": int,
            "path": str,
            "auth_algorithm": str,
            "registered_at": float,
            "reachable": int,
            "rtt_ms": float,
            "qualified_at": float,
        },
        pk="id",
        not_null={
            "aor",
            "binding_key",
            "contact",
            "expires_at",
            "received_host",
            "received_port",
            "transport",
            "call_id",
            "cseq",
            "registered_at",
        },
        foreign_keys=[("aor", "extensions", "number")],
    )
    db.execute("CREATE UNIQUE INDEX registrations_binding ON registrations (aor, binding_key)")
    db.execute("CREATE INDEX registrations_expiry ON registrations (expires_at)")
    db.table("source_bans").create(
        {"address": str, "banned_at": float, "until": float, "failures": int, "reason": str},
        pk="address",
        not_null={"address", "banned_at", "until"},
    )
    db.table("settings").create({"key": str, "value": str}, pk="key", not_null={"value"})
    db.table("settings").insert_all(
        [
            # The digest realm is part of every stored HA1, so it is fixed when the file is made.
            {"key": "sip_realm", "value": DEFAULT_REALM},
            # Signs nonces, so challenges stay valid across a restart of the switch.
            {"key": "nonce_secret", "value": secrets.token_hex(32)},
        ]
    )


def _0002_calls(db: Database) -> None:
    # Every call, answered or not (the CDR): who called whom, when, how it ended, which codecs.
    db.table("call_records").create(
        {
            "id": int,
            "call_id": str,
            "caller": str,
            "callee": str,
            "started_at": float,
            "answered_at": float,
            "ended_at": float,
            "end_reason": str,
            "status": int,
            "caller_codec": str,
            "callee_codec": str,
        },
        pk="id",
        not_null={"call_id", "caller", "callee", "started_at", "ended_at", "end_reason"},
    )
    db.execute("CREATE INDEX call_records_started ON call_records (started_at)")
    # Calls in progress, for `pbx status` and the web admin; rows go when the call ends.
    db.table("active_calls").create(
        {
            "call_id": str,
            "caller": str,
            "callee": str,
            "state": str,
            "started_at": float,
            "answered_at": float,
            "caller_media": str,
            "callee_media": str,
        },
        pk="call_id",
        not_null={"caller", "callee", "state", "started_at"},
    )


def _0003_admins(db: Database) -> None:
    # Web admin accounts: scrypt hashes only.
    db.table("admins").create(
        {"username": str, "password_hash": str, "created_at": float},
        pk="username",
        not_null={"password_hash", "created_at"},
    )
    # Failed web logins, for rate limiting and the Security page.
    db.table("login_failures").create(
        {"id": int, "address": str, "username": str, "at": float},
        pk="id",
        not_null={"address", "at"},
    )
    db.execute("CREATE INDEX login_failures_at ON login_failures (address, at)")
    # The one-time code the first visitor must type to create the admin (no default password).
    db.table("settings").insert({"key": "setup_code", "value": _setup_code()}, replace=True)
    db.table("settings").insert({"key": "web_secret", "value": secrets.token_hex(32)}, replace=True)


def _setup_code() -> str:
    """Twelve characters, grouped for reading off a console: about 60 bits."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    raw = "".join(secrets.choice(alphabet) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def _0004_desk_phones(db: Database) -> None:
    # Desk phones provisioned over HTTP: which MAC gets which extension's config file.
    db.table("desk_phones").create(
        {"mac": str, "extension": str, "vendor": str, "created_at": float},
        pk="mac",
        not_null={"extension", "vendor", "created_at"},
        foreign_keys=[("extension", "extensions", "number")],
    )


def _0005_line_accounts(db: Database) -> None:
    # The line gateway registers like a phone, under an account of kind 'line' that phones
    # cannot dial and the admin does not see among the extensions.
    db.execute("ALTER TABLE extensions ADD COLUMN kind TEXT NOT NULL DEFAULT 'phone'")


def _0006_digest_choice(db: Database) -> None:
    # Which digest algorithms an extension's phones are challenged with, most preferred first
    # (e.g. "SHA-256,MD5"); NULL: the box's digest_algorithms setting (MD5 unless changed).
    db.execute("ALTER TABLE extensions ADD COLUMN digest_algorithms TEXT")


def _0007_call_forwarding(db: Database) -> None:
    # Where an extension's calls go instead of (or after) ringing it: a DEST is an extension
    # number, an outside number as dialled (e.g. 9 then the digits) or, with redirect, a sip:
    # URI; NULL is off. forward_after: seconds of ringing before forward_no_answer.
    # redirect: answer 302 with the target's Contact instead of calling the target ourselves.
    # (voicemail_pin is in the first migration already.)
    for column in ("forward_always", "forward_busy", "forward_no_answer", "forward_unregistered"):
        db.execute(f"ALTER TABLE extensions ADD COLUMN {column} TEXT")
    db.execute("ALTER TABLE extensions ADD COLUMN forward_after INTEGER NOT NULL DEFAULT 20")
    db.execute("ALTER TABLE extensions ADD COLUMN dnd INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE extensions ADD COLUMN redirect INTEGER NOT NULL DEFAULT 0")


def _0008_call_record_features(db: Database) -> None:
    # Who a call was forwarded from (the extension whose forwarding, or whose phone's 3xx,
    # sent it on first), and for a transfer who transferred it to whom; NULL: not so.
    for column in ("forwarded_from", "transferred_by", "transferred_to"):
        db.execute(f"ALTER TABLE call_records ADD COLUMN {column} TEXT")


Migration = Callable[[Database], None]

MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_extensions_and_location", _0001_extensions_and_location),
    ("0002_calls", _0002_calls),
    ("0003_admins", _0003_admins),
    ("0004_desk_phones", _0004_desk_phones),
    ("0005_line_accounts", _0005_line_accounts),
    ("0006_digest_choice", _0006_digest_choice),
    ("0007_call_forwarding", _0007_call_forwarding),
    ("0008_call_record_features", _0008_call_record_features),
]


def apply_migrations(db: Database) -> list[str]:
    """Run the migrations this file has not had yet; returns their names."""
    applied: list[str] = []
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for name, migrate in MIGRATIONS:
        with write_transaction(db):
            # Checked inside the lock: two processes starting at once migrate once.
            done = db.execute("SELECT 1 FROM _migrations WHERE name = ?", [name]).fetchone()
            if done:
                continue
            migrate(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, datetime('now'))", [name]
            )
        applied.append(name)
    return applied
