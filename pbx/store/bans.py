"""Source bans: addresses whose requests the switch drops, kept across restarts."""

from __future__ import annotations

from sqlite_utils import Database

from pbx.store.records import SourceBan
from pbx.store.transaction import write_transaction


def save_ban(db: Database, ban: SourceBan) -> None:
    with write_transaction(db):
        db.execute(
            "INSERT INTO source_bans (address, banned_at, until, failures, reason) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE SET "
            "banned_at = excluded.banned_at, until = excluded.until, "
            "failures = excluded.failures, reason = excluded.reason",
            [ban.address, ban.banned_at, ban.until, ban.failures, ban.reason],
        )


def active_bans(db: Database, now: float) -> list[SourceBan]:
    rows = db.execute(
        "SELECT address, banned_at, until, failures, reason FROM source_bans "
        "WHERE until > ? ORDER BY banned_at",
        [now],
    ).fetchall()
    return [
        SourceBan(
            address=str(a), banned_at=float(b), until=float(u), failures=int(f), reason=str(r or "")
        )
        for a, b, u, f, r in rows
    ]


def remove_ban(db: Database, address: str) -> bool:
    """Lift a ban; False when there was none."""
    with write_transaction(db):
        return db.execute("DELETE FROM source_bans WHERE address = ?", [address]).rowcount > 0


def ban_generation(db: Database) -> tuple[int, float]:
    """Changes when bans change, so the switch can reload them cheaply."""
    row = db.execute("SELECT count(*), coalesce(sum(until), 0) FROM source_bans").fetchone()
    return (int(row[0]), float(row[1]))
