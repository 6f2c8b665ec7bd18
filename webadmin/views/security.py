"""Security: banned sources (with unban) and failed web logins."""

from __future__ import annotations

import time

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pbx.store.admins import login_failures
from pbx.store.bans import active_bans, remove_ban
from webadmin.db import get_db
from webadmin.security import login_required

bp = Blueprint("security", __name__, url_prefix="/security")


@bp.route("/")
@login_required
def index() -> str:
    db = get_db()
    now = time.time()
    return render_template(
        "security.html", bans=active_bans(db, now), failures=login_failures(db), now=now
    )


@bp.route("/unban", methods=["POST"])
@login_required
def unban() -> Response:
    address = request.form.get("address", "")
    if remove_ban(get_db(), address):
        flash(f"{address} may connect again (the switch notices within seconds).", "ok")
    else:
        flash(f"{address} is not banned.", "error")
    return redirect(url_for("security.index"))
