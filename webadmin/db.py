"""One database handle per request, closed when the request ends (Flask's tutorial pattern)."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlite_utils import Database

from pbx.store.database import open_database


def get_db() -> Database:
    if "db" not in g:
        g.db = open_database(current_app.config["DB"], migrate=False)
    db: Database = g.db
    return db


def close_db(_error: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_db)
