"""Call records (CDR) and the calls in progress."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlite_utils import Database

from pbx.store.transaction import write_transaction


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecord:
    call_id: str
    caller: str
    callee: str
    started_at: float
    answered_at: float | None
    ended_at: float
    end_reason: str
    status: int | None
    caller_codec: str | None
    callee_codec: str | None
    forwarded_from: str | None = None
    """The extension whose forwarding (or a 3xx from its phone) sent the call on, first."""
    transferred_by: str | None = None
    """Who transferred the call (the party that sent the REFER)."""
    transferred_to: str | None = None
    """Where the call was transferred to."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveCall:
    call_id: str
    caller: str
    callee: str
    state: str
    started_at: float
    answered_at: float | None = None
    caller_media: str | None = None
    callee_media: str | None = None


_RECORD_COLUMNS = (
    "call_id, caller, callee, started_at, answered_at, ended_at, end_reason, status, "
    "caller_codec, callee_codec, forwarded_from, transferred_by, transferred_to"
)
_ACTIVE_COLUMNS = (
    "call_id, caller, callee, state, started_at, answered_at, caller_media, callee_media"
)


def save_active(db: Database, call: ActiveCall) -> None:
    db.execute(
        f"INSERT OR REPLACE INTO active_calls ({_ACTIVE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            call.call_id,
            call.caller,
            call.callee,
            call.state,
            call.started_at,
            call.answered_at,
            call.caller_media,
            call.callee_media,
        ],
    )


def finish_call(db: Database, record: CallRecord) -> None:
    """The CDR row and the end of the in-progress row, together."""
    with write_transaction(db):
        db.execute(
            f"INSERT INTO call_records ({_RECORD_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                record.call_id,
                record.caller,
                record.callee,
                record.started_at,
                record.answered_at,
                record.ended_at,
                record.end_reason,
                record.status,
                record.caller_codec,
                record.callee_codec,
                record.forwarded_from,
                record.transferred_by,
                record.transferred_to,
            ],
        )
        db.execute("DELETE FROM active_calls WHERE call_id = ?", [record.call_id])


def replace_active(db: Database, calls: Iterable[ActiveCall]) -> None:
    """Make the in-progress table hold exactly ``calls`` (after a restore put an old copy there)."""
    with write_transaction(db):
        db.execute("DELETE FROM active_calls")
        for call in calls:
            save_active(db, call)


def clear_active(db: Database) -> None:
    """At start-up: calls of a previous run are gone (their records were not finished)."""
    db.execute("DELETE FROM active_calls")


def active_calls(db: Database) -> list[ActiveCall]:
    rows = db.execute(f"SELECT {_ACTIVE_COLUMNS} FROM active_calls ORDER BY started_at").fetchall()
    return [
        ActiveCall(
            call_id=r[0],
            caller=r[1],
            callee=r[2],
            state=r[3],
            started_at=r[4],
            answered_at=r[5],
            caller_media=r[6],
            callee_media=r[7],
        )  # fmt: skip
        for r in rows
    ]


def call_records(db: Database, limit: int = 100) -> list[CallRecord]:
    rows = db.execute(
        f"SELECT {_RECORD_COLUMNS} FROM call_records ORDER BY id DESC LIMIT ?", [limit]
    ).fetchall()
    return [
        CallRecord(
            call_id=r[0],
            caller=r[1],
            callee=r[2],
            started_at=r[3],
            answered_at=r[4],
            ended_at=r[5],
            end_reason=r[6],
            status=r[7],
            caller_codec=r[8],
            callee_codec=r[9],
            forwarded_from=r[10],
            transferred_by=r[11],
            transferred_to=r[12],
        )  # fmt: skip
        for r in rows
    ]
