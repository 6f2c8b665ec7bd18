"""Running the real line gateway (``python -m gateway_fxo --line sim``) for a test."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from tests.support.processes import LineReader, stop

_CONTROL_RE = re.compile(r"Simulated line control on 127\.0\.0\.1:(\d+)")


class GatewayProcess:
    def __init__(self, db: Path, switch_port: int, switch_host: str = "127.0.0.1") -> None:
        self.args = [
            sys.executable, "-m", "gateway_fxo", "--db", str(db),
            "--switch", f"{switch_host}:{switch_port}", "--line", "sim", "--sim-control", "0",
        ]  # fmt: skip
        self.control_port = 0
        self.proc: subprocess.Popen[str] | None = None
        self.output: LineReader | None = None

    def __enter__(self) -> GatewayProcess:
        self.proc = subprocess.Popen(
            self.args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )  # fmt: skip
        assert self.proc.stderr is not None
        self.output = LineReader(self.proc.stderr, "the gateway")
        try:
            line = self.output.wait_for(_CONTROL_RE, 20)
            self.control_port = int(_CONTROL_RE.search(line).group(1))  # type: ignore[union-attr]
            self.output.wait_for(re.compile("Line gateway registered"), 20)
        except BaseException:
            stop(self.proc)  # a gateway that did not come up is not left running
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.proc is not None
        stop(self.proc)
