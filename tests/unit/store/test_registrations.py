from __future__ import annotations

from pathlib import Path

from pbx.store.bans import active_bans, remove_ban, save_ban
from pbx.store.database import open_database
from pbx.store.extensions import add_extension
from pbx.store.records import Binding, SourceBan
from pbx.store.registrations import delete_expired, load_bindings, save_bindings


def test_bindings_round_trip_with_every_field(tmp_path: Path) -> None:
    db = open_database(tmp_path / "pbx.db")
    add_extension(db, number="201", name="A", password="long-enough-password", now=1.0)
    full = Binding(
        aor="201", binding_key="instance <urn:uuid:1>;reg-id=1", contact="sip:201@10.0.0.1:5062",
        expires_at=500.0, q=0.5, received_host="203.0.113.9", received_port=61000,
        transport="TCP", local_host="192.0.2.1", local_port=5060, instance_id="<urn:uuid:1>",
        reg_id=1, user_agent="Yealink", call_id="c1", cseq=7, path=("<sip:edge;lr>",),
        auth_algorithm="SHA-256", registered_at=10.0, reachable=True, rtt_ms=3.5,
        qualified_at=20.0,
    )  # fmt: skip
    save_bindings(db, [full], [])
    assert load_bindings(db) == [full]
    # An upsert replaces the row of the same binding key.
    save_bindings(db, [full.__class__(**{**_fields(full), "cseq": 8})], [])
    assert [b.cseq for b in load_bindings(db)] == [8]
    assert load_bindings(db, now=600.0) == []
    assert delete_expired(db, 600.0) == 1


def _fields(binding: Binding) -> dict[str, object]:
    return {name: getattr(binding, name) for name in binding.__slots__}  # type: ignore[attr-defined]


def test_bans_are_stored_listed_and_lifted(tmp_path: Path) -> None:
    db = open_database(tmp_path / "pbx.db")
    save_ban(
        db,
        SourceBan(address="198.51.100.7", banned_at=0.0, until=100.0, failures=10, reason="auth"),
    )
    assert [b.address for b in active_bans(db, 50.0)] == ["198.51.100.7"]
    assert active_bans(db, 150.0) == []
    assert remove_ban(db, "198.51.100.7") and not remove_ban(db, "198.51.100.7")
