"""Restoring a backup while the switch runs: the phones registered now and the call in
progress are put back over the backup's old copies (the web admin's restore, the real switch)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from pbx.sip.message import Request
from pbx.store.admins import setup_code
from pbx.store.database import open_database
from tests.integration.test_call_signalling import PASSWORDS, _answered_call
from tests.support.cli import pbx
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess
from webadmin import create_app


def counts(db: Path) -> tuple[int, int]:
    store = open_database(db)
    try:
        registrations = store.execute("SELECT count(*) FROM registrations").fetchone()[0]
        calls = store.execute("SELECT count(*) FROM active_calls").fetchone()[0]
        return int(registrations), int(calls)
    finally:
        store.close()


def test_a_restore_keeps_live_registrations_and_calls(tmp_path: Path) -> None:
    db = tmp_path / "switchboard.db"
    for user, secret in PASSWORDS.items():
        assert pbx(db, "ext", "add", user, "--password", secret).returncode == 0
    app = create_app({"DB": str(db), "TESTING": True})
    admin = app.test_client()
    csrf = admin.get("/api/csrf").get_json()["csrf_token"]
    setup = admin.post(
        "/setup",
        data={
            "code": setup_code(open_database(db)),
            "username": "boss",
            "password": "correct horse battery",
            "csrf_token": csrf,
        },
    )
    assert setup.status_code == 302  # fmt: skip
    backup = admin.get("/backup/download").data  # taken before any phone registered
    with SwitchProcess(tmp_path, "--rtp-ports", "34200-34299") as switch:
        alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
        bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
        try:
            assert alice.register().status == 200 and bob.register().status == 200
            _answered_call(switch, alice, [bob])
            ack = bob.receive(5)
            assert isinstance(ack, Request) and ack.method == "ACK"
            assert counts(db) == (2, 1)
            page = admin.get("/backup/").get_data(True)
            token = re.search(r'name="csrf_token" value="([^"]+)"', page)
            assert token is not None
            restored = admin.post(
                "/backup/restore", content_type="multipart/form-data",
                data={"csrf_token": token.group(1), "backup": (io.BytesIO(backup), "b.db")},
            )  # fmt: skip
            assert restored.status_code == 302
            # The switch notices within its housekeeping period and writes back what is live.
            line = switch.wait_for(re.compile(r"event=store_restored bindings=(\d+)"), timeout=10)
            assert "bindings=2 dropped=0" in line
            assert counts(db) == (2, 1)
        finally:
            alice.close()
            bob.close()
