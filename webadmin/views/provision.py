"""Phone provisioning: the panel's QR code and desk phones, and the files phones fetch.

Phones cannot log in, so the files are served without a session, but only to addresses on
the office's own networks (private, loopback, link-local), only for MACs the admin assigned,
and Linphone's file only under a secret per-extension token. A phone's file carries its SIP
password: plain HTTP on the LAN is the trade-off every desk-phone vendor's provisioning makes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    request,
    url_for,
)
from werkzeug.wrappers import Response as WerkzeugResponse

from pbx.store.admins import web_secret
from pbx.store.desk_phones import assign_phone, phone_by_mac, remove_phone
from pbx.store.extensions import get_extension, provisioning_password
from pbx.store.settings import sip_realm
from webadmin.db import get_db
from webadmin.provisioning import (
    ConfigFile,
    SipAccount,
    SipServer,
    grandstream_config,
    linphone_config,
    match_config_filename,
    normalize_mac,
    yealink_config,
)
from webadmin.security import login_required

bp = Blueprint("provision", __name__)


def server() -> SipServer:
    return SipServer(
        host=current_app.config["SIP_HOST"],
        port=int(current_app.config["SIP_PORT"]) or 5060,
        realm=sip_realm(get_db()),
    )


def account(number: str) -> SipAccount | None:
    db = get_db()
    extension = get_extension(db, number)
    password = provisioning_password(db, number)
    if extension is None or password is None:
        return None
    return SipAccount(number=number, display_name=extension.display_name, password=password)


def linphone_token(number: str) -> str:
    key = bytes.fromhex(web_secret(get_db()))
    return hmac.new(key, f"linphone:{number}".encode(), hashlib.sha256).hexdigest()[:32]


def linphone_url(number: str) -> str:
    return url_for(
        "provision.linphone", number=number, token=linphone_token(number), _external=True
    )


def _from_office() -> None:
    try:
        source = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        abort(403)
    if not (source.is_private or source.is_loopback or source.is_link_local):
        abort(403, description="Provisioning files are served to the office network only.")


def _serve(config: ConfigFile) -> Response:
    return Response(config.text, mimetype=config.media_type)


@bp.route("/provision/<filename>")
def desk_phone_file(filename: str) -> Response:
    _from_office()
    match = match_config_filename(filename)
    if match is None:
        abort(404)
    vendor, mac = match
    assigned = phone_by_mac(get_db(), mac)
    if assigned is None or assigned[1] != vendor:
        abort(404)
    sip = account(assigned[0])
    if sip is None:
        abort(404, description="Make a new password for the extension first.")
    make = yealink_config if vendor == "yealink" else grandstream_config
    return _serve(make(mac, sip, server()))


@bp.route("/provision/linphone/<number>/<token>.xml")
def linphone(number: str, token: str) -> Response:
    _from_office()
    if not hmac.compare_digest(token, linphone_token(number)):
        abort(404)
    sip = account(number)
    if sip is None:
        abort(404)
    return _serve(linphone_config(sip, server()))


@bp.route("/extensions/<number>/phones", methods=["POST"])
@login_required
def add_desk_phone(number: str) -> WerkzeugResponse:
    try:
        mac = normalize_mac(request.form.get("mac", ""))
        assign_phone(get_db(), mac=mac, extension=number,
                     vendor=request.form.get("vendor", ""), now=time.time())  # fmt: skip
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Phone {mac} will get extension {number} when it asks for its file.", "ok")
    return redirect(url_for("extensions.show", number=number))


@bp.route("/extensions/<number>/phones/<mac>/delete", methods=["POST"])
@login_required
def remove_desk_phone(number: str, mac: str) -> WerkzeugResponse:
    remove_phone(get_db(), mac)
    flash(f"Phone {mac} removed.", "ok")
    return redirect(url_for("extensions.show", number=number))
