"""Headless Chromium works here: it loads a page from a loopback server, runs its JavaScript,
takes screenshots at desktop and phone width, and draws a provisioning QR code that scans."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support.browser import SCREENSHOT_DIR, browser_page, save_screenshot
from tests.support.tools import require_tool, scan_qr
from webadmin.provisioning import SipAccount, SipServer, qr_payload, qr_svg

pytestmark = [pytest.mark.interop, pytest.mark.timeout(180)]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Smoke</title>
<style>
  body { font-family: sans-serif; margin: 1rem; }
  main { max-width: 40rem; }
  .qr svg { width: 100%; max-width: 300px; height: auto; display: block; }
</style>
</head>
<body>
<main>
  <h1 id="status">Waiting</h1>
  <button id="go" type="button">Press me</button>
  <div class="qr">__QR__</div>
</main>
<script>
  document.getElementById("go").addEventListener("click", () => {
    document.getElementById("status").textContent = "Pressed";
  });
</script>
</body>
</html>
"""


@contextmanager
def serve(body: str) -> Iterator[str]:
    """One page at ``/`` from a server on 127.0.0.1, port chosen by the system."""
    payload = body.encode("utf-8")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="smoke-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def page_with_qr(payload: str) -> str:
    return PAGE.replace("__QR__", qr_svg(payload))


def test_chromium_runs_the_page_script_at_desktop_and_phone_width() -> None:
    with serve(page_with_qr("smoke test")) as url:
        for width in (1280, 375):
            with browser_page(viewport_width=width) as page:
                page.goto(url)
                assert page.inner_text("#status") == "Waiting"
                page.click("#go")
                page.wait_for_function(
                    "document.getElementById('status').textContent === 'Pressed'"
                )
                assert page.inner_text("#status") == "Pressed"
                # Usable at phone width: nothing wider than the screen.
                overflow = page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow == 0
                path = save_screenshot(page, f"smoke-{width}")
                assert path.parent == SCREENSHOT_DIR
                assert path.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_provisioning_qr_code_drawn_by_chromium_scans(tmp_path: Path) -> None:
    zbarimg = require_tool("zbarimg", "zbar-tools")
    account = SipAccount(number="201", display_name="Reception & Co", password="s3cret<Passw0rd>")
    server = SipServer(host="192.168.1.10", realm="switchboard")
    payload = qr_payload(account, server)
    image = tmp_path / "qr.png"
    with serve(page_with_qr(payload)) as url, browser_page(viewport_width=375) as page:
        page.goto(url)
        page.locator(".qr svg").screenshot(path=str(image))
    assert scan_qr(zbarimg, image) == payload


def test_an_uncaught_script_error_fails_the_test() -> None:
    expected = pytest.raises(AssertionError, match="JavaScript errors on the page:\n.*boom")
    with expected, browser_page() as page:
        page.set_content("<script>throw new Error('boom')</script>")
        page.wait_for_load_state()
