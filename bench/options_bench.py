#!/usr/bin/env python3
"""OPTIONS round-trip benchmark: SIPp against a real ``pbx serve`` over UDP on loopback.

    python bench/options_bench.py [--rates 2000,5000,10000,15000,20000] [--step-s 5]

The switch runs pinned to CPU 0 and SIPp to CPU 1 (both via taskset), so "per
core" means what it says. For each offered rate SIPp sends rate x step-s
OPTIONS; a step passes when no request failed and at least 95% of the offered
rate was achieved. Prints ``METRIC options_udp ...`` per step and the highest
passing rate, with the switch's CPU use (100 = one core) and peak memory.
Every run is bounded: at most 8 steps of at most 30 s each, loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCENARIO = HERE / "scenarios" / "options_uac.xml"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and its descendants (Kamailio runs as a tree of worker processes)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat(int(entry.name))[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += children
        frontier = children
    return tree


def low_free_port() -> int:
    for port in range(5070, 5090):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("no free port in 5070-5089")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def memory_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def start_switch(port: int) -> subprocess.Popen[str]:
    args = [
        sys.executable,
        "-m",
        "pbx.cli",
        "serve",
        "--sip-port",
        str(port),
        "--log-level",
        "warning",
        "--db",
        str(Path(tempfile.mkdtemp()) / "bench.db"),
    ]
    if shutil.which("taskset"):
        args = ["taskset", "-c", "0", *args]
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 20
    for line in proc.stderr:
        if "listening on" in line:
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("pbx serve did not start")


def run_step(sipp: str, port: int, rate: int, step_s: int, workdir: Path) -> dict[str, float]:
    calls = rate * step_s
    stat = workdir / f"stat-{rate}.csv"
    args = [
        sipp,
        f"127.0.0.1:{port}",
        "-sf",
        str(SCENARIO),
        "-t",
        "u1",
        "-i",
        "127.0.0.1",
        "-p",
        str(free_port()),
        "-m",
        str(calls),
        "-r",
        str(rate),
        "-l",
        str(max(rate, 100)),
        "-timeout",
        f"{step_s * 3 + 10}s",
        "-timeout_error",
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(stat),
        "-fd",
        "1",
    ]
    if shutil.which("taskset"):
        args = ["taskset", "-c", "1", *args]
    started = time.monotonic()
    subprocess.run(args, cwd=workdir, capture_output=True, timeout=step_s * 3 + 40)
    elapsed = time.monotonic() - started
    rows = list(csv.reader(stat.open(), delimiter=";"))
    row = dict(zip(rows[0], rows[-1], strict=False))
    ok = int(row["SuccessfulCall(C)"])
    failed = int(row["FailedCall(C)"])
    rtt = row.get("ResponseTime1(C)", "")
    return {
        "ok": ok,
        "failed": failed,
        "elapsed": elapsed,
        "achieved": ok / max(_hms(row["ElapsedTime(C)"]), 1e-9),
        "retrans": int(row.get("Retransmissions(C)", 0) or 0),
        "rtt": _rtt_ms(rtt),
    }


def _hms(text: str) -> float:
    match = re.match(r"(\d+):(\d+):(\d+)(?::(\d+))?", text)
    if not match:
        return 0.0
    h, m, s, ms = match.groups()
    return int(h) * 3600 + int(m) * 60 + int(s) + (int(ms) / 1000 if ms else 0)


def _rtt_ms(text: str) -> float:
    # SIPp's stat file writes response times as HH:MM:SS:uuuuuu (microseconds)
    match = re.match(r"(\d+):(\d+):(\d+):(\d+)", text or "")
    if not match:
        return float("nan")
    h, m, s, us = map(int, match.groups())
    return ((h * 60 + m) * 60 + s) * 1000 + us / 1000


def start_kamailio(port: int, workdir: Path) -> int:
    """The reference Kamailio of ../shared/bench, copied to a writable folder, on CPU 0."""
    shared = ROOT.parent / "shared" / "bench"
    if not shared.is_dir() or shutil.which("kamailio") is None:
        raise SystemExit("needs ../shared/bench and kamailio (apt-get install kamailio)")
    copy = workdir / "shared-bench"
    shutil.copytree(shared, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() or path.suffix == ".sh" else 0o644)
    out = subprocess.run(
        ["bash", str(copy / "kamailio" / "start.sh"), str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, TARGET_CPUS="0"),
    )
    if out.returncode != 0:
        for pid_file in (copy / "run").glob("*.pid"):  # it may be up but deaf: stop it
            with contextlib.suppress(ValueError, ProcessLookupError):
                for pid in reversed(process_tree(int(pid_file.read_text()))):
                    os.kill(pid, signal.SIGTERM)
        logs = "".join(p.read_text() for p in (copy / "run").glob("*.log"))
        raise SystemExit(f"kamailio did not start: {out.stderr[-2000:]} {logs[-3000:]}")
    return int(out.stdout.strip().splitlines()[-1])


def sweep(
    label: str, sipp: str, port: int, pid: int, rates: list[int], step_s: int
) -> tuple[int, float]:
    """The highest passing rate and the CPU microseconds per request at that rate."""
    best = 0
    best_us = float("nan")
    mem: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        pids = process_tree(pid)
        for rate in rates:
            cpu_before = cpu_seconds(pids)
            result = run_step(sipp, port, rate, step_s, Path(tmp))
            cpu = (cpu_seconds(pids) - cpu_before) / result["elapsed"] * 100
            passed = result["failed"] == 0 and result["achieved"] >= 0.95 * rate
            mem = {k: sum(memory_kb(p).get(k, 0) for p in pids) for k in ("VmRSS", "VmHWM")}
            print(
                f"METRIC options_udp target={label} offered={rate} "
                f"achieved={result['achieved']:.0f} "
                f"ok={result['ok']:.0f} failed={result['failed']:.0f} "
                f"retrans={result['retrans']:.0f} resp_ms={result['rtt']:.2f} "
                f"target_cpu_pct={cpu:.0f} "
                f"us_cpu_per_req={cpu / 100 / max(result['achieved'], 1) * 1e6:.1f} "
                f"rss_kb={mem.get('VmRSS', 0)} result={'pass' if passed else 'FAIL'}",
                flush=True,
            )
            if not passed:
                break
            best = rate
            best_us = cpu / 100 / max(result["achieved"], 1) * 1e6
    print(f"METRIC options_udp_best target={label} rate={best} rss_kb={mem.get('VmRSS', 0)}")
    return best, best_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rates", default="2000,5000,10000,12500,15000,20000")
    parser.add_argument("--step-s", type=int, default=5)
    parser.add_argument(
        "--kamailio",
        action="store_true",
        help="also run the same sweep against the reference Kamailio",
    )
    args = parser.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp missing: apt-get install sip-tester")
    rates = [int(r) for r in args.rates.split(",")][:8]
    step_s = min(args.step_s, 30)
    port = free_port()
    proc = start_switch(port)
    try:
        ours = sweep("pbx", sipp, port, proc.pid, rates, step_s)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    if args.kamailio:
        with tempfile.TemporaryDirectory() as tmp:
            kam_port = low_free_port()  # its start script's probe fails on high ports
            kam = start_kamailio(kam_port, Path(tmp))
            try:
                theirs = sweep("kamailio", sipp, kam_port, kam, rates, step_s)
            finally:
                for pid in reversed(process_tree(kam)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGTERM)
        rate_ratio = ours[0] / max(theirs[0], 1)
        cpu_ratio = ours[1] / theirs[1]
        print(
            f"METRIC options_udp_ratio best_rate_pbx_over_kamailio={rate_ratio:.2f}"
            f" cpu_per_req_pbx_over_kamailio={cpu_ratio:.2f}"
        )


if __name__ == "__main__":
    main()
