from __future__ import annotations

from pathlib import Path

import pytest
from sqlite_utils import Database

from pbx.sip.auth import DigestAlgorithm, compute_ha1
from pbx.store.database import open_database
from pbx.store.extensions import (
    ExtensionError,
    add_extension,
    add_extensions,
    generate_password,
    get_extension,
    list_extensions,
    remove_extension,
    set_password,
    stored_secrets,
)
from pbx.store.records import Binding
from pbx.store.registrations import load_bindings, save_bindings


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(tmp_path / "pbx.db")


def test_only_ha1_values_are_stored_never_the_password(db: Database) -> None:
    add_extension(db, number="201", name="Reception", password="correct horse 201", now=1.0)
    secrets = stored_secrets(db, "201")
    assert secrets is not None
    assert secrets.ha1_md5 == compute_ha1(
        username="201",
        realm="switchboard",
        password="correct horse 201",
        algorithm=DigestAlgorithm.MD5,
    )
    assert secrets.ha1_for(DigestAlgorithm.SHA_256) == compute_ha1(
        username="201",
        realm="switchboard",
        password="correct horse 201",
        algorithm=DigestAlgorithm.SHA_256,
    )
    dump = "\n".join(db.conn.iterdump())
    assert "correct horse 201" not in dump


@pytest.mark.parametrize(
    ("number", "name", "password", "message"),
    [
        ("20a", "", "long-enough-password", "2 to 8 digits"),
        ("2", "", "long-enough-password", "2 to 8 digits"),
        ("201", 'Bad "quote"', "long-enough-password", "quotes"),
        ("201", "", "short", "at least 12"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    db: Database, number: str, name: str, password: str, message: str
) -> None:
    with pytest.raises(ExtensionError, match=message):
        add_extension(db, number=number, name=name, password=password, now=1.0)
    assert list_extensions(db) == []


def test_a_duplicate_is_refused(db: Database) -> None:
    add_extension(db, number="201", name="A", password="long-enough-password", now=1.0)
    with pytest.raises(ExtensionError, match="already exists"):
        add_extension(db, number="201", name="B", password="long-enough-password", now=2.0)
    extension = get_extension(db, "201")
    assert extension is not None and extension.display_name == "A"


def test_import_is_all_or_nothing(db: Database) -> None:
    add_extension(db, number="205", name="Existing", password="long-enough-password", now=1.0)
    rows = [("201", "A", "long-enough-password"), ("205", "Dup", "long-enough-password")]
    with pytest.raises(ExtensionError, match="row 2: extension 205 already exists"):
        add_extensions(db, rows, now=1.0)
    assert [e.number for e in list_extensions(db)] == ["205"]
    assert add_extensions(db, [("201", "A", "long-enough-password")], now=1.0) == 1


def test_a_new_password_replaces_the_stored_hashes(db: Database) -> None:
    add_extension(db, number="201", name="A", password="long-enough-password", now=1.0)
    before = stored_secrets(db, "201")
    set_password(db, "201", "another-long-password", now=2.0)
    assert stored_secrets(db, "201") != before
    with pytest.raises(ExtensionError, match="no extension 299"):
        set_password(db, "299", "another-long-password", now=2.0)


def test_removing_an_extension_removes_its_registrations(db: Database) -> None:
    add_extension(db, number="201", name="A", password="long-enough-password", now=1.0)
    binding = Binding(
        aor="201", binding_key="k", contact="sip:201@10.0.0.1", expires_at=100.0,
        received_host="10.0.0.1", received_port=5060, transport="UDP", call_id="c", cseq=1,
        registered_at=1.0,
    )  # fmt: skip
    assert save_bindings(db, [binding], []) == []
    remove_extension(db, "201")
    assert load_bindings(db) == []
    # A binding for an extension that is gone is refused by the foreign key, not stored.
    assert save_bindings(db, [binding], []) == [binding]


def test_generated_passwords_are_long_and_different() -> None:
    passwords = {generate_password() for _ in range(100)}
    assert len(passwords) == 100 and all(len(p) >= 16 for p in passwords)
