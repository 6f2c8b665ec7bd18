"""Finding the outside tools tests drive (SIPp, baresip, Chromium).

On a newcomer's laptop a missing tool skips the test; in CI
(SWITCHBOARD_REQUIRE_TOOLS=1) a missing tool fails it, so CI can never go
green by skipping what it was meant to prove.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} not found (apt-get install {package})"
    if os.environ.get("SWITCHBOARD_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " and SWITCHBOARD_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(message)


def scan_qr(zbarimg: str, image: Path) -> str:
    """The text of the one QR code in ``image``, read by zbarimg (zbar-tools)."""
    result = subprocess.run(
        [zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(image)],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode("utf-8").removesuffix("\n")


def require_library(soname: str, package: str) -> ctypes.CDLL:
    """A shared library loaded through ctypes, with require_tool's skip / fail rule."""
    try:
        return ctypes.CDLL(soname)
    except OSError as error:
        message = f"{soname} cannot be loaded ({error}; apt-get install {package})"
    if os.environ.get("SWITCHBOARD_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " and SWITCHBOARD_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(message)
