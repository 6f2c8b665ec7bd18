#!/usr/bin/env python3
"""REGISTER-with-digest benchmark: the shared SIPp harness against ``pbx serve``, and the
reference Kamailio registrar in the same run.

    python bench/register_bench.py [--kamailio] [--reg-rates 1000,2000,...] [--storm 500]

The switch runs pinned to CPU 0 with the harness's 1000 users imported; SIPp runs on CPU 1.
The harness (../shared/bench/run.sh, phase "reg") sweeps offered rates and reports the
highest rate with < 0.1% failures, mean and p99 response time, and CPU. Then a storm: N
phones re-register at once (SIPp sends all N within 10 ms) and we time until the last 200.
The switch offers MD5 only here: SIPp 3.6.1 cannot answer SHA-256 (see tests/interop).
Bounded: the harness caps each phase at ~2 minutes; loopback only.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from options_bench import memory_kb, process_tree, start_kamailio  # noqa: E402
from switch_runner import SHARED, start_switch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STORM_SCENARIO = ROOT / "tests" / "interop" / "scenarios" / "register_auth.xml"


def harness(port: int, pid: int, label: str, rates: str, step_s: float) -> list[str]:
    out = subprocess.run(
        ["bash", str(SHARED / "run.sh"), "127.0.0.1", str(port), "--label", label,
         "--phases", "reg", "--reg-rates", rates, "--step-s", str(step_s)],
        capture_output=True, text=True, timeout=600, env=dict(os.environ, TARGET_PID=str(pid)),
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("METRIC")]
    if not lines:
        print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
    return lines


def storm(port: int, phones: int, workdir: Path) -> tuple[int, int, float]:
    """``phones`` registrations offered within 10 ms; (ok, failed, seconds to the last 200)."""
    users = workdir / "storm.csv"
    users.write_text(
        "SEQUENTIAL\n"
        + "".join(
            f"{u};[authentication username={u} password=pw{u}-Bench-k7Qz];\n"
            for u in range(1000, 1000 + phones)
        )
    )
    stats = workdir / "storm-stats.csv"
    cpus = ["taskset", "-c", "1"] if shutil.which("taskset") else []
    started = time.monotonic()
    subprocess.run(
        [*cpus, "sipp", f"127.0.0.1:{port}", "-sf", str(STORM_SCENARIO), "-inf", str(users),
         "-key", "expires", "3600", "-key", "contact_port", "5999", "-i", "127.0.0.1",
         "-m", str(phones), "-r", str(phones), "-rp", "10", "-l", str(phones),
         "-timeout", "30s", "-timeout_error", "-nostdin", "-trace_stat", "-stf", str(stats),
         "-fd", "1"],
        capture_output=True, text=True, timeout=60, cwd=workdir,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    rows = [r for r in stats.read_text().splitlines() if r.strip()] if stats.exists() else []
    if len(rows) < 2:
        return (0, phones, elapsed)
    row = dict(zip(rows[0].split(";"), rows[-1].split(";"), strict=False))
    return (int(row["SuccessfulCall(C)"]), int(row["FailedCall(C)"]), elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reg-rates", default="1000,2000,3000,4000,5000,6000,8000")
    parser.add_argument("--step-s", type=float, default=5.0)
    parser.add_argument("--storm", type=int, default=500)
    parser.add_argument("--kamailio", action="store_true", help="also run the reference")
    parser.add_argument("--port", type=int, default=5062)
    args = parser.parse_args()
    if shutil.which("sipp") is None or not SHARED.is_dir():
        raise SystemExit("needs sipp (apt-get install sip-tester) and ../shared/bench")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc = start_switch(args.port, workdir)
        try:
            before = memory_kb(proc.pid)
            for line in harness(args.port, proc.pid, "pbx", args.reg_rates, args.step_s):
                print(line.replace("METRIC reg", "METRIC pbx_reg", 1), flush=True)
            ok, failed, seconds = storm(args.port, args.storm, workdir)
            print(
                f"METRIC pbx_storm phones={args.storm} ok={ok} failed={failed} "
                f"last_200_s={seconds:.2f}",
                flush=True,
            )
            after = memory_kb(proc.pid)
            print(
                f"METRIC pbx_memory rss_start_mb={before['VmRSS'] / 1024:.1f} "
                f"peak_rss_mb={after['VmHWM'] / 1024:.1f}",
                flush=True,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        if args.kamailio:
            kam_port = 5071
            pid = start_kamailio(kam_port, workdir)
            try:
                for line in harness(kam_port, pid, "kamailio", args.reg_rates, args.step_s):
                    print(line.replace("METRIC reg", "METRIC kamailio_reg", 1), flush=True)
                ok, failed, seconds = storm(kam_port, args.storm, workdir)
                print(
                    f"METRIC kamailio_storm phones={args.storm} ok={ok} failed={failed} "
                    f"last_200_s={seconds:.2f}",
                    flush=True,
                )
            finally:
                for child in reversed(process_tree(pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGTERM)


if __name__ == "__main__":
    main()
