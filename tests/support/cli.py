"""Running the real ``pbx`` command against a database, as an admin would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def pbx(db: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pbx.cli", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
