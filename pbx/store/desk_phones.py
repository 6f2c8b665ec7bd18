"""Desk phones assigned to extensions by MAC address, for auto-provisioning."""

from __future__ import annotations

import sqlite3

from sqlite_utils import Database

from pbx.store.transaction import write_transaction

VENDORS = ("yealink", "grandstream")


def assign_phone(db: Database, *, mac: str, extension: str, vendor: str, now: float) -> None:
    """``mac`` is 12 lower-case hex digits; a MAC moves to the new extension if it had one."""
    if vendor not in VENDORS:
        raise ValueError(f"phone make: one of {', '.join(VENDORS)}")
    with write_transaction(db):
        try:
            db.execute(
                "INSERT INTO desk_phones (mac, extension, vendor, created_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (mac) DO UPDATE SET extension = excluded.extension, "
                "vendor = excluded.vendor",
                [mac, extension, vendor, now],
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"no extension {extension}") from None


def phones_of(db: Database, extension: str) -> list[tuple[str, str]]:
    rows = db.execute(
        "SELECT mac, vendor FROM desk_phones WHERE extension = ? ORDER BY mac", [extension]
    ).fetchall()
    return [(str(mac), str(vendor)) for mac, vendor in rows]


def phone_by_mac(db: Database, mac: str) -> tuple[str, str] | None:
    """(extension, vendor) for a MAC, or None."""
    row = db.execute("SELECT extension, vendor FROM desk_phones WHERE mac = ?", [mac]).fetchone()
    return None if row is None else (str(row[0]), str(row[1]))


def remove_phone(db: Database, mac: str) -> bool:
    with write_transaction(db):
        return db.execute("DELETE FROM desk_phones WHERE mac = ?", [mac]).rowcount > 0
