"""Feature codes: what phones dial to change their own forwarding and do not disturb.

Stored as settings (``feature_forward_on``...), read by the switch on each call, so a change
here is live at once; the defaults are the usual ``*72``, ``*73``, ``*78``, ``*79``.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from pbx.store.feature_codes import LABELS, FeatureCodes, feature_codes, set_feature_codes
from webadmin.db import get_db
from webadmin.security import login_required

bp = Blueprint("features", __name__, url_prefix="/features")


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> str | Response | tuple[str, int]:
    if request.method == "POST":
        typed = {name: request.form.get(name, "").strip() for name in LABELS}
        try:
            set_feature_codes(get_db(), FeatureCodes(**typed))
        except ValueError as exc:
            for error in str(exc).split("; "):
                flash(error, "error")
            return _page(typed), 400
        flash("Saved. Phones can dial the new codes now.", "ok")
        return redirect(url_for("features.index"))
    return _page(asdict(feature_codes(get_db())))


def _page(codes: dict[str, str]) -> str:
    return render_template(
        "features.html", codes=codes, labels=LABELS, defaults=asdict(FeatureCodes())
    )
