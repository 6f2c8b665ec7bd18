"""Running the real line gateway (``python -m gateway_fxo --line sim``) for a test."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

_CONTROL_RE = re.compile(r"Simulated line control on 127\.0\.0\.1:(\d+)")


class GatewayProcess:
    def __init__(self, db: Path, switch_port: int) -> None:
        self.args = [
            sys.executable, "-m", "gateway_fxo", "--db", str(db),
            "--switch", f"127.0.0.1:{switch_port}", "--line", "sim", "--sim-control", "0",
        ]  # fmt: skip
        self.control_port = 0
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> GatewayProcess:
        self.proc = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        threading.Thread(target=self._pump, daemon=True).start()
        self.control_port = int(_CONTROL_RE.search(self.wait_for(_CONTROL_RE, 20)).group(1))  # type: ignore[union-attr]
        self.wait_for(re.compile("Line gateway registered"), 20)
        return self

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> str:
        for line in self.lines:
            if pattern.search(line):
                return line
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"gateway: no {pattern.pattern!r}: {self.lines[-20:]}"
                ) from None
            if line is None:
                raise AssertionError(f"the gateway exited: {''.join(self.lines)[-2000:]}")
            self.lines.append(line)
            if pattern.search(line):
                return line

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
