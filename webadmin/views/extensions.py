"""Extensions: list, add (password shown once), edit, delete, password reset and provisioning."""

from __future__ import annotations

import time

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.wrappers import Response

from pbx.store.desk_phones import VENDORS, phones_of
from pbx.store.extensions import (
    DIGEST_CHOICES,
    Extension,
    ExtensionError,
    add_extension,
    generate_password,
    get_extension,
    has_voicemail_pin,
    list_extensions,
    provisioning_password,
    remove_extension,
    set_password_kept,
)
from pbx.store.feature_codes import feature_codes
from pbx.store.forwarding import ForwardingChange, update_extension_and_forwarding
from pbx.store.records import ForwardingRecord
from pbx.store.registrations import load_bindings
from webadmin.db import get_db
from webadmin.provisioning import qr_payload, qr_svg, settings_rows
from webadmin.security import login_required
from webadmin.views import provision

bp = Blueprint("extensions", __name__, url_prefix="/extensions")


@bp.route("/")
@login_required
def index() -> str:
    db = get_db()
    registered: dict[str, int] = {}
    for binding in load_bindings(db, now=time.time()):
        registered[binding.aor] = registered.get(binding.aor, 0) + 1
    return render_template(
        "extensions.html", extensions=list_extensions(db), registered=registered, form={}
    )


@bp.route("/", methods=["POST"])
@login_required
def add() -> str | Response | tuple[str, int]:
    db = get_db()
    number = request.form.get("number", "").strip()
    name = request.form.get("name", "").strip()
    password = request.form.get("password", "") or generate_password()
    try:
        # Kept so the provisioning panel can show it: the admin created it here.
        add_extension(db, number=number, name=name, password=password, now=time.time(),
                      keep_password=True)  # fmt: skip
    except ExtensionError as exc:
        flash(str(exc), "error")
        registered: dict[str, int] = {}
        return render_template(
            "extensions.html", extensions=list_extensions(db), registered=registered,
            form={"number": number, "name": name},
        ), 400  # fmt: skip
    flash(f"Extension {number} created.", "ok")
    return redirect(url_for("extensions.show", number=number, created=1))


@bp.route("/<number>")
@login_required
def show(number: str) -> str:
    return _page(number)


def _page(number: str, typed: dict[str, str] | None = None) -> str:
    """The extension's page; ``typed``: what the admin submitted, shown again after an error."""
    db = get_db()
    extension = get_extension(db, number)
    if extension is None:
        abort(404, description=f"There is no extension {number}.")
    reveal = request.args.get("reveal") == "1" or request.args.get("created") == "1"
    sip = provision.account(number)
    qr = None
    rows: list[tuple[str, str]] = []
    if sip is not None and reveal:  # the QR code leads to the password: shown when it is
        sip_server = provision.server()
        rows = settings_rows(sip, sip_server)
        qr = qr_svg(qr_payload(sip, sip_server, provisioning_url=provision.linphone_url(number)))
    return render_template(
        "extension.html",
        desk_phones=phones_of(db, number),
        qr=Markup(qr) if qr else None,
        settings=rows,
        vendors=VENDORS,
        extension=extension,
        form=_shown(extension) | (typed or {}),
        password=provisioning_password(db, number) if reveal else None,
        has_password=provisioning_password(db, number) is not None,
        has_pin=has_voicemail_pin(db, number),
        digest_choices=DIGEST_CHOICES,
        sip_host=current_app.config["SIP_HOST"],
        sip_port=current_app.config["SIP_PORT"],
        created=request.args.get("created") == "1",
        codes=feature_codes(db),
    )


_FORWARD_FIELDS = ("forward_always", "forward_busy", "forward_no_answer", "forward_unregistered")
_TYPED = ("name", "outbound", "digest", "forward_after", "dnd", "redirect", *_FORWARD_FIELDS)


def _shown(extension: Extension) -> dict[str, str]:
    """The settings form's values as stored (the same keys the form posts)."""
    f = extension.forwarding or ForwardingRecord(number=extension.number)
    return {
        "name": extension.display_name,
        "outbound": "on" if extension.outbound_allowed else "",
        "digest": ",".join(extension.digest_algorithms or ()) or "default",
        "forward_always": f.always or "", "forward_busy": f.busy or "",
        "forward_no_answer": f.no_answer or "", "forward_after": str(f.after),
        "forward_unregistered": f.unregistered or "",
        "dnd": "on" if f.dnd else "", "redirect": "on" if f.redirect else "",
    }  # fmt: skip


def _forwarding_change() -> ForwardingChange | None:
    """The forwarding section's values (an empty target is off); None when the form had no
    such section (a script posting only the name changes nothing else)."""
    if request.form.get("forwarding_form") != "1":
        return None
    form = {key: request.form.get(key, "") for key in _TYPED}
    return ForwardingChange(
        always=form["forward_always"], busy=form["forward_busy"],
        no_answer=form["forward_no_answer"], unregistered=form["forward_unregistered"],
        after=form["forward_after"] or None, dnd=form["dnd"] == "on",
        redirect=form["redirect"] == "on",
    )  # fmt: skip


@bp.route("/<number>/edit", methods=["POST"])
@login_required
def edit(number: str) -> Response | tuple[str, int]:
    db = get_db()
    # Shown again after an error: what was typed, over what is stored (unticked boxes are off).
    typed = {key: value.strip() for key, value in request.form.items() if key in _TYPED}
    typed["outbound"] = typed.get("outbound", "")
    if request.form.get("forwarding_form") == "1":
        typed |= {box: typed.get(box, "") for box in ("dnd", "redirect")}
    try:
        update_extension_and_forwarding(
            db,
            number,
            name=request.form.get("name", ""),
            outbound_allowed=request.form.get("outbound") == "on",
            voicemail_pin=request.form.get("pin") or None,
            digest_algorithms=request.form.get("digest"),
            forwarding=_forwarding_change(),
            now=time.time(),
        )
    except ExtensionError as exc:
        if get_extension(db, number) is None:
            abort(404, description=f"There is no extension {number}.")
        flash(str(exc), "error")
        return _page(number, typed), 400
    flash("Saved.", "ok")
    return redirect(url_for("extensions.show", number=number))


@bp.route("/<number>/password", methods=["POST"])
@login_required
def reset_password(number: str) -> Response:
    db = get_db()
    try:
        set_password_kept(db, number, generate_password(), now=time.time())
    except ExtensionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("extensions.index"))
    flash("A new password was made: the phone must be set up with it again.", "ok")
    return redirect(url_for("extensions.show", number=number, reveal=1))


@bp.route("/<number>/delete", methods=["POST"])
@login_required
def delete(number: str) -> Response:
    try:
        remove_extension(get_db(), number)
    except ExtensionError as exc:
        flash(str(exc), "error")
        return redirect(url_for("extensions.index"))
    flash(f"Extension {number} deleted.", "ok")
    return redirect(url_for("extensions.index"))
