"""Debian's headless Chromium driven by Playwright, for the web admin's browser tests.

We never download a browser build: Playwright's wheel brings its driver, and the browser is
``/usr/bin/chromium`` from the Debian package ``chromium`` (a missing one skips the test on a
laptop and fails it in CI, see ``tools.require_tool``). Each page gets a fresh profile in a
temporary folder, and only loopback addresses resolve, so the browser talks to the server
under test and to no one else.

    with browser_page(viewport_width=375) as page:
        page.goto(f"http://127.0.0.1:{port}/")
        save_screenshot(page, "dashboard-375")
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, sync_playwright

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = ROOT / "test-artifacts" / "screenshots"
"""CI keeps this folder as an artifact; ``.gitignore`` keeps it out of the repository."""

CHROMIUM_ARGS = (
    "--headless=new",
    "--no-sandbox",  # we run as root in CI, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Only loopback resolves (Chromium maps IP literals too): nothing reaches outside.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
)
DEFAULT_TIMEOUT_MS = 15_000
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@contextmanager
def browser_page(
    viewport_width: int = 1280,
    viewport_height: int = 800,
    *,
    timeout_ms: int = DEFAULT_TIMEOUT_MS,
    fail_on_page_errors: bool = True,
) -> Iterator[Page]:
    """A page in a fresh headless Chromium, closed (browser and profile) on the way out.

    Every wait and action times out after ``timeout_ms``. With ``fail_on_page_errors``, an
    uncaught JavaScript exception on the page fails the test once its body has passed.
    """
    chromium = require_tool("chromium", "chromium")
    page_errors: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="switchboard-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=list(CHROMIUM_ARGS),
            viewport={"width": viewport_width, "height": viewport_height},
            timeout=60_000,  # the first start on a cold disk is slow
        )
        try:
            context.set_default_timeout(timeout_ms)
            page = context.pages[0] if context.pages else context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            yield page
        finally:
            # If the browser already died, the test's own error says why.
            with suppress(PlaywrightError):
                context.close()
    if fail_on_page_errors and page_errors:
        raise AssertionError("JavaScript errors on the page:\n" + "\n".join(page_errors))


def save_screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as ``test-artifacts/screenshots/<name>.png`` and return the path."""
    stem = name.removesuffix(".png")
    if not _NAME_RE.fullmatch(stem):
        raise ValueError(f"screenshot name {name!r}: use letters, digits, '.', '-', '_' only")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{stem}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
