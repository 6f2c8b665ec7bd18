"""The phone line's settings: backend, country, outside-line prefix, inbound and outbound routes,
and the call supervision the line gateway reads at start (``gateway_fxo/app.py``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True, kw_only=True)
class Supervision:
    """One per-line supervision setting: a whole number in ``unit`` on the page, stored under
    the gateway's ``key`` times ``scale`` (the gateway reads seconds), or a yes/no checkbox."""

    field: str
    key: str
    label: str
    name: str = ""
    """What an error message calls it."""
    default: int | bool
    unit: str = ""
    low: int = 0
    high: int = 0
    scale: int | float = 1

    @property
    def is_flag(self) -> bool:
        return isinstance(self.default, bool)


# The defaults are gateway_fxo.agent.AgentSettings' (a test holds them equal).
SUPERVISION = (
    Supervision(field="answer_after_rings", key="line_answer_after_rings", default=2,
                label="Answer after", name="answer after", unit="rings", low=1, high=10),
    Supervision(field="ring_gone_seconds", key="line_ring_gone_seconds", default=7,
                label="The caller gave up when no ring came for", name="caller gave up after",
                unit="seconds", low=4, high=15),
    Supervision(field="loop_drop_ms", key="line_loop_drop_seconds", default=300, scale=0.001,
                label="Loop current dropping for this long means hang-up",
                name="loop-current drop", unit="ms", low=100, high=500),
    Supervision(field="polarity_disconnect", key="line_polarity_disconnect", default=False,
                label="Polarity reversal means hang-up (only if the line is provisioned for it)"),
    Supervision(field="tone_disconnect", key="line_tone_disconnect", default=True,
                label="Busy or disconnect tone means hang-up"),
    Supervision(field="dial_tone_disconnect", key="line_dial_tone_disconnect", default=True,
                label="Dial tone after the far end clears means hang-up"),
    Supervision(field="silence_timeout_seconds", key="line_silence_timeout_seconds", default=300,
                label="Hang up after silence of", name="silence timeout", unit="seconds",
                low=10, high=3600),
    Supervision(field="max_call_minutes", key="line_max_call_seconds", default=240, scale=60,
                label="Maximum call length", name="maximum call length", unit="minutes",
                low=1, high=1440),
)  # fmt: skip
WHOLE_NUMBER_RE = re.compile(r"[0-9]{1,6}")


def line_settings() -> dict[str, str]:
    db = get_db()
    return {key: get_setting(db, key) or default for key, default in DEFAULTS.items()}


def supervision_settings() -> dict[str, str]:
    """What the page shows: each setting in its page unit, the default where unset or unusable
    (as the gateway does); checkboxes as "yes"/"no"."""
    db = get_db()
    shown = {}
    for s in SUPERVISION:
        text = get_setting(db, s.key)
        if s.is_flag:
            shown[s.field] = text if text in ("yes", "no") else ("yes" if s.default else "no")
            continue
        try:
            value = round(float(text) / s.scale) if text is not None else int(s.default)
        except (ValueError, OverflowError):
            value = int(s.default)
        shown[s.field] = str(value)
    return shown


def validate_supervision(form: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(the gateway's keys and values to store, errors); an unticked checkbox is "no"."""
    stored, errors = {}, []
    for s in SUPERVISION:
        text = form[s.field]
        if s.is_flag:
            stored[s.key] = text
            continue
        value = int(text) if WHOLE_NUMBER_RE.fullmatch(text) else None
        if value is None or not s.low <= value <= s.high:
            errors.append(f"{s.name}: a whole number of {s.unit} from {s.low} to {s.high}")
            continue
        stored[s.key] = f"{value * s.scale:g}"
    return stored, errors


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
        supervision = {
            s.field: ("yes" if s.field in request.form else "no")
            if s.is_flag
            else request.form.get(s.field, "").strip()
            for s in SUPERVISION
        }
        stored, supervision_errors = validate_supervision(supervision)
        errors = validate(form) + supervision_errors
        if errors:
            for error in errors:
                flash(error, "error")
            return _page(form, supervision), 400
        db = get_db()
        with write_transaction(db):
            for key, value in (form | stored).items():
                set_setting(db, key, value)
        flash("Saved. The line gateway picks the settings up when it restarts.", "ok")
        return redirect(url_for("line.index"))
    return _page(line_settings(), supervision_settings())


def _page(settings: dict[str, str], supervision: dict[str, str]) -> str:
    return render_template("line.html", settings=settings, supervision=supervision,
                           fields=SUPERVISION, backends=BACKENDS, countries=COUNTRIES,
                           status=_status())  # fmt: skip


def _status() -> str:
    return get_setting(get_db(), "line_status") or "not connected"
