"""Settings kept in the database: the ones all three processes must agree on."""

from __future__ import annotations

from sqlite_utils import Database

from pbx.store.migrations import DEFAULT_REALM


def get_setting(db: Database, key: str) -> str | None:
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return None if row is None else str(row[0])


def get_settings(db: Database, *keys: str) -> dict[str, str]:
    """Several settings in one query (those that are set; absent keys are left out)."""
    marks = ", ".join("?" * len(keys))
    rows = db.execute(f"SELECT key, value FROM settings WHERE key IN ({marks})", list(keys))
    return {str(k): str(v) for k, v in rows.fetchall()}


def set_setting(db: Database, key: str, value: str) -> None:
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )


def sip_realm(db: Database) -> str:
    return get_setting(db, "sip_realm") or DEFAULT_REALM


def nonce_secret(db: Database) -> bytes:
    value = get_setting(db, "nonce_secret")
    if value is None:  # pragma: no cover - the first migration writes it
        raise RuntimeError("the database has no nonce secret; was it migrated?")
    return bytes.fromhex(value)


RESTORE_MARK = "restore_mark"
"""Set by a restore: the switch, seeing it change, writes what it knows live back to the store."""


def restore_mark(db: Database) -> str | None:
    return get_setting(db, RESTORE_MARK)


def mark_restored(db: Database, token: str) -> None:
    """Say a backup was just restored (``token``: unique to this restore, e.g. random hex)."""
    set_setting(db, RESTORE_MARK, token)
