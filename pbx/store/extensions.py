"""Extensions: numbers people dial and the digest secrets their phones prove.

Only HA1 values are stored (RFC 7616 §3.4.2 allows a server to keep H(user:realm:pw)),
one per algorithm we offer, so a stolen database file does not hand out passwords.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass

from sqlite_utils import Database

from pbx.config import parse_digest_algorithms
from pbx.sip.auth import DigestAlgorithm, compute_ha1
from pbx.store.records import ForwardingRecord
from pbx.store.settings import sip_realm
from pbx.store.transaction import write_transaction

NUMBER_RE = re.compile(r"[0-9]{2,8}")
MIN_PASSWORD_LENGTH = 12
GENERATED_PASSWORD_LENGTH = 20
MAX_NAME_LENGTH = 64
_PASSWORD_ALPHABET = string.ascii_letters + string.digits


class ExtensionError(ValueError):
    """A request the admin made that cannot be done; the message says why, in one line."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Extension:
    number: str
    display_name: str
    outbound_allowed: bool
    last_auth_algorithm: str | None
    created_at: float
    updated_at: float
    digest_algorithms: tuple[str, ...] | None = None
    """The digest offer chosen for this extension's phones; None: the box's default."""
    forwarding: ForwardingRecord | None = None
    """Forwarding, do not disturb and redirect (``pbx/store/forwarding.py`` changes them)."""


@dataclass(frozen=True, slots=True)
class StoredSecrets:
    """What the registrar needs to verify a phone: HA1 per algorithm base."""

    ha1_md5: str
    ha1_sha256: str
    algorithms: tuple[DigestAlgorithm, ...] | None = None
    """The extension's own digest offer, most preferred first; None: the box's default."""

    def ha1_for(self, algorithm: DigestAlgorithm) -> str:
        return self.ha1_sha256 if algorithm.base is DigestAlgorithm.SHA_256 else self.ha1_md5


DIGEST_CHOICES = {
    "MD5": "MD5 (every phone)",
    "SHA-256,MD5": "SHA-256, then MD5",
    "SHA-256": "SHA-256 only",
}
"""The digest offers the web admin lists, with what each means for a phone."""


def check_digest_algorithms(text: str) -> tuple[str, ...] | None:
    """``MD5``, ``SHA-256``, ``SHA-256,MD5``... -> the offer (the grammar of the box's own
    digest_algorithms setting); ``default`` or empty -> None."""
    value = text.strip()
    if value.lower() in ("", "default"):
        return None
    try:
        return parse_digest_algorithms(value)
    except ValueError as exc:
        raise ExtensionError(
            "digest algorithms must be MD5, SHA-256, SHA-256,MD5 or default, "
            f"not {text[:40]!r} ({exc})"
        ) from None


def _offer(text: object) -> tuple[str, ...] | None:
    return None if text is None else tuple(str(text).split(","))


