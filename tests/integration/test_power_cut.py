"""A power cut in the middle of everything: SIGKILL the switch, the gateway and the web admin
while phones register, a call is up and the admin adds extensions; then start them again.

The database must pass SQLite's integrity check, everything that was acknowledged (a 201 from
the API, a 200 to a REGISTER) must still be there, and the phones must register and call again.
"""

from __future__ import annotations

import http.cookiejar
import json
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from pbx.store.admins import setup_code
from pbx.store.database import open_database
from tests.integration.test_call_signalling import PASSWORDS, _answered_call
from tests.support.cli import pbx
from tests.support.gateway_process import GatewayProcess
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess
from tests.support.web_process import WebProcess

pytestmark = pytest.mark.timeout(300)


def admin_session(web: str, db: Path) -> tuple[urllib.request.OpenerDirector, str]:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    csrf = json.load(opener.open(web + "/api/csrf", timeout=10))["csrf_token"]
    code = setup_code(open_database(db))
    form = {"code": code, "username": "boss", "password": "a long admin password",
            "csrf_token": csrf}  # fmt: skip
    opener.open(web + "/setup", urllib.parse.urlencode(form).encode(), timeout=10).read()
    return opener, json.load(opener.open(web + "/api/csrf", timeout=10))["csrf_token"]


def test_sigkill_everything_mid_flight_and_come_back(tmp_path: Path) -> None:
    db = tmp_path / "switchboard.db"
    for user, secret in PASSWORDS.items():
        assert pbx(db, "ext", "add", user, "--password", secret).returncode == 0
    created: list[str] = []
    registered: list[tuple[str, int]] = []
    stop = threading.Event()

    with (
        SwitchProcess(tmp_path, "--rtp-ports", "37000-37099") as switch,
        WebProcess(db, sip_port=switch.port) as web,
        GatewayProcess(db, switch.port) as gateway,
    ):
        opener, csrf = admin_session(web.url, db)

        def add_extensions() -> None:  # the admin, clicking away
            number = 300
            while not stop.is_set() and number < 700:
                body = json.dumps({"number": str(number)}).encode()
                request = urllib.request.Request(
                    web.url + "/api/extensions", data=body, method="POST",
                    headers={"Content-Type": "application/json", "X-CSRF-Token": csrf},
                )  # fmt: skip
                try:
                    with opener.open(request, timeout=5) as response:
                        if response.status == 201:
                            created.append(str(number))  # acknowledged: must survive
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    return
                number += 1

        alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", switch.port))
        bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", switch.port))
        try:
            assert bob.register(expires=600).status == 200
            registered.append(("202", bob.port))
            _answered_call(switch, alice, [bob])  # a call is up
            admin = threading.Thread(target=add_extensions, daemon=True)
            admin.start()
            for _ in range(20):  # registrations in flight
                if alice.register(expires=600).status == 200:
                    registered.append(("201", alice.port))
            assert created, "the admin made no extension before the cut"
            # The cut: every process at once, no chance to finish anything.
            for process in (switch.proc, web.proc, gateway.proc):
                assert process is not None
                process.send_signal(signal.SIGKILL)
            stop.set()
            admin.join(timeout=10)
        finally:
            alice.close()
            bob.close()

    check = open_database(db)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    numbers = {row[0] for row in check.execute("SELECT number FROM extensions")}
    assert set(created) <= numbers, set(created) - numbers
    bindings = {(aor, port) for aor, port in check.execute(
        "SELECT aor, received_port FROM registrations")}  # fmt: skip
    assert set(registered) <= bindings

    # Back up: the phones register and call again.
    with SwitchProcess(tmp_path, "--rtp-ports", "37100-37199") as again:
        alice = SipPhone("201", PASSWORDS["201"], ("127.0.0.1", again.port))
        bob = SipPhone("202", PASSWORDS["202"], ("127.0.0.1", again.port))
        try:
            assert alice.register().status == 200 and bob.register().status == 200
            invite, _, _ = _answered_call(again, alice, [bob])
            assert invite.method == "INVITE"
        finally:
            alice.close()
            bob.close()
