"""What every background process a test starts needs: its stderr read line by line (so a
test waits on a line, never sleeps) and a stop that always ends it."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import threading
from typing import IO


class LineReader:
    def __init__(self, stream: IO[str], name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> str:
        """A line matching ``pattern`` (one already read, or the next within ``timeout``)."""
        for line in self.lines:
            if pattern.search(line):
                return line
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"{self.name}: no {pattern.pattern!r} in {timeout}s: {self.lines[-20:]}"
                ) from None
            if line is None:
                raise AssertionError(f"{self.name} exited: {''.join(self.lines)[-2000:]}")
            self.lines.append(line)
            if pattern.search(line):
                return line


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """``sig`` (SIGTERM by default), then SIGKILL if it does not go within 10 s; the exit
    status."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
    return proc.returncode
