"""Starting ``pbx serve`` for a benchmark: the shared harness's users imported, pinned to CPU 0,
on the switch's defaults (its MD5 challenge is what SIPp 3.6.1 answers)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SWITCHBOARD_SHARED_BENCH", ROOT.parent / "shared" / "bench"))
"""The shared harness; from a git worktree elsewhere, name it with SWITCHBOARD_SHARED_BENCH."""


def start_switch(port: int, workdir: Path, *extra: str) -> subprocess.Popen[str]:
    db = workdir / "bench.db"
    subprocess.run(
        [sys.executable, "-m", "pbx.cli", "ext", "import", str(SHARED / "users-import.csv"),
         "--db", str(db)],
        check=True, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    # SWITCHBOARD_BENCH_PROFILE=FILE: the switch runs under cProfile (its stats go to FILE).
    profile = os.environ.get("SWITCHBOARD_BENCH_PROFILE")
    prefix = ["-m", "cProfile", "-o", profile] if profile else []
    args = [sys.executable, *prefix, "-m", "pbx.cli", "serve", "--sip-port", str(port),
            "--log-level", "warning", "--db", str(db), *extra]  # fmt: skip
    if shutil.which("taskset"):
        args = ["taskset", "-c", "0", *args]
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "listening on" in line:
            threading.Thread(target=_drain, args=(proc,), daemon=True).start()
            return proc
    proc.kill()
    raise SystemExit("pbx serve did not start")


LOG_TAIL: deque[str] = deque(maxlen=50)
"""The switch's last log lines (warnings and up), for a look after a failed step."""


def _drain(proc: subprocess.Popen[str]) -> None:
    """Keep reading the switch's log: a full stderr pipe would block the switch mid-write."""
    assert proc.stderr is not None
    for line in proc.stderr:
        LOG_TAIL.append(line)
