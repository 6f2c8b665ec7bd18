"""Running the real ``pbx serve`` process for integration tests.

The process picks its own free port (``--sip-port 0``) and says which on
stderr; the helper waits for that line (no sleeping), and stops the process
at the end whatever happened.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from tests.support.processes import stop

_LISTENING_RE = re.compile(r"listening on udp/tcp (\S+):(\d+)")


class SwitchProcess:
    def __init__(
        self,
        tmp_path: Path,
        *extra_args: str,
        bind: str = "127.0.0.1",
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        db = str(tmp_path / "switchboard.db")
        self.args = args or [
            sys.executable, "-m", "pbx.cli", "serve", "--db", db,
            "--bind", bind, "--sip-port", "0", *extra_args,
        ]  # fmt: skip
        self.extra_env = env or {}
        self.host = bind
        self.port = 0
        self.lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SwitchProcess:
        env = dict(os.environ, PYTHONUNBUFFERED="1", **self.extra_env)
        env.pop("JOURNAL_STREAM", None)
        self.proc = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env
        )
        threading.Thread(target=self._pump, daemon=True).start()
        line = self.wait_for(_LISTENING_RE, timeout=20)
        match = _LISTENING_RE.search(line)
        assert match
        self.port = int(match.group(2))
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._lines.put(line)
        self._lines.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> str:
        """Block until a stderr line matches ``pattern``; fail if the process ends first."""
        while True:
            try:
                line = self._lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no line matching {pattern.pattern!r} in {timeout}s: "
                    f"{''.join(self.lines)[-2000:]}"
                ) from None
            if line is None:
                raise AssertionError(f"pbx serve exited: {''.join(self.lines)[-2000:]}")
            self.lines.append(line)
            if pattern.search(line):
                return line

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` (SIGTERM by default), then wait; returns the exit status."""
        assert self.proc is not None
        return stop(self.proc, sig)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
