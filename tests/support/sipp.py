"""Running SIPp (package sip-tester) against a target on loopback, bounded in count and time."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCENARIOS = Path(__file__).resolve().parent.parent / "interop" / "scenarios"


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port that was free a moment ago on 127.0.0.1, for UDP and TCP both."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, kind) as first:
            first.bind(("127.0.0.1", 0))
            port = int(first.getsockname()[1])
            other = socket.SOCK_STREAM if kind == socket.SOCK_DGRAM else socket.SOCK_DGRAM
            with socket.socket(socket.AF_INET, other) as second:
                try:
                    second.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port")


@dataclass(frozen=True)
class SippResult:
    returncode: int
    successful: int
    failed: int
    output: str


def run_sipp(
    sipp: str,
    scenario: str,
    target: tuple[str, int],
    *,
    transport: str = "u1",
    calls: int,
    rate: int,
    workdir: Path,
    timeout_s: int = 60,
    extra: tuple[str, ...] = (),
    local_ip: str = "127.0.0.1",
    tag: str = "",
) -> SippResult:
    """Run ``calls`` calls of a scenario at ``rate`` per second; returns the counters."""
    stem = f"{scenario}-{transport}{tag}"
    stat_file = workdir / f"{stem}-stats.csv"
    args = [
        sipp,
        f"{target[0]}:{target[1]}",
        "-sf",
        str(SCENARIOS / f"{scenario}.xml"),
        "-t",
        transport,
        "-i",
        local_ip,
        "-p",
        str(free_port()),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-l",
        str(max(rate * 2, 10)),
        "-timeout",
        f"{timeout_s}s",
        "-timeout_error",
        "-recv_timeout",
        "5000",
        "-max_recv_loops",
        "1000",
        "-nostdin",
        "-trace_screen",
        "-screen_file",
        str(workdir / f"{stem}-screen.txt"),
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
        *extra,
    ]
    proc = subprocess.run(
        args,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=timeout_s + 30,
        stdin=subprocess.DEVNULL,
    )
    successful = failed = 0
    if stat_file.exists():
        lines = [line for line in stat_file.read_text().splitlines() if line.strip()]
        if len(lines) >= 2:
            header = lines[0].split(";")
            last = lines[-1].split(";")
            row = dict(zip(header, last, strict=False))
            successful = int(row.get("SuccessfulCall(C)", "0") or 0)
            failed = int(row.get("FailedCall(C)", "0") or 0)
    screen = workdir / f"{stem}-screen.txt"
    output = (
        proc.stdout + proc.stderr + (screen.read_text(errors="replace") if screen.exists() else "")
    )
    return SippResult(proc.returncode, successful, failed, output)


class SippUas:
    """A SIPp callee on 127.0.0.1:``port`` running ``scenario`` for every call, until stopped."""

    def __init__(self, sipp: str, scenario: str, port: int, workdir: Path, media_port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [
                sipp, "-sf", str(SCENARIOS / f"{scenario}.xml"), "-i", "127.0.0.1",
                "-p", str(port), "-key", "media_port", str(media_port), "-nostdin",
                "-trace_err", "-error_file", str(workdir / f"uas-{port}-errors.log"),
            ],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