def generate_password() -> str:
    """20 letters and digits (~119 bits): typed once into a phone, never guessed."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(GENERATED_PASSWORD_LENGTH))


def check_number(number: str) -> str:
    if not NUMBER_RE.fullmatch(number):
        raise ExtensionError(f"extension number must be 2 to 8 digits, not {number!r}")
    return number


def check_name(name: str) -> str:
    if len(name) > MAX_NAME_LENGTH:
        raise ExtensionError(f"name is longer than {MAX_NAME_LENGTH} characters")
    if any(ch in name for ch in '"\\\r\n\0') or not name.isprintable():
        raise ExtensionError("name may not contain quotes, backslashes or control characters")
    return name.strip()


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ExtensionError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    if not password.isprintable() or password != password.strip():
        raise ExtensionError("password may not contain control characters or edge spaces")
    return password


def _ha1s(number: str, realm: str, password: str) -> tuple[str, str]:
    return (
        compute_ha1(username=number, realm=realm, password=password, algorithm=DigestAlgorithm.MD5),
        compute_ha1(
            username=number, realm=realm, password=password, algorithm=DigestAlgorithm.SHA_256
        ),
    )


def add_extension(
    db: Database,
    *,
    number: str,
    name: str,
    password: str,
    now: float,
    keep_password: bool = False,
    digest_algorithms: str | None = None,
) -> Extension:
    """Create an extension; ExtensionError (and no change) on bad input or a duplicate."""
    check_number(number)
    name = check_name(name)
    check_password(password)
    offer = None if digest_algorithms is None else check_digest_algorithms(digest_algorithms)
    with write_transaction(db):
        if get_extension(db, number) is not None:
            raise ExtensionError(f"extension {number} already exists")
        md5, sha256 = _ha1s(number, sip_realm(db), password)
        db.execute(
            "INSERT INTO extensions (number, display_name, ha1_md5, ha1_sha256, "
            "provisioning_password, outbound_allowed, created_at, updated_at, digest_algorithms) "
            "VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)",
            [number, name, md5, sha256, password if keep_password else None, now, now,
             None if offer is None else ",".join(offer)],
        )  # fmt: skip
    extension = get_extension(db, number)
    assert extension is not None
    return extension


def add_extensions(
    db: Database, rows: list[tuple[str, str, str]], *, now: float, first_row: int = 1
) -> int:
    """Create many extensions in one transaction: all of them, or none on any error."""
    seen: set[str] = set()
    for line, (number, name, password) in enumerate(rows, start=first_row):
        try:
            check_number(number)
            check_name(name)
            check_password(password)
        except ExtensionError as exc:
            raise ExtensionError(f"row {line}: {exc}") from None
        if number in seen:
            raise ExtensionError(f"row {line}: extension {number} appears twice")
        seen.add(number)
    with write_transaction(db):
        for line, (number, name, password) in enumerate(rows, start=first_row):
            try:
                add_extension(db, number=number, name=name, password=password, now=now)
            except ExtensionError as exc:
                raise ExtensionError(f"row {line}: {exc}") from None
    return len(rows)


def set_password(db: Database, number: str, password: str, *, now: float) -> None:
    check_password(password)
    with write_transaction(db):
        if get_extension(db, number) is None:
            raise ExtensionError(f"no extension {number}")
        md5, sha256 = _ha1s(number, sip_realm(db), password)
        db.execute(
            "UPDATE extensions SET ha1_md5 = ?, ha1_sha256 = ?, provisioning_password = NULL, "
            "updated_at = ? WHERE number = ?",
            [md5, sha256, now, number],
        )


def remove_extension(db: Database, number: str) -> None:
    with write_transaction(db):
        if get_extension(db, number) is None:
            raise ExtensionError(f"no extension {number}")
        db.execute("DELETE FROM registrations WHERE aor = ?", [number])
        db.execute("DELETE FROM desk_phones WHERE extension = ?", [number])
        # Forwards to it would ring nobody: they are turned off.
        for column in ("forward_always", "forward_busy", "forward_no_answer",
                       "forward_unregistered"):  # fmt: skip
            db.execute(f"UPDATE extensions SET {column} = NULL WHERE {column} = ?", [number])
        db.execute("DELETE FROM extensions WHERE number = ?", [number])


_COLUMNS = (
    "number, display_name, outbound_allowed, last_auth_algorithm, created_at, updated_at, "
    "digest_algorithms, forward_always, forward_busy, forward_no_answer, forward_after, "
    "forward_unregistered, dnd, redirect"
)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _extension(row: tuple[object, ...]) -> Extension:
    number, name, outbound, algorithm, created, updated, offer = row[:7]
    always, busy, no_answer, after, unregistered, dnd, redirect = row[7:]
    forwarding = ForwardingRecord(
        number=str(number), always=_text(always), busy=_text(busy), no_answer=_text(no_answer),
        after=int(after),  # type: ignore[call-overload]
        unregistered=_text(unregistered), dnd=bool(dnd), redirect=bool(redirect),
    )  # fmt: skip
    return Extension(
        forwarding=forwarding,
        digest_algorithms=_offer(offer),
        number=str(number),
        display_name=str(name or ""),
        outbound_allowed=bool(outbound),
        last_auth_algorithm=None if algorithm is None else str(algorithm),
        created_at=float(created or 0.0),  # type: ignore[arg-type]
        updated_at=float(updated or 0.0),  # type: ignore[arg-type]
    )


def get_extension(db: Database, number: str) -> Extension | None:
    """An extension phones can dial (the line gateway's account is not one)."""
    row = db.execute(
        f"SELECT {_COLUMNS} FROM extensions WHERE number = ? AND kind = 'phone'", [number]
    ).fetchone()
    return None if row is None else _extension(row)


LINE_ACCOUNT = "line1"


def ensure_line_account(db: Database, name: str = LINE_ACCOUNT, *, now: float) -> str:
    """The line gateway's SIP account (made on first use) and its password, which the gateway
    reads from this file on the same box."""
    with write_transaction(db):
        row = db.execute(
            "SELECT provisioning_password FROM extensions WHERE number = ? AND kind = 'line'",
            [name],
        ).fetchone()
        if row is not None and row[0]:
            return str(row[0])
        password = generate_password()
        md5, sha256 = _ha1s(name, sip_realm(db), password)
        db.execute(
            "INSERT INTO extensions (number, display_name, ha1_md5, ha1_sha256, "
            "provisioning_password, outbound_allowed, created_at, updated_at, kind) "
            "VALUES (?, 'Phone line', ?, ?, ?, 0, ?, ?, 'line') ON CONFLICT (number) DO UPDATE SET "
            "ha1_md5 = excluded.ha1_md5, ha1_sha256 = excluded.ha1_sha256, "
            "provisioning_password = excluded.provisioning_password",
            [name, md5, sha256, password, now, now],
        )
        return password


def is_line_account(db: Database, name: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM extensions WHERE number = ? AND kind = 'line'", [name]
    ).fetchone()
    return row is not None


def list_extensions(db: Database) -> list[Extension]:
    """The office's extensions (not the line gateway's account)."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM extensions WHERE kind = 'phone' ORDER BY length(number), number"
    ).fetchall()
    return [_extension(row) for row in rows]


def stored_secrets(db: Database, number: str) -> StoredSecrets | None:
    """The HA1 pair and digest offer of ``number`` (the registrar's one read per request)."""
    row = db.execute(
        "SELECT ha1_md5, ha1_sha256, digest_algorithms FROM extensions WHERE number = ?", [number]
    ).fetchone()
    if row is None:
        return None
    offer = _offer(row[2])
    algorithms = None if offer is None else tuple(DigestAlgorithm(name) for name in offer)
    return StoredSecrets(str(row[0]), str(row[1]), algorithms)


def record_auth_algorithm(db: Database, number: str, algorithm: str) -> None:
    db.execute(
        "UPDATE extensions SET last_auth_algorithm = ? WHERE number = ? "
        "AND last_auth_algorithm IS NOT ?",
        [algorithm, number, algorithm],
    )


PIN_LENGTHS = range(4, 9)


def update_extension(
    db: Database,
    number: str,
    *,
    name: str | None = None,
    outbound_allowed: bool | None = None,
    voicemail_pin: str | None = None,
    digest_algorithms: str | None = None,
    now: float,
) -> None:
    """Change what the admin may change; ExtensionError (and no change) on bad input.

    ``digest_algorithms``: the text check_digest_algorithms takes (``default`` resets)."""
    offer = None if digest_algorithms is None else check_digest_algorithms(digest_algorithms)
    if name is not None:
        name = check_name(name)
    if voicemail_pin and (not voicemail_pin.isdigit() or len(voicemail_pin) not in PIN_LENGTHS):
        raise ExtensionError("voicemail PIN must be 4 to 8 digits")
    with write_transaction(db):
        if get_extension(db, number) is None:
            raise ExtensionError(f"no extension {number}")
        if name is not None:
            db.execute("UPDATE extensions SET display_name = ? WHERE number = ?", [name, number])
        if outbound_allowed is not None:
            db.execute(
                "UPDATE extensions SET outbound_allowed = ? WHERE number = ?",
                [int(outbound_allowed), number],
            )
        if voicemail_pin is not None:
            from pbx.store.admins import hash_password

            stored = hash_password(voicemail_pin) if voicemail_pin else None
            db.execute("UPDATE extensions SET voicemail_pin = ? WHERE number = ?", [stored, number])
        if digest_algorithms is not None:
            db.execute(
                "UPDATE extensions SET digest_algorithms = ? WHERE number = ?",
                [None if offer is None else ",".join(offer), number],
            )
        db.execute("UPDATE extensions SET updated_at = ? WHERE number = ?", [now, number])


def set_password_kept(db: Database, number: str, password: str, *, now: float) -> None:
    """A new password that is also kept for provisioning (the admin asked to see it)."""
    set_password(db, number, password, now=now)
    db.execute(
        "UPDATE extensions SET provisioning_password = ? WHERE number = ?", [password, number]
    )


def provisioning_password(db: Database, number: str) -> str | None:
    row = db.execute(
        "SELECT provisioning_password FROM extensions WHERE number = ?", [number]
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def has_voicemail_pin(db: Database, number: str) -> bool:
    row = db.execute("SELECT voicemail_pin FROM extensions WHERE number = ?", [number]).fetchone()
    return row is not None and row[0] is not None
