"""The dashboard: line, phones, calls, alerts; it refreshes itself from /api/status."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, render_template

from pbx.store.bans import active_bans
from pbx.store.calls import active_calls
from pbx.store.extensions import LINE_ACCOUNT
from pbx.store.registrations import load_bindings
from pbx.store.settings import get_setting
from webadmin.db import get_db
from webadmin.security import login_required

bp = Blueprint("dashboard", __name__)


def status_snapshot() -> dict[str, Any]:
    db = get_db()
    now = time.time()
    midnight = time.mktime(time.localtime(now)[:3] + (0, 0, 0, 0, 0, -1))
    today = db.execute(
        "SELECT count(*), sum(answered_at IS NOT NULL) FROM call_records WHERE started_at >= ?",
        [midnight],
    ).fetchone()
    bindings = [b for b in load_bindings(db, now=now) if b.aor != LINE_ACCOUNT]
    bans = active_bans(db, now)
    line = get_setting(db, "line_status") or "not connected"
    alerts = []
    if line in ("down", "not connected"):
        alerts.append(f"Phone line: {line}")
    alerts += [f"Banned: {b.address} ({b.reason})" for b in bans]
    return {
        "line": line,
        "phones": [
            {
                "extension": b.aor,
                "source": f"{b.received_host}:{b.received_port}",
                "user_agent": b.user_agent,
                "reachable": b.reachable,
                "rtt_ms": b.rtt_ms,
                "expires_in": max(0, round(b.expires_at - now)),
            }
            for b in bindings
        ],
        "calls": [
            {
                "caller": c.caller,
                "callee": c.callee,
                "state": c.state,
                "seconds": max(0, round(now - c.started_at)),
            }
            for c in active_calls(db)
        ],  # fmt: skip
        "today": {"calls": int(today[0] or 0), "answered": int(today[1] or 0)},
        "alerts": alerts,
    }


@bp.route("/")
@login_required
def index() -> str:
    return render_template("dashboard.html", status=status_snapshot())
