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
    has_voicemail_pin,
    list_extensions,
    remove_extension,
)
from pbx.store.forwarding import ForwardingChange, update_extension_and_forwarding
from pbx.store.records import ForwardingRecord
from pbx.store.transaction import write_transaction
from webadmin.db import get_db
from webadmin.security import csrf_token, login_required
from webadmin.views.dashboard import status_snapshot

bp = Blueprint("api", __name__, url_prefix="/api")

Json = tuple[dict[str, Any], int] | dict[str, Any]


def _extension(e: Extension) -> dict[str, Any]:
    forwarding = e.forwarding or ForwardingRecord(number=e.number)
    return {
        "number": e.number,
        "name": e.display_name,
        "outbound_allowed": e.outbound_allowed,
        "auth_algorithm": e.last_auth_algorithm,
        "digest_algorithms": ",".join(e.digest_algorithms) if e.digest_algorithms else "default",
        "voicemail_pin_set": has_voicemail_pin(get_db(), e.number),
        "forward_always": forwarding.always,
        "forward_busy": forwarding.busy,
        "forward_no_answer": forwarding.no_answer,
        "forward_after": forwarding.after,
        "forward_unregistered": forwarding.unregistered,
        "dnd": forwarding.dnd,
        "redirect": forwarding.redirect,
    }


class BadField(ValueError):
    """A field of the wrong JSON type: 400 with this message."""


_FORWARDS = ("always", "busy", "no_answer", "unregistered")


def _flag(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise BadField(f"{key}: true or false")
    return value


def _text(body: dict[str, Any], key: str, what: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadField(f"{key}: {what}")
    return value


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of update_extension_and_forwarding that ``body`` asks for; a
    forward given as null or "" is turned off, one left out stays as it is."""
    targets: dict[str, str | None] = {}
    for kind in _FORWARDS:
        key = f"forward_{kind}"
        if key in body:
            targets[kind] = _text(body, key, "a number, a sip: URI, or null for off") or ""
        else:
            targets[kind] = None
    after = body.get("forward_after")
    if after is not None and (isinstance(after, bool) or not isinstance(after, int | str)):
        raise BadField("forward_after: a whole number of seconds")
    name = body.get("name")
    pin = body.get("voicemail_pin")
    return {
        "name": None if name is None else str(name),
        "outbound_allowed": _flag(body, "outbound_allowed"),
        "voicemail_pin": None if pin is None else str(pin),
        "digest_algorithms": _text(
            body, "digest_algorithms", 'a text such as "MD5" or "SHA-256,MD5"'
        ),
        "forwarding": ForwardingChange(
            **targets, after=after, dnd=_flag(body, "dnd"), redirect=_flag(body, "redirect")
        ),
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
    number = str(body.get("number", ""))
    db = get_db()
    try:
        changes = _changes(
            {k: v for k, v in body.items() if k not in ("name", "digest_algorithms")}
        )
        with write_transaction(db):  # created with all its fields, or not at all
            add_extension(
                db, number=number, name=str(body.get("name", "")),
                password=password, now=time.time(), keep_password=True,
                digest_algorithms=None if digest is None else str(digest),
            )  # fmt: skip
            update_extension_and_forwarding(db, number, **changes, now=time.time())
    except (BadField, ExtensionError) as exc:
        return {"error": str(exc)}, 400
    extension = get_extension(db, number)
    assert extension is not None
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
    try:
        changes = _changes(_body())
        update_extension_and_forwarding(get_db(), number, **changes, now=time.time())
    except BadField as exc:
        return {"error": str(exc)}, 400
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
                "forwarded_from": r.forwarded_from,
                "transferred_by": r.transferred_by,
                "transferred_to": r.transferred_to,
            }  # fmt: skip
            for r in call_records(get_db(), limit)
        ]
    }
