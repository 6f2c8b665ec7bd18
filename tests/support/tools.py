"""Finding the outside tools tests drive (SIPp, baresip, Chromium).

On a newcomer's laptop a missing tool skips the test; in CI
(SWITCHBOARD_REQUIRE_TOOLS=1) a missing tool fails it, so CI can never go
green by skipping what it was meant to prove.
"""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} not found (apt-get install {package})"
    if os.environ.get("SWITCHBOARD_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " and SWITCHBOARD_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(message)
