"""Feature codes dialled from a real phone (baresip) change what the web admin shows.

baresip registers as 201 and dials ``*72203``, ``*78``, ``*79`` and ``*73`` as a user would
type them; each is a short call the switch answers (200 with an inactive stream, then BYE).
After each, the running web admin's extension page and ``pbx ext list --json`` show the new
state. A refused code (``*72777``: no such number) is a failed call and changes nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbx.store.admins import create_first_admin, setup_code
from pbx.store.database import open_database
from tests.integration.test_forwarding_live import Api
from tests.support.cli import pbx
from tests.support.phone_peer import Office, PeerPhone, office, wait_until
from tests.support.web_process import WebProcess

pytestmark = pytest.mark.timeout(180)
ADMIN_PASSWORD = "a long admin password"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Office, Api, PeerPhone]]:
    with office(tmp_path, rtp_ports=(46300, 46349), users=("201", "203")) as pbx_office:
        store = open_database(pbx_office.db)
        code = setup_code(store)
        assert code is not None
        create_first_admin(store, code=code, username="boss", password=ADMIN_PASSWORD,
                           now=time.time())  # fmt: skip
        store.close()
        phone = PeerPhone(pbx_office, tmp_path / "phone201", "201", rtp_ports=(46350, 46399))
        try:
            with WebProcess(pbx_office.db, sip_port=pbx_office.process.port) as web:
                phone.wait_registered()
                yield pbx_office, Api(web.url), phone
        finally:
            phone.stop()


def shown_by_cli(db: Path) -> tuple[Any, Any]:
    rows = json.loads(pbx(db, "ext", "list", "--json").stdout)
    row = next(r for r in rows if r["number"] == "201")
    return row["forward_always"], row["dnd"]


def shown_by_page(api: Api) -> tuple[str, bool]:
    """The extension page as an admin sees it: the forward-always field, the DND box."""
    with api.opener.open(api.url + "/extensions/201", timeout=10) as response:
        page = response.read().decode()
    field = re.search(r'id="forward_always" value="([^"]*)"', page)
    dnd = re.search(r'<input type="checkbox" name="dnd" id="dnd" ?(checked)?', page)
    assert field is not None and dnd is not None, page[:2000]
    return field.group(1), dnd.group(1) == "checked"


def dial(pbx_office: Office, phone: PeerPhone, code: str, calls: int) -> None:
    """Dial ``code``; this is the phone's ``calls``-th call, and it must end."""
    phone.command("dial", f"sip:{code}@127.0.0.1:{pbx_office.process.port}")
    phone.wait_count("CALL_CLOSED", calls, 15)


def test_feature_codes_from_baresip_change_the_web_admin(
    setup: tuple[Office, Api, PeerPhone],
) -> None:
    pbx_office, api, phone = setup
    assert shown_by_page(api) == ("", False)

    dial(pbx_office, phone, "*72203", 1)
    assert phone.wait_count("CALL_ESTABLISHED", 1, 5), "the switch answered the code"
    wait_until(lambda: shown_by_page(api) == ("203", False), 2, "*72203 on the web admin")
    assert shown_by_cli(pbx_office.db) == ("203", False)

    dial(pbx_office, phone, "*78", 2)
    wait_until(lambda: shown_by_page(api) == ("203", True), 2, "*78 on the web admin")

    dial(pbx_office, phone, "*79", 3)
    wait_until(lambda: shown_by_page(api) == ("203", False), 2, "*79 on the web admin")

    dial(pbx_office, phone, "*73", 4)
    wait_until(lambda: shown_by_page(api) == ("", False), 2, "*73 on the web admin")
    assert shown_by_cli(pbx_office.db) == (None, False)

    dial(pbx_office, phone, "*72777", 5)
    assert re.search(r"SIP/2.0 404 Not Found", phone.log()), "the refusal reached the phone"
    assert shown_by_page(api) == ("", False)
    assert "Traceback" not in "\n".join(pbx_office.process.lines)
