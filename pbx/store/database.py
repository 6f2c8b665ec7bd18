"""Opening the one SQLite file that the switch, the gateway and the web admin share.

WAL lets readers (the web admin, ``pbx status``) run while the switch writes; the busy
timeout makes a second writer wait instead of failing; foreign keys keep registrations
from outliving their extension. Migrations run on every open, so any process can be
the first to start on a new file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from pbx.store.migrations import apply_migrations

BUSY_TIMEOUT_MS = 5000


def open_database(path: Path | str, *, migrate: bool = True) -> Database:
    """Open (creating if needed) the database at ``path`` with our pragmas set."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we open transactions ourselves with BEGIN IMMEDIATE, so a
    # writer takes the lock up front and waits (busy timeout) instead of deadlocking.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL is durable across a crash of the process (SIGKILL) and keeps
        # the file consistent on power loss; only the last commits may roll back then.
        conn.execute("PRAGMA synchronous = NORMAL")
    db = Database(conn)
    if migrate:
        apply_migrations(db)
    return db
