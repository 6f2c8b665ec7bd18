"""Call history: the CDR with filters, calls per day, CSV export."""

from __future__ import annotations

import csv
import io
import time
from datetime import date, datetime
from typing import Any

from flask import Blueprint, Response, render_template, request

from webadmin.db import get_db
from webadmin.security import login_required

bp = Blueprint("calls", __name__, url_prefix="/calls")

COLUMNS = (
    "call_id", "caller", "callee", "started_at", "answered_at", "ended_at", "end_reason",
    "status", "caller_codec", "callee_codec", "forwarded_from", "transferred_by",
    "transferred_to",
)  # fmt: skip


def _filters() -> tuple[str, list[Any], dict[str, str], list[str]]:
    clauses: list[str] = []
    params: list[Any] = []
    errors: list[str] = []
    values = {
        k: request.args.get(k, "").strip() for k in ("extension", "since", "until", "answered")
    }
    if values["extension"]:
        if not values["extension"].isdigit():
            errors.append("extension: digits only")
        else:
            clauses.append("(caller = ? OR callee = ?)")
            params += [values["extension"], values["extension"]]
    for key, op in (("since", ">="), ("until", "<")):
        if values[key]:
            try:
                day = date.fromisoformat(values[key])
            except ValueError:
                errors.append(f"{key}: a date like 2026-11-30")
                continue
            stamp = datetime(day.year, day.month, day.day).timestamp()
            clauses.append(f"started_at {op} ?")
            params.append(stamp + (86400 if key == "until" else 0))
    if values["answered"] in ("yes", "no"):
        clauses.append("answered_at IS " + ("NOT NULL" if values["answered"] == "yes" else "NULL"))
    where = " WHERE " + " AND ".join(clauses) if clauses else ""
    return where, params, values, errors


@bp.route("/")
@login_required
def index() -> str:
    db = get_db()
    where, params, values, errors = _filters()
    rows = db.execute(
        f"SELECT {', '.join(COLUMNS)} FROM call_records{where} ORDER BY started_at DESC LIMIT 200",
        params,
    ).fetchall()
    per_day = db.execute(
        f"SELECT date(started_at, 'unixepoch', 'localtime') AS day, count(*) FROM call_records"
        f"{where} GROUP BY day ORDER BY day DESC LIMIT 14",
        params,
    ).fetchall()
    by_hour = dict(db.execute(
        "SELECT CAST(strftime('%H', started_at, 'unixepoch', 'localtime') AS INTEGER), count(*)"
        f" FROM call_records{where} GROUP BY 1",
        params,
    ).fetchall())  # fmt: skip
    # (axis label, tooltip, count): the busiest days of late, and when in the day calls come.
    days = [(day[5:], day, n) for day, n in reversed(per_day)]
    hours = [(f"{h:02d}", f"{h:02d}:00-{h:02d}:59", by_hour.get(h, 0)) for h in range(24)]
    return render_template(
        "calls.html", rows=[dict(zip(COLUMNS, r, strict=True)) for r in rows], values=values,
        errors=errors, days=days, hours=hours if any(n for _, _, n in hours) else [], fmt=_fmt,
    )  # fmt: skip


@bp.route("/export.csv")
@login_required
def export() -> Response:
    db = get_db()
    where, params, _, _ = _filters()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for row in db.execute(
        f"SELECT {', '.join(COLUMNS)} FROM call_records{where} ORDER BY started_at", params
    ):
        writer.writerow(row)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=calls.csv"},
    )


def _fmt(stamp: float | None) -> str:
    return "" if stamp is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
