"""Forwarding set on the extension page in real headless Chromium, read back with the CLI.

The admin logs in, fills the page's forwarding section (busy and no-answer targets, the delay,
do not disturb), saves, and ``pbx ext list --json`` on the same database shows exactly that; a
target that does not exist is a message on the page with the typed values kept and nothing
changed; the Feature codes page changes the codes the extension page tells the user about.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pbx.store.admins import create_first_admin, setup_code
from pbx.store.database import open_database
from tests.support.browser import browser_page, save_screenshot
from tests.support.cli import pbx
from tests.support.web_process import WebProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]
ADMIN = ("boss", "a long admin password")


def row_of(db: Path, number: str) -> dict[str, Any]:
    listed = pbx(db, "ext", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    return next(r for r in json.loads(listed.stdout) if r["number"] == number)  # type: ignore[no-any-return]


def test_forwarding_set_in_the_browser_is_what_the_cli_lists(tmp_path: Path) -> None:
    db = tmp_path / "switchboard.db"
    for number in ("201", "202"):
        assert pbx(db, "ext", "add", number, "--password", "browser-forwarding").returncode == 0
    store = open_database(db)
    code = setup_code(store)
    assert code is not None
    create_first_admin(store, code=code, username=ADMIN[0], password=ADMIN[1], now=time.time())
    store.close()
    with WebProcess(db) as web, browser_page(1280) as page:
        page.goto(web.url + "/login")
        page.fill("input[name=username]", ADMIN[0])
        page.fill("input[name=password]", ADMIN[1])
        page.click("button[type=submit]")
        page.wait_for_url(web.url + "/")

        page.goto(web.url + "/extensions/201")
        page.fill("#forward_busy", "202")
        page.fill("#forward_no_answer", "95551234")
        page.fill("#forward_after", "25")
        page.check("#dnd")
        page.click("#settings button[type=submit]")
        page.wait_for_selector(".flash.ok")
        assert page.input_value("#forward_no_answer") == "95551234"
        assert page.is_checked("#dnd")
        save_screenshot(page, "extension-forwarding-1280")
        row = row_of(db, "201")
        assert {k: row[k] for k in row if k.startswith(("forward", "dnd", "redirect"))} == {
            "forward_always": None, "forward_busy": "202", "forward_no_answer": "95551234",
            "forward_after": 25, "forward_unregistered": None, "dnd": True, "redirect": False,
        }  # fmt: skip

        # A target that is no extension: told on the page, typed values kept, nothing stored.
        page.fill("#forward_always", "299")
        page.fill("#forward_after", "40")
        page.click("#settings button[type=submit]")
        error = page.wait_for_selector(".flash.error")
        assert error is not None and "neither an extension" in error.inner_text()
        assert page.input_value("#forward_always") == "299"
        assert page.input_value("#forward_after") == "40"
        assert row_of(db, "201") == row

        page.goto(web.url + "/features/")
        page.fill("#forward_on", "#72")
        page.click("#feature-codes button[type=submit]")
        page.wait_for_selector(".flash.ok")
        page.goto(web.url + "/extensions/201")
        assert "#72 then a number" in page.inner_text("#forwarding")
