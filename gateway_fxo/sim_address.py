"""Where a running simulated line's control server listens: a small file beside the database.

The gateway writes it when its control server starts and removes it when it stops, so
``pbx line ring`` finds the line from the database path every ``pbx`` command already takes,
without the user typing a port. A file and not a row in the database: it is one process's
runtime state, and restoring a backup (which replaces the whole database) must neither bring
back an old address nor lose the present one. The database's folder is writable by the
gateway anyway (SQLite keeps its WAL there).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

SUFFIX = ".sim-line"


class AddressFileError(Exception):
    """The address file exists but does not hold an address (one line for the user)."""


def address_file(db: Path) -> Path:
    """The file for the line gateway that uses ``db`` (``data/switchboard.db.sim-line``)."""
    return db.with_name(db.name + SUFFIX)


def write_address(db: Path, host: str, port: int) -> Path:
    """Publish the control address; atomic, so a reader never sees half a file."""
    path = address_file(db)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"host": host, "port": port, "pid": os.getpid()}) + "\n")
    os.replace(temporary, path)
    return path


def read_address(db: Path) -> tuple[str, int] | None:
    """The published (host, port), or None when no gateway published one."""
    path = address_file(db)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise AddressFileError(f"cannot read {path}: {error.strerror}") from None
    try:
        record = json.loads(text)
        host, port = record["host"], record["port"]
    except (ValueError, TypeError, KeyError):
        raise AddressFileError(f"{path} does not hold a control address") from None
    if not isinstance(host, str) or not isinstance(port, int) or not 0 < port < 65536:
        raise AddressFileError(f"{path} does not hold a control address")
    return host, port


def remove_address(db: Path, host: str, port: int) -> None:
    """Withdraw the address on stop, unless another gateway has published its own since."""
    with contextlib.suppress(AddressFileError):
        if read_address(db) == (host, port):
            with contextlib.suppress(FileNotFoundError):
                address_file(db).unlink()
