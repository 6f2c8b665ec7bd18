"""Web admin accounts, the first-run setup code, and failed logins.

Passwords are kept as scrypt hashes (RFC 7914) with a random salt; checks are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlite_utils import Database

from pbx.store.settings import get_setting
from pbx.store.transaction import write_transaction

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_ADMIN_PASSWORD = 10


class AdminError(ValueError):
    """What the admin asked cannot be done; the message says why."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        computed = hashlib.scrypt(
            password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(computed.hex(), digest)


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def admin_exists(db: Database) -> bool:
    return db.execute("SELECT 1 FROM admins LIMIT 1").fetchone() is not None


def setup_code(db: Database) -> str | None:
    """The one-time code, while no admin exists."""
    return None if admin_exists(db) else get_setting(db, "setup_code")


def web_secret(db: Database) -> str:
    secret = get_setting(db, "web_secret")
    assert secret is not None, "migration 0003 writes it"
    return secret


def create_first_admin(
    db: Database, *, code: str, username: str, password: str, now: float
) -> None:
    """Use the setup code to create the first admin; the code is gone afterwards."""
    username = username.strip()
    if not username or len(username) > 32 or not username.replace("_", "").isalnum():
        raise AdminError("user name: 1 to 32 letters, digits or _")
    if len(password) < MIN_ADMIN_PASSWORD:
        raise AdminError(f"password must be at least {MIN_ADMIN_PASSWORD} characters")
    with write_transaction(db):
        expected = get_setting(db, "setup_code")
        if admin_exists(db) or expected is None:
            raise AdminError("setup is already done: log in instead")
        typed = code.strip().upper().replace(" ", "")
        if not hmac.compare_digest(typed.encode(), expected.encode()):
            raise AdminError("that is not the setup code (run: pbx setup-code)")
        db.execute(
            "INSERT INTO admins (username, password_hash, created_at) VALUES (?, ?, ?)",
            [username, hash_password(password), now],
        )
        db.execute("DELETE FROM settings WHERE key = 'setup_code'")


def verify_admin(db: Database, username: str, password: str) -> bool:
    row = db.execute("SELECT password_hash FROM admins WHERE username = ?", [username]).fetchone()
    # An unknown user costs the same scrypt as a wrong password.
    stored = _DUMMY_HASH if row is None else str(row[0])
    return check_password(password, stored) and row is not None


def record_login_failure(db: Database, address: str, username: str, now: float) -> None:
    with write_transaction(db):
        db.execute(
            "INSERT INTO login_failures (address, username, at) VALUES (?, ?, ?)",
            [address, username[:64], now],
        )
        # Keep a bounded history: a week.
        db.execute("DELETE FROM login_failures WHERE at < ?", [now - 7 * 86400])


def recent_failures(db: Database, address: str, since: float) -> int:
    row = db.execute(
        "SELECT count(*) FROM login_failures WHERE address = ? AND at > ?", [address, since]
    ).fetchone()
    return int(row[0])


def login_failures(db: Database, limit: int = 50) -> list[tuple[str, str, float]]:
    rows = db.execute(
        "SELECT address, username, at FROM login_failures ORDER BY at DESC LIMIT ?", [limit]
    ).fetchall()
    return [(str(a), str(u or ""), float(t)) for a, u, t in rows]
