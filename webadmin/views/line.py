"""The phone line's settings: backend, country, outside-line prefix, inbound and outbound routes."""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pbx.store.extensions import get_extension
from pbx.store.settings import get_setting, set_setting
from pbx.store.transaction import write_transaction
from webadmin.db import get_db
from webadmin.security import login_required

bp = Blueprint("line", __name__, url_prefix="/line")

BACKENDS = ("sim", "modem", "gpio")
COUNTRIES = ("US", "UK", "FR", "DE")
DEFAULTS = {
    "line_backend": "sim",
    "line_device": "",
    "line_country": "US",
    "outside_prefix": "9",
    "inbound_target": "",
    "outbound_patterns": "",
    "blocked_prefixes": "00, 011, 1900, 900",
}
PATTERN_RE = re.compile(r"[0-9XNZ.*#+\[\]-]{1,32}")


def line_settings() -> dict[str, str]:
    db = get_db()
    return {key: get_setting(db, key) or default for key, default in DEFAULTS.items()}


def validate(form: dict[str, str]) -> list[str]:
    errors = []
    if form["line_backend"] not in BACKENDS:
        errors.append("backend: one of " + ", ".join(BACKENDS))
    if form["line_country"] not in COUNTRIES:
        errors.append("country: one of " + ", ".join(COUNTRIES))
    if not re.fullmatch(r"[0-9]{0,2}", form["outside_prefix"]):
        errors.append("outside-line prefix: one or two digits, or empty")
    if len(form["line_device"]) > 128 or any(c in form["line_device"] for c in "\n\r\0"):
        errors.append("device: a device path such as /dev/ttyACM0")
    targets = [t.strip() for t in form["inbound_target"].split(",") if t.strip()]
    for target in targets:
        if get_extension(get_db(), target) is None:
            errors.append(f"inbound calls: there is no extension {target}")
    for field, label in (
        ("outbound_patterns", "outbound patterns"),
        ("blocked_prefixes", "blocked prefixes"),
    ):
        for item in (i.strip() for i in form[field].split(",")):
            if item and not PATTERN_RE.fullmatch(item):
                errors.append(f"{label}: {item!r} is not a dial pattern (digits, X, N, Z, .)")
    return errors


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> str | Response | tuple[str, int]:
    if request.method == "POST":
        form = {key: request.form.get(key, "").strip() for key in DEFAULTS}
        errors = validate(form)
        if errors:
            for error in errors:
                flash(error, "error")
            return render_template("line.html", settings=form, backends=BACKENDS,
                                   countries=COUNTRIES, status=_status()), 400  # fmt: skip
        db = get_db()
        with write_transaction(db):
            for key, value in form.items():
                set_setting(db, key, value)
        flash("Saved. The line gateway picks the settings up when it restarts.", "ok")
        return redirect(url_for("line.index"))
    return render_template("line.html", settings=line_settings(), backends=BACKENDS,
                           countries=COUNTRIES, status=_status())  # fmt: skip


def _status() -> str:
    return get_setting(get_db(), "line_status") or "not connected"
