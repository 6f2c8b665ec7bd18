"""The location store's rows: bindings written by the switch, read by everyone."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable

from sqlite_utils import Database

from pbx.store.records import Binding
from pbx.store.transaction import write_transaction

_COLUMNS = (
    "aor, binding_key, contact, expires_at, q, received_host, received_port, transport, "
    "local_host, local_port, instance_id, reg_id, user_agent, call_id, cseq, path, "
    "auth_algorithm, registered_at, reachable, rtt_ms, qualified_at"
)
_UPSERT = (
    f"INSERT INTO registrations ({_COLUMNS}) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (aor, binding_key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.replace(" ", "").split(",")[2:])
)


def _row(b: Binding) -> tuple[object, ...]:
    return (
        b.aor,
        b.binding_key,
        b.contact,
        b.expires_at,
        b.q,
        b.received_host,
        b.received_port,
        b.transport,
        b.local_host,
        b.local_port,
        b.instance_id,
        b.reg_id,
        b.user_agent,
        b.call_id,
        b.cseq,
        json.dumps(list(b.path)) if b.path else None,
        b.auth_algorithm,
        b.registered_at,
        None if b.reachable is None else int(b.reachable),
        b.rtt_ms,
        b.qualified_at,
    )


def _binding(row: tuple[object, ...]) -> Binding:
    (aor, key, contact, expires_at, q, host, port, transport, local_host, local_port,
     instance, reg_id, agent, call_id, cseq, path, algorithm, registered_at,
     reachable, rtt_ms, qualified_at) = row  # fmt: skip
    return Binding(
        aor=str(aor),
        binding_key=str(key),
        contact=str(contact),
        expires_at=float(expires_at),  # type: ignore[arg-type]
        q=None if q is None else float(q),  # type: ignore[arg-type]
        received_host=str(host),
        received_port=int(port),  # type: ignore[call-overload]
        transport=str(transport),
        local_host=None if local_host is None else str(local_host),
        local_port=None if local_port is None else int(local_port),  # type: ignore[call-overload]
        instance_id=None if instance is None else str(instance),
        reg_id=None if reg_id is None else int(reg_id),  # type: ignore[call-overload]
        user_agent=None if agent is None else str(agent),
        call_id=str(call_id),
        cseq=int(cseq),  # type: ignore[call-overload]
        path=tuple(json.loads(str(path))) if path else (),
        auth_algorithm=None if algorithm is None else str(algorithm),
        registered_at=float(registered_at),  # type: ignore[arg-type]
        reachable=None if reachable is None else bool(reachable),
        rtt_ms=None if rtt_ms is None else float(rtt_ms),  # type: ignore[arg-type]
        qualified_at=None if qualified_at is None else float(qualified_at),  # type: ignore[arg-type]
    )


def save_bindings(
    db: Database, saved: Iterable[Binding], removed: Iterable[tuple[str, str]]
) -> list[Binding]:
    """Apply a batch in one transaction; returns bindings whose extension no longer exists.

    One commit for many registrations is what lets a registration storm keep up.
    """
    orphans: list[Binding] = []
    with write_transaction(db):
        conn = db.conn
        conn.executemany(
            "DELETE FROM registrations WHERE aor = ? AND binding_key = ?", list(removed)
        )
        for binding in saved:
            try:
                conn.execute(_UPSERT, _row(binding))
            except sqlite3.IntegrityError:
                # The extension was removed (by the CLI or web admin) meanwhile.
                orphans.append(binding)
    return orphans


def load_bindings(db: Database, *, now: float | None = None) -> list[Binding]:
    """All bindings, or those still current at ``now``."""
    sql = f"SELECT {_COLUMNS} FROM registrations"
    params: list[object] = []
    if now is not None:
        sql += " WHERE expires_at > ?"
        params.append(now)
    sql += " ORDER BY length(aor), aor, registered_at"
    return [_binding(row) for row in db.execute(sql, params).fetchall()]


def delete_expired(db: Database, now: float) -> int:
    with write_transaction(db):
        return db.execute("DELETE FROM registrations WHERE expires_at <= ?", [now]).rowcount


def replace_bindings(db: Database, bindings: Iterable[Binding]) -> list[Binding]:
    """Make the table hold exactly ``bindings`` (after a restore put an old copy there);
    returns those whose extension the restored store does not have."""
    orphans: list[Binding] = []
    with write_transaction(db):
        db.conn.execute("DELETE FROM registrations")
        for binding in bindings:
            try:
                db.conn.execute(_UPSERT, _row(binding))
            except sqlite3.IntegrityError:
                orphans.append(binding)
    return orphans
