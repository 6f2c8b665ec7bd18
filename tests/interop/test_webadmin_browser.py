"""The web admin in real headless Chromium, from first boot to a registered phone.

First-run setup with the printed code, log in, create an extension, read its generated
password off the page, register a real SIP client (SIPp) with it, and see it on the Phones
page. Every page is photographed at desktop and phone width (test-artifacts/screenshots/) and
must not scroll sideways at 375 px. SIPp answers only MD5, so this switch offers MD5.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support.browser import browser_page, save_screenshot
from tests.support.cli import pbx
from tests.support.sipp import run_sipp
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool
from tests.support.web_process import WebProcess

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

PAGES = {
    "dashboard": "/",
    "extensions": "/extensions/",
    "extension": "/extensions/201",
    "phones": "/phones/",
    "calls": "/calls/",
    "line": "/line/",
    "features": "/features/",
    "security": "/security/",
    "backup": "/backup/",
}


def test_first_boot_to_a_registered_phone(tmp_path: Path) -> None:
    sipp = require_tool("sipp", "sip-tester")
    db = tmp_path / "switchboard.db"
    with SwitchProcess(tmp_path) as switch, WebProcess(db, sip_port=switch.port) as web:
        code = pbx(db, "setup-code").stdout.strip()
        assert len(code) == 14
        with browser_page(1280) as page:
            page.goto(web.url + "/")
            assert page.url.endswith("/setup")
            save_screenshot(page, "setup-1280")
            page.fill("input[name=code]", code)
            page.fill("input[name=username]", "boss")
            page.fill("input[name=password]", "a long admin password")
            page.click("button[type=submit]")
            page.wait_for_url("**/extensions/")
            page.fill("input[name=number]", "201")
            page.fill("input[name=name]", "Reception")
            page.click("form[action='/extensions/'] button[type=submit]")
            page.wait_for_url("**/extensions/201?created=1")
            password = page.inner_text("#sip-password code").strip()
            assert len(password) >= 16
            assert page.inner_text("#sip-user").strip() == "201"
            save_screenshot(page, "extension-created-1280")

            users = tmp_path / "users.csv"
            users.write_text(
                f"SEQUENTIAL\n201;[authentication username=201 password={password}];\n"
            )
            registered = run_sipp(
                sipp, "register_auth", ("127.0.0.1", switch.port), calls=1, rate=1,
                workdir=tmp_path,
                extra=("-inf", str(users), "-key", "expires", "600",
                       "-key", "contact_port", "5999"),
            )  # fmt: skip
            assert registered.successful == 1, registered.output[-2000:]

            page.goto(web.url + "/phones/")
            deadline = time.monotonic() + 10
            while "SIPp-registrar-test" not in page.inner_text("main"):
                assert time.monotonic() < deadline, "the Phones page never showed the phone"
                page.reload()
            assert "201" in page.inner_text("table")
            page.goto(web.url + "/")
            page.wait_for_function("document.getElementById('phones').textContent.includes('201')")
            for name, path in PAGES.items():
                page.goto(web.url + path)
                save_screenshot(page, f"{name}-1280")

        # Phone width: every page fits without sideways scrolling.
        with browser_page(375, 740) as phone:
            phone.goto(web.url + "/login")
            phone.fill("input[name=username]", "boss")
            phone.fill("input[name=password]", "a long admin password")
            phone.click("button[type=submit]")
            phone.wait_for_url(web.url + "/")
            for name, path in PAGES.items():
                phone.goto(web.url + path)
                save_screenshot(phone, f"{name}-375")
                width = phone.evaluate("document.documentElement.scrollWidth")
                assert width <= 375, f"{name} is {width}px wide at phone width"
