"""Phones: who is registered from where, how reachable, until when."""

from __future__ import annotations

import time

from flask import Blueprint, render_template

from pbx.store.extensions import LINE_ACCOUNT
from pbx.store.registrations import load_bindings
from webadmin.db import get_db
from webadmin.security import login_required

bp = Blueprint("phones", __name__, url_prefix="/phones")


@bp.route("/")
@login_required
def index() -> str:
    now = time.time()
    bindings = [b for b in load_bindings(get_db(), now=now) if b.aor != LINE_ACCOUNT]
    return render_template("phones.html", bindings=bindings, now=now)
