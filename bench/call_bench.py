#!/usr/bin/env python3
"""Calls through the switch: the shared SIPp harness (phases "calls" and "conc") against
``pbx serve``, and the reference Kamailio proxy in the same run.

    python bench/call_bench.py [--kamailio] [--call-rates 50,100,200,...] [--calls 10000]
        [--step-s 5] [--phases calls,conc]

Calls are authenticated INVITEs (407) from the harness's UAC to its registered UAS, held
--hold-ms, then BYE; the switch anchors the media of each (relay sockets opened, SDP
rewritten), though the harness sends no RTP. The switch runs on CPU 0 with MD5 offered
(SIPp cannot do SHA-256), SIPp on CPU 1. Bounded: each harness phase caps itself (~2 min).
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from options_bench import memory_kb, process_tree, start_kamailio  # noqa: E402
from switch_runner import LOG_TAIL, SHARED, start_switch  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def harness(port: int, pid: int, label: str, args: argparse.Namespace, auth: bool) -> None:
    command = ["bash", str(SHARED / "run.sh"), "127.0.0.1", str(port), "--label", label,
               "--phases", args.phases, "--call-rates", args.call_rates,
               "--calls", str(args.calls), "--hold-ms", str(args.hold_ms),
               "--step-s", str(args.step_s)]  # fmt: skip
    if auth:
        command.append("--invite-auth")
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=900,
        env=dict(os.environ, TARGET_PID=str(pid)),
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("METRIC")]
    if not lines:
        print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
    for line in lines:
        print(line.replace("METRIC ", f"METRIC {label}_", 1), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--call-rates", default="50,100,200,300,500,750,1000")
    parser.add_argument("--calls", type=int, default=10000)
    parser.add_argument("--hold-ms", type=int, default=1000)
    parser.add_argument("--kamailio", action="store_true")
    parser.add_argument(
        "--step-s", type=float, default=5.0,
        help="offered seconds per sweep step (40 fills the 32 s transaction window)",
    )  # fmt: skip
    parser.add_argument("--phases", default="calls,conc", help="harness phases to run")
    parser.add_argument("--port", type=int, default=5063)
    args = parser.parse_args()
    if shutil.which("sipp") is None or not SHARED.is_dir():
        raise SystemExit("needs sipp (apt-get install sip-tester) and ../shared/bench")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc = start_switch(args.port, workdir, "--rtp-ports", "20000-25999")
        try:
            before = memory_kb(proc.pid)
            harness(args.port, proc.pid, "pbx", args, auth=True)
            after = memory_kb(proc.pid)
            print(
                f"METRIC pbx_memory rss_start_mb={before['VmRSS'] / 1024:.1f} "
                f"peak_rss_mb={after['VmHWM'] / 1024:.1f}",
                flush=True,
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
            if LOG_TAIL:
                print("switch log, last lines:", *LOG_TAIL, sep="\n  ", file=sys.stderr)
        if args.kamailio:
            os.environ["KAM_DEFINES"] = "-A WITH_INVITE_AUTH"  # challenge INVITEs like we do
            pid = start_kamailio(5072, workdir)
            try:
                harness(5072, pid, "kamailio", args, auth=True)
            finally:
                for child in reversed(process_tree(pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGTERM)


if __name__ == "__main__":
    main()
