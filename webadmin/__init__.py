"""The web admin: a Flask application over the shared SQLite file.

``create_app(config)`` is the one composition root (DESIGN: one per process); each request
gets its own database handle (``webadmin.db``). The switch sees what the admin changes: it
reads extensions on every authentication and reloads bans every few seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from pbx.store.admins import web_secret
from pbx.store.database import open_database


def create_app(config: dict[str, Any]) -> Flask:
    """``config`` needs DB (the database path); SIP_HOST and SIP_PORT tell phones where to
    register."""
    app = Flask(__name__)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=64 * 1024 * 1024,  # a backup upload
        SIP_HOST="127.0.0.1",
        SIP_PORT=5060,
        LOGIN_FAILURE_LIMIT=10,
        LOGIN_FAILURE_WINDOW=300.0,
    )
    app.config.update(config)
    db_path = Path(app.config["DB"])
    migrated = open_database(db_path)  # runs the migrations once, before the first request
    app.secret_key = bytes.fromhex(web_secret(migrated))
    migrated.close()

    from webadmin import db, security
    from webadmin.views import (
        api,
        auth,
        backup,
        calls,
        dashboard,
        extensions,
        features,
        line,
        phones,
        provision,
    )
    from webadmin.views import security as security_page

    db.init_app(app)
    security.init_app(app)
    _error_pages(app)
    for blueprint in (
        auth.bp, dashboard.bp, extensions.bp, phones.bp, calls.bp, security_page.bp,
        backup.bp, line.bp, api.bp, provision.bp, features.bp,
    ):  # fmt: skip
        app.register_blueprint(blueprint)
    return app


def _error_pages(app: Flask) -> None:
    """Every error is a page (or JSON under /api/) that says what happened: never a bare 500."""
    from flask import render_template, request
    from werkzeug.exceptions import HTTPException, InternalServerError

    titles = {400: "That did not work", 404: "Not found", 405: "Not allowed here",
              413: "Too large", 429: "Slow down"}  # fmt: skip

    def handle(error: Exception) -> tuple[Any, int]:
        if not isinstance(error, HTTPException):
            app.logger.exception("event=web_internal_error path=%s", request.path)
            error = InternalServerError()
        code = error.code or 500
        message = error.description or ""
        if request.path.startswith("/api/"):
            return {"error": message}, code
        title = titles.get(code, "Something went wrong")
        return render_template("error.html", code=code, title=title, message=message), code

    app.register_error_handler(Exception, handle)
