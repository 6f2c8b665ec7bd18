"""Running the real web admin (``python -m webadmin``) on a free port for a test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from tests.support.processes import stop

_URL_RE = re.compile(r"web admin on (http://\S+)/")


class WebProcess:
    def __init__(self, db: Path, *, sip_port: int = 5060) -> None:
        self.args = [
            sys.executable, "-m", "webadmin", "--db", str(db), "--bind", "127.0.0.1",
            "--port", "0", "--sip-host", "127.0.0.1", "--sip-port", str(sip_port),
        ]  # fmt: skip
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> WebProcess:
        self.proc = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # ends when the process does: no unbounded wait
            match = _URL_RE.search(line)
            if match:
                self.url = match.group(1)
                return self
        stop(self.proc)
        raise AssertionError(f"the web admin did not start (exit {self.proc.returncode})")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.proc is not None
        stop(self.proc)
