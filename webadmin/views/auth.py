"""First-run setup (one-time code), login with rate limiting, logout."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from pbx.store.admins import (
    AdminError,
    admin_exists,
    create_first_admin,
    recent_failures,
    record_login_failure,
    verify_admin,
)
from webadmin.db import get_db

bp = Blueprint("auth", __name__)


def _source() -> str:
    return request.remote_addr or "unknown"


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> str | Response | tuple[str, int]:
    db = get_db()
    if admin_exists(db):
        return redirect(url_for("auth.login"))
    if request.method == "POST":
        try:
            create_first_admin(
                db,
                code=request.form.get("code", ""),
                username=request.form.get("username", ""),
                password=request.form.get("password", ""),
                now=time.time(),
            )
        except AdminError as exc:
            flash(str(exc), "error")
            return render_template("setup.html", username=request.form.get("username", "")), 400
        session.clear()
        session["admin"] = request.form["username"].strip()
        flash("Welcome. Add your first extension below.", "ok")
        return redirect(url_for("extensions.index"))
    return render_template("setup.html", username="")


def _blocked(db: object) -> bool:
    window = float(current_app.config["LOGIN_FAILURE_WINDOW"])
    limit = int(current_app.config["LOGIN_FAILURE_LIMIT"])
    return recent_failures(get_db(), _source(), time.time() - window) >= limit


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    db = get_db()
    if not admin_exists(db):
        return redirect(url_for("auth.setup"))
    if request.method == "POST":
        if _blocked(db):
            flash("Too many failed logins from your address: wait a few minutes.", "error")
            return render_template("login.html"), 429
        username = request.form.get("username", "").strip()
        if verify_admin(db, username, request.form.get("password", "")):
            session.clear()
            session["admin"] = username
            target = request.args.get("next", "")
            return redirect(
                target if target.startswith("/") and not target.startswith("//") else "/"
            )
        record_login_failure(db, _source(), username, time.time())
        flash("Wrong user name or password.", "error")  # the same words for both
        return render_template("login.html"), 401
    return render_template("login.html")


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    session.clear()
    flash("Logged out.", "ok")
    return redirect(url_for("auth.login"))
