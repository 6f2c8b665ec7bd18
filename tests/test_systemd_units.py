"""The systemd units pass `systemd-analyze verify` with no warning, and say what the box needs.

verify insists the ExecStart programs exist, so the check runs in a throwaway root that holds
the system's own units, ours, and stand-ins for the venv's programs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.tools import require_tool

UNITS = Path(__file__).resolve().parent.parent / "systemd"
SERVICES = ("pbx.service", "pbx-web.service", "pbx-fxo@.service")


def test_units_verify_cleanly(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze", "systemd")
    root = tmp_path / "root"
    system = root / "etc/systemd/system"
    system.mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    for unit in UNITS.glob("*.service"):
        shutil.copy(unit, system)
        for program in re.findall(r"^ExecStart=(\S+)", unit.read_text(), re.M):
            stand_in = root / program.lstrip("/")
            stand_in.parent.mkdir(parents=True, exist_ok=True)
            stand_in.write_text("#!/bin/sh\n")
            stand_in.chmod(0o755)
    shutil.copy(UNITS / "switchboard.target", system)
    names = ["pbx.service", "pbx-web.service", "pbx-fxo@line1.service", "switchboard.target"]
    result = subprocess.run(
        [analyze, "verify", f"--root={root}", *names],
        capture_output=True, text=True, timeout=120, cwd=system, check=False,
    )  # fmt: skip
    assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize("name", SERVICES)
def test_services_are_notify_watched_and_hardened(name: str) -> None:
    text = (UNITS / name).read_text()
    for line in (
        "Type=notify", "WatchdogSec=", "Restart=on-failure", "User=switchboard",
        "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes",
        "ReadWritePaths=/var/lib/switchboard", "CapabilityBoundingSet=",
    ):  # fmt: skip
        assert line in text, f"{name} lacks {line}"
