"""The JSON API: the same data and the same validation as the pages (see README, "Web admin API").

Authentication is the admin's session (log in with the form or POST /api/login); requests that
change something carry the session's CSRF token in an ``X-CSRF-Token`` header (GET /api/csrf).
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, request, session

from pbx.store.admins import recent_failures, record_login_failure, verify_admin
from pbx.store.calls import call_records
from pbx.store.extensions import (
    Extension,
    ExtensionError,
    add_extension,
    generate_password,
    get_extension,
    list_extensions,
    remove_extension,
    update_extension,
)
from webadmin.db import get_db
from webadmin.security import csrf_token, login_required
from webadmin.views.dashboard import status_snapshot

bp = Blueprint("api", __name__, url_prefix="/api")

Json = tuple[dict[str, Any], int] | dict[str, Any]


def _extension(e: Extension) -> dict[str, Any]:
    return {
        "number": e.number,
        "name": e.display_name,
        "outbound_allowed": e.outbound_allowed,
        "auth_algorithm": e.last_auth_algorithm,
        "digest_algorithms": ",".join(e.digest_algorithms) if e.digest_algorithms else "default",
    }


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else {}


@bp.get("/csrf")
def csrf() -> Json:
    return {"csrf_token": csrf_token()}


@bp.post("/login")
def login() -> Json:
    from flask import current_app

    db = get_db()
    source = request.remote_addr or "unknown"
    window = float(current_app.config["LOGIN_FAILURE_WINDOW"])
    if recent_failures(db, source, time.time() - window) >= int(
        current_app.config["LOGIN_FAILURE_LIMIT"]
    ):
        return {"error": "too many failed logins: wait a few minutes"}, 429
    body = _body()
    username = str(body.get("username", ""))
    if verify_admin(db, username, str(body.get("password", ""))):
        session.clear()
        session["admin"] = username
        return {"ok": True, "csrf_token": csrf_token()}
    record_login_failure(db, source, username, time.time())
    return {"error": "wrong user name or password"}, 401


@bp.get("/status")
@login_required
def status() -> Json:
    return status_snapshot()


@bp.get("/extensions")
@login_required
def extensions() -> Json:
    return {"extensions": [_extension(e) for e in list_extensions(get_db())]}


@bp.post("/extensions")
@login_required
def create() -> Json:
    body = _body()
    password = str(body.get("password") or generate_password())
    digest = body.get("digest_algorithms")
    try:
        extension = add_extension(
            get_db(), number=str(body.get("number", "")), name=str(body.get("name", "")),
            password=password, now=time.time(), keep_password=True,
            digest_algorithms=None if digest is None else str(digest),
        )  # fmt: skip
    except ExtensionError as exc:
        return {"error": str(exc)}, 400
    return {**_extension(extension), "password": password}, 201


@bp.get("/extensions/<number>")
@login_required
def show(number: str) -> Json:
    return _extension_or_404(number)


def _extension_or_404(number: str) -> Json:
    extension = get_extension(get_db(), number)
    if extension is None:
        return {"error": f"no extension {number}"}, 404
    return _extension(extension)


@bp.patch("/extensions/<number>")
@login_required
def change(number: str) -> Json:
    body = _body()
    outbound = body.get("outbound_allowed")
    if outbound is not None and not isinstance(outbound, bool):
        return {"error": "outbound_allowed: true or false"}, 400
    digest = body.get("digest_algorithms")
    if digest is not None and not isinstance(digest, str):
        return {"error": 'digest_algorithms: a text such as "MD5" or "SHA-256,MD5"'}, 400
    try:
        update_extension(
            get_db(), number,
            name=None if body.get("name") is None else str(body["name"]),
            outbound_allowed=outbound,
            voicemail_pin=None if body.get("voicemail_pin") is None else str(body["voicemail_pin"]),
            digest_algorithms=digest,
            now=time.time(),
        )  # fmt: skip
    except ExtensionError as exc:
        status = 404 if str(exc).startswith("no extension") else 400
        return {"error": str(exc)}, status
    return _extension_or_404(number)


@bp.delete("/extensions/<number>")
@login_required
def delete(number: str) -> Json:
    try:
        remove_extension(get_db(), number)
    except ExtensionError as exc:
        return {"error": str(exc)}, 404
    return {"ok": True}


@bp.get("/calls")
@login_required
def calls() -> Json:
    try:
        limit = max(1, min(1000, int(request.args.get("limit", "100"))))
    except ValueError:
        return {"error": "limit: a number from 1 to 1000"}, 400
    return {
        "calls": [
            {
                "call_id": r.call_id,
                "caller": r.caller,
                "callee": r.callee,
                "started_at": r.started_at,
                "answered_at": r.answered_at,
                "ended_at": r.ended_at,
                "end_reason": r.end_reason,
                "status": r.status,
            }  # fmt: skip
            for r in call_records(get_db(), limit)
        ]
    }
