"""Write transactions that take the lock at once (BEGIN IMMEDIATE) and always end."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_utils import Database


@contextmanager
def write_transaction(db: Database) -> Iterator[None]:
    """All of the block's writes or none of them, even if the process dies half-way."""
    conn = db.conn
    if conn.in_transaction:
        # Nested use joins the outer transaction (one commit for a batch of writes).
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
