"""Backup and restore: a consistent copy through SQLite's backup API, and a checked restore."""

from __future__ import annotations

import secrets
import sqlite3
import tempfile
import time
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.wrappers import Response

from pbx.store.database import open_database
from pbx.store.migrations import MIGRATIONS
from pbx.store.settings import mark_restored
from webadmin.db import get_db
from webadmin.security import login_required

bp = Blueprint("backup", __name__, url_prefix="/backup")
SQLITE_MAGIC = b"SQLite format 3\x00"


@bp.route("/")
@login_required
def index() -> str:
    return render_template("backup.html")


@bp.route("/download")
@login_required
def download() -> Response:
    # A copy made by the backup API is consistent even while the switch writes.
    folder = Path(tempfile.mkdtemp(prefix="switchboard-backup-"))
    target = folder / time.strftime("switchboard-%Y%m%d-%H%M%S.db")
    with sqlite3.connect(target) as copy:
        get_db().conn.backup(copy)
    copy.close()
    return send_file(target, as_attachment=True, download_name=target.name,
                     mimetype="application/vnd.sqlite3")  # fmt: skip


def check_backup(path: Path) -> str | None:
    """Why ``path`` is not a backup of ours, or None when it is one we can restore."""
    with path.open("rb") as handle:
        if handle.read(16) != SQLITE_MAGIC:
            return "that file is not a Switchboard backup (not an SQLite database)"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return "that backup is damaged (SQLite integrity check failed)"
            names = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return "that file is not a Switchboard backup (no schema of ours in it)"
    known = {name for name, _ in MIGRATIONS}
    if MIGRATIONS[0][0] not in names:
        return "that file is not a Switchboard backup (no schema of ours in it)"
    if names - known:
        return "that backup comes from a newer Switchboard: update this box first"
    return None


@bp.route("/restore", methods=["POST"])
@login_required
def restore() -> Response:
    upload = request.files.get("backup")
    if upload is None or not upload.filename:
        flash("Choose a backup file first.", "error")
        return redirect(url_for("backup.index"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload.db"
        upload.save(path)
        problem = check_backup(path)
        if problem is not None:
            flash(problem[0].upper() + problem[1:] + ". Nothing was changed.", "error")
            return redirect(url_for("backup.index"))
        source = sqlite3.connect(path)
        try:
            source.backup(get_db().conn)  # page by page into the live file, in one go
        finally:
            source.close()
    restored = open_database(current_app.config["DB"])  # an older backup gets today's schema
    try:
        # The switch sees this and writes the phones registered now and the calls in
        # progress back over the backup's old copies of them.
        mark_restored(restored, secrets.token_hex(8))
    finally:
        restored.close()
    flash("Restored. Registered phones and calls in progress are unaffected.", "ok")
    return redirect(url_for("backup.index"))
