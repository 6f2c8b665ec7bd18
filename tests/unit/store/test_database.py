from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pbx.store.database import open_database
from pbx.store.migrations import MIGRATIONS, apply_migrations
from pbx.store.settings import get_settings, nonce_secret, set_setting, sip_realm


def test_a_new_file_gets_the_schema_and_pragmas(tmp_path: Path) -> None:
    db = open_database(tmp_path / "sub" / "pbx.db")
    assert {"extensions", "registrations", "source_bans", "settings"} <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert sip_realm(db) == "switchboard"
    assert len(nonce_secret(db)) == 32


def test_migrations_run_once_and_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "pbx.db"
    first = open_database(path)
    secret = nonce_secret(first)
    again = open_database(path)
    assert apply_migrations(again) == []
    names = [row[0] for row in again.execute("SELECT name FROM _migrations ORDER BY name")]
    assert names == [name for name, _ in MIGRATIONS]
    assert nonce_secret(again) == secret  # nonces stay valid across restarts


def test_a_failing_migration_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "pbx.db"
    open_database(path)

    def broken(db):  # type: ignore[no-untyped-def]
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("power cut")

    monkeypatch.setattr("pbx.store.migrations.MIGRATIONS", [*MIGRATIONS, ("9999_broken", broken)])
    with pytest.raises(RuntimeError):
        open_database(path)
    db = open_database(path, migrate=False)
    assert "half_done" not in db.table_names()
    assert (
        db.execute("SELECT count(*) FROM _migrations WHERE name = '9999_broken'").fetchone()[0] == 0
    )


WRITER = textwrap.dedent(
    """
    import sys
    from pbx.store.database import open_database
    from pbx.store.transaction import write_transaction
    db = open_database(sys.argv[1])
    db.execute("CREATE TABLE IF NOT EXISTS batches (batch INTEGER, item INTEGER)")
    batch = db.execute("SELECT coalesce(max(batch), 0) FROM batches").fetchone()[0]
    print("ready", flush=True)
    while True:
        batch += 1
        with write_transaction(db):
            for item in range(50):
                db.execute("INSERT INTO batches VALUES (?, ?)", [batch, item])
    """
)


def test_sigkill_mid_write_leaves_whole_batches_only(tmp_path: Path) -> None:
    """A crash at any instant leaves the file consistent: every batch is all or nothing."""
    path = tmp_path / "pbx.db"
    open_database(path)
    for _ in range(5):
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
            db = open_database(path, migrate=False)
            # Kill it once it has committed a few more batches (no sleeping: we watch the file).
            start = db.execute("SELECT count(*) FROM batches").fetchone()[0]
            for _ in range(10_000):
                if db.execute("SELECT count(*) FROM batches").fetchone()[0] >= start + 500:
                    break
            db.close()
        finally:
            proc.kill()
            proc.wait(timeout=10)
    db = open_database(path)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    sizes = db.execute("SELECT count(*) FROM batches GROUP BY batch").fetchall()
    assert sizes and all(size == (50,) for size in sizes)


def test_several_settings_come_back_in_one_query(tmp_path: Path) -> None:
    db = open_database(tmp_path / "s.db")
    set_setting(db, "outside_prefix", "0")
    set_setting(db, "line_country", "UK")
    found = get_settings(db, "outside_prefix", "line_country", "never_set")
    assert found == {"outside_prefix": "0", "line_country": "UK"}
    assert get_settings(db, "never_set") == {}
