"""The image recipe's shell scripts parse (bash -n) and pass shellcheck."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.tools import require_tool

IMAGE = Path(__file__).resolve().parents[2] / "image"
SCRIPTS = sorted(IMAGE.glob("*.sh")) + [IMAGE / "files" / "switchboard-firstboot"]


def test_there_are_scripts() -> None:
    assert {p.name for p in SCRIPTS} >= {
        "build.sh",
        "lib.sh",
        "product.sh",
        "board.sh",
        "switchboard-firstboot",
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_bash_parses_it(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(script: Path) -> None:
    shellcheck = require_tool("shellcheck", "shellcheck")
    result = subprocess.run(
        [shellcheck, "--external-sources", "--shell=bash", script.name],
        cwd=script.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", [p for p in SCRIPTS if p.name != "lib.sh"], ids=lambda p: p.name)
def test_scripts_stop_at_the_first_error(script: Path) -> None:
    assert "set -euo pipefail" in script.read_text()
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"
