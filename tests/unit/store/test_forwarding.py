"""Forwarding, DND and redirect in the store: migration 0007, the checks, feature codes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from pbx.routing.feature_codes import (
    DndOff,
    DndOn,
    FeatureCodes,
    FeatureOutcome,
    ForwardAlwaysOff,
    ForwardAlwaysOn,
)
from pbx.store.database import open_database
from pbx.store.extensions import ExtensionError, add_extension, get_extension, remove_extension
from pbx.store.feature_codes import apply_feature_command, feature_codes, set_feature_codes
from pbx.store.forwarding import (
    ForwardingChange,
    get_forwarding,
    line_plan,
    set_forwarding,
    update_extension_and_forwarding,
)
from pbx.store.migrations import MIGRATIONS
from pbx.store.records import ForwardingRecord
from pbx.store.settings import set_setting


@pytest.fixture
def db(tmp_path: Path) -> Database:
    db = open_database(tmp_path / "pbx.db")
    for number in ("201", "202", "203"):
        add_extension(db, number=number, name="", password="long-enough-password", now=1.0)
    return db


def test_migration_0007_adds_the_columns_with_forwarding_off(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    old = Database(conn)
    old.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
    before = [name for name, _ in MIGRATIONS].index("0007_call_forwarding")
    for name, migrate in MIGRATIONS[:before]:  # a file from before this migration, with a row
        migrate(old)
        old.execute("INSERT INTO _migrations VALUES (?, 'then')", [name])
    old.execute(
        "INSERT INTO extensions (number, display_name, ha1_md5, ha1_sha256, outbound_allowed) "
        "VALUES ('201', 'Old', 'x', 'y', 1)"
    )
    conn.commit()
    conn.close()
    db = open_database(path)
    assert get_forwarding(db, "201") == ForwardingRecord(number="201")
    columns = {c.name for c in db.table("extensions").columns}
    assert {"forward_always", "forward_busy", "forward_no_answer", "forward_after",
            "forward_unregistered", "dnd", "redirect", "voicemail_pin"} <= columns  # fmt: skip


def test_set_and_turn_off_each_forward(db: Database) -> None:
    change = ForwardingChange(
        always="202", busy="203", no_answer="95551234", after="30", unregistered="202",
        dnd=True,
    )  # fmt: skip
    record = set_forwarding(db, "201", change, now=2.0)
    assert record == ForwardingRecord(
        number="201", always="202", busy="203", no_answer="95551234", after=30,
        unregistered="202", dnd=True,
    )  # fmt: skip
    extension = get_extension(db, "201")
    assert extension is not None and extension.forwarding == record
    assert extension.updated_at == 2.0
    off = set_forwarding(db, "201", ForwardingChange(always="", busy="", dnd=False), now=3.0)
    assert off.always is None and off.busy is None and not off.dnd
    assert off.no_answer == "95551234" and off.after == 30  # untouched fields stay


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (ForwardingChange(always="299"), "neither an extension nor an outside number"),
        (ForwardingChange(always="201"), "cannot forward to itself"),
        (ForwardingChange(busy="911"), "emergency"),
        (ForwardingChange(busy="9011441234"), "blocked prefix"),
        (ForwardingChange(always="sip:bob@example.com"), "turn redirect on"),
        (ForwardingChange(always="sip:@@", redirect=True), "not a SIP URI"),
        (ForwardingChange(always="sip:" + "a" * 300 + "@x", redirect=True), "at most 256"),
        (ForwardingChange(after=4), "from 5 to 300"),
        (ForwardingChange(after="301"), "from 5 to 300"),
        (ForwardingChange(after="20s"), "from 5 to 300"),
        (ForwardingChange(always="202", after="x"), "from 5 to 300"),
    ],
)
def test_bad_values_are_refused_and_change_nothing(
    db: Database, change: ForwardingChange, message: str
) -> None:
    with pytest.raises(ExtensionError, match=message):
        set_forwarding(db, "201", change, now=2.0)
    assert get_forwarding(db, "201") == ForwardingRecord(number="201")


def test_an_outside_forward_needs_outbound_permission_after_the_change(db: Database) -> None:
    update_extension_and_forwarding(
        db, "201", forwarding=ForwardingChange(no_answer="95551234"), now=2.0
    )
    with pytest.raises(ExtensionError, match="may not call out"):
        update_extension_and_forwarding(db, "201", outbound_allowed=False, name="X", now=3.0)
    extension = get_extension(db, "201")
    assert extension is not None and extension.outbound_allowed and extension.display_name == ""
    update_extension_and_forwarding(
        db, "201", outbound_allowed=False, forwarding=ForwardingChange(no_answer=""), now=4.0
    )
    with pytest.raises(ExtensionError, match="may not call out"):
        set_forwarding(db, "201", ForwardingChange(always="95551234"), now=5.0)


def test_the_outside_prefix_comes_from_the_line_settings(db: Database) -> None:
    set_setting(db, "outside_prefix", "8")
    assert line_plan(db).outside_prefix == "8"
    with pytest.raises(ExtensionError, match="outside numbers start with 8"):
        set_forwarding(db, "201", ForwardingChange(always="95551234"), now=2.0)
    assert set_forwarding(db, "201", ForwardingChange(always="85551234"), now=2.0).always


def test_a_sip_uri_with_redirect(db: Database) -> None:
    change = ForwardingChange(always="sip:bob@elsewhere.example.com", redirect=True)
    record = set_forwarding(db, "201", change, now=2.0)
    assert record.redirect and record.always == "sip:bob@elsewhere.example.com"
    with pytest.raises(ExtensionError, match="turn redirect on"):
        set_forwarding(db, "201", ForwardingChange(redirect=False), now=3.0)


def test_removing_an_extension_turns_forwards_to_it_off(db: Database) -> None:
    set_forwarding(db, "201", ForwardingChange(always="202", busy="203"), now=2.0)
    remove_extension(db, "202")
    assert get_forwarding(db, "201") == ForwardingRecord(number="201", busy="203")


def test_feature_codes_default_and_change(db: Database) -> None:
    assert feature_codes(db) == FeatureCodes()
    set_feature_codes(db, FeatureCodes(forward_on="#72"))
    assert feature_codes(db).forward_on == "#72"
    with pytest.raises(ValueError, match="clashes"):
        set_feature_codes(db, FeatureCodes(dnd_on="*73"))
    assert feature_codes(db) == FeatureCodes(forward_on="#72")


@pytest.mark.parametrize(
    ("command", "outcome", "always", "dnd"),
    [
        (ForwardAlwaysOn("202"), FeatureOutcome(200, "Forwarding On"), "202", False),
        (ForwardAlwaysOn(""), FeatureOutcome(484, "Address Incomplete"), None, False),
        (ForwardAlwaysOn("299"), FeatureOutcome(404, "Not Found"), None, False),
        (ForwardAlwaysOn("201"), FeatureOutcome(482, "Loop Detected"), None, False),
        (ForwardAlwaysOn("911"), FeatureOutcome(403, "Forbidden"), None, False),
        (ForwardAlwaysOff(), FeatureOutcome(200, "Forwarding Off"), None, False),
        (DndOn(), FeatureOutcome(200, "Do Not Disturb On"), None, True),
        (DndOff(), FeatureOutcome(200, "Do Not Disturb Off"), None, False),
    ],
)
def test_a_dialled_command_is_applied_to_the_caller(
    db: Database, command: object, outcome: FeatureOutcome, always: str | None, dnd: bool
) -> None:
    assert apply_feature_command(db, "201", command, now=2.0) == outcome  # type: ignore[arg-type]
    record = get_forwarding(db, "201")
    assert record is not None and record.always == always and record.dnd is dnd


def test_forward_off_undoes_forward_on_and_a_caller_not_allowed_out_is_refused(
    db: Database,
) -> None:
    assert apply_feature_command(db, "201", ForwardAlwaysOn("95551234"), now=2.0).ok
    assert apply_feature_command(db, "201", ForwardAlwaysOff(), now=3.0).ok
    assert get_forwarding(db, "201") == ForwardingRecord(number="201")
    update_extension_and_forwarding(db, "202", outbound_allowed=False, now=4.0)
    refused = apply_feature_command(db, "202", ForwardAlwaysOn("95551234"), now=5.0)
    assert refused == FeatureOutcome(403, "Forbidden")
    assert apply_feature_command(db, "299", DndOn(), now=5.0) == FeatureOutcome(404, "Not Found")
