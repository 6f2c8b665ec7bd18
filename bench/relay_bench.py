#!/usr/bin/env python3
"""RTP relay benchmark: our MediaRelay against rtpengine (user space), same probe, same run.

    .venv/bin/python bench/relay_bench.py [--streams 10,100,400] [--duration 10] [--no-rtpengine]
    .venv/bin/python bench/relay_bench.py --session-only     # the Python work per packet alone

For each stream count, three runs of the shared probe (../shared/bench/rtp_relay_probe.py, on
CPU 1): ``direct`` (no relay: the floor), ``pairs`` through a MediaRelay that runs in its own
process on CPU 0 with one call per stream (``--serve`` below: PCMU both legs, the probe's
sender latched on leg a, its receiver as leg b's SDP address), and ``rtpengine`` (started with
../shared/bench/rtpengine/start.sh, also on CPU 0). Each stream is 50 packets/s of 172 bytes.

Reported per relay: loss, added one-way latency (p50/p99 minus the direct run's), RFC 3550
jitter, the probe's relay CPU %, and CPU per relayed packet (the relay process's utime+stime
over the probe run divided by the packets received). For ours also the memory per call (RSS
growth while opening the sessions; kernel socket buffers are not in RSS). Loopback only,
bounded by --duration (the probe caps it at 120 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "bench"
PROBE = SHARED / "rtp_relay_probe.py"
RX_BASE, TX_BASE = 42000, 44000  # the probe's defaults; ours: its receiver and sender ports
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the relay process (--serve) ----------------------------------------------------------------


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def serve(sessions: int, port_range: tuple[int, int], pairs_file: Path) -> None:
    """Open one relayed call per stream, write the probe's pairs file, relay until told to stop
    (a line on stdin), then print the counters."""
    sys.path.insert(0, str(ROOT))
    from pbx.media.endpoint import MediaRelay

    before = rss_kb()
    relay = MediaRelay("127.0.0.1", port_range)
    handles = []
    pairs = []
    for i in range(sessions):
        handle = await relay.open_session(f"bench-{i}")
        tx, rx = TX_BASE + 2 * i, RX_BASE + 2 * i
        handle.update("a", ("127.0.0.1", tx), 0, "PCMU", None)
        handle.update("b", ("127.0.0.1", rx), 0, "PCMU", None)
        pairs.append({"tx_port": tx, "send_to": list(handle.local_address("a")), "rx_port": rx})
        handles.append(handle)
    pairs_file.write_text(json.dumps(pairs))
    opened = rss_kb()
    print(json.dumps({"ready": True, "pid": os.getpid(), "rss_kb_before": before,
                      "rss_kb_opened": opened}), flush=True)  # fmt: skip
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    totals: dict[str, int] = {}
    for handle in handles:
        for leg in handle.stats().values():
            for key, value in leg.items():
                if isinstance(value, int) and key != "local_port":
                    totals[key] = totals.get(key, 0) + value
    totals["rss_kb_end"] = rss_kb()
    await relay.close()
    print(json.dumps(totals), flush=True)


def serve_main(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    sys.path.insert(0, str(ROOT))
    from pbx.event_loop import loop_factory

    low, high = (int(p) for p in args.port_range.split("-"))
    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
        runner.run(serve(args.sessions, (low, high), Path(args.pairs)))


# --- the session alone (--session-only): the Python work per packet, no sockets ----------------


def session_only() -> None:
    """Best of five rounds of 200,000 calls of the relay function, per kind of packet."""
    sys.path.insert(0, str(ROOT))
    from pbx.media.rtp import RtpPacket
    from pbx.media.session import RelaySession

    phone_a, phone_b = ("127.0.0.1", 44000), ("127.0.0.1", 42000)

    def relay(encoding_b: str, pt_b: int) -> Any:
        session = RelaySession(a_port=46000, b_port=46002)
        session.update("a", phone_a, 0, "PCMU", 101)
        session.update("b", phone_b, pt_b, encoding_b, 101)
        return session.relay_function("a")

    def packet(ssrc: int) -> bytes:
        return bytes(
            RtpPacket(payload_type=0, sequence_number=1, timestamp=160, ssrc=ssrc,
                      payload=bytes(160))
        )  # fmt: skip

    restarted = relay("PCMU", 0)
    restarted(packet(1), phone_a, 1.0)
    restarted(packet(2), phone_a, 1.02)  # a new SSRC: from now on every packet is rewritten
    cases = [
        ("same codec, forwarded as is", relay("PCMU", 0), packet(1)),
        ("PCMU -> PCMA (translate + PT)", relay("PCMA", 8), packet(1)),
        ("after an SSRC change (seq/ts/SSRC rewritten)", restarted, packet(2)),
    ]
    rounds = 200_000
    for name, function, data in cases:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds):
                function(data, phone_a, 2.0)
            best = min(best, time.perf_counter() - started)
        print(f"{name:46s} {1e6 * best / rounds:.2f} µs per packet")


# --- the benchmark ----------------------------------------------------------------------------


def pinned(cpu: str, args: list[str]) -> list[str]:
    return ["taskset", "-c", cpu, *args] if shutil.which("taskset") else args


def tree_ticks(pid: int) -> int:
    """utime + stime of ``pid`` and its threads and children (as the probe counts them)."""
    total = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (proc / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(proc.name) == pid or int(fields[1]) == pid:
                total += int(fields[11]) + int(fields[12])
    return total


def probe(mode: str, streams: int, duration: float, *extra: str) -> dict[str, Any]:
    args = ["python3", str(PROBE), "--mode", mode, "--streams", str(streams),
            "--duration", str(duration), "--json", *extra]  # fmt: skip
    out = subprocess.run(pinned("1", args), capture_output=True, text=True, timeout=duration + 120)
    if out.returncode != 0:
        raise SystemExit(f"probe {mode} failed:\n{out.stdout}\n{out.stderr}")
    text = out.stdout[out.stdout.index("{") :]
    result: dict[str, Any] = json.loads(text)
    return result


def run_ours(streams: int, duration: float, port_range: str, workdir: Path) -> dict[str, Any]:
    pairs = workdir / f"pairs-{streams}.json"
    args = [sys.executable, str(Path(__file__).resolve()), "--serve", "--sessions", str(streams),
            "--port-range", port_range, "--pairs", str(pairs)]  # fmt: skip
    server = subprocess.Popen(
        pinned("0", args), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert server.stdin is not None and server.stdout is not None
    try:
        ready = json.loads(server.stdout.readline())
        pid = ready["pid"]
        ticks = tree_ticks(pid)
        result = probe("pairs", streams, duration, "--pairs", str(pairs), "--relay-pid", str(pid))
        result["cpu_s"] = (tree_ticks(pid) - ticks) / CLK_TCK
        server.stdin.write("stop\n")
        server.stdin.flush()
        totals = json.loads(server.stdout.readline())
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    result["relay"] = totals
    result["memory_per_call_kb"] = (ready["rss_kb_opened"] - ready["rss_kb_before"]) / streams
    result["rss_kb_opened"] = ready["rss_kb_opened"]
    result["rss_kb_end"] = totals["rss_kb_end"]
    return result


def start_rtpengine(ng_port: int) -> int:
    out = subprocess.run(
        ["bash", str(SHARED / "rtpengine" / "start.sh"), str(ng_port)],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"rtpengine did not start:\n{out.stderr}")
    return int(out.stdout.split()[-1])


def stop_rtpengine(ng_port: int) -> None:
    subprocess.run(["bash", str(SHARED / "rtpengine" / "stop.sh"), str(ng_port)],
                   capture_output=True, timeout=30, check=False)  # fmt: skip


def run_rtpengine(streams: int, duration: float, ng_port: int, pid: int) -> dict[str, Any]:
    ticks = tree_ticks(pid)
    result = probe(
        "rtpengine", streams, duration, "--ng", f"127.0.0.1:{ng_port}", "--relay-pid", str(pid)
    )
    result["cpu_s"] = (tree_ticks(pid) - ticks) / CLK_TCK
    return result


def row(label: str, result: dict[str, Any], direct: dict[str, Any]) -> str:
    received = max(1, result["received"])
    per_packet = 1e6 * result["cpu_s"] / received
    cpu = result.get("relay_cpu_pct")
    return (
        f"| {label} | {result['sent']:,} | {result['lost']} ({result['loss_pct']:.2f}%) | "
        f"{result['lat_p50_us'] - direct['lat_p50_us']:.0f} | "
        f"{result['lat_p99_us'] - direct['lat_p99_us']:.0f} | "
        f"{result['jitter_mean_us']:.0f} / {result['jitter_max_us']:.0f} | "
        f"{'na' if cpu is None else f'{cpu:.1f}%'} | {per_packet:.1f} | "
        f"{result['send_lag_p99_us']:.0f} |"
    )


def bench_main(args: argparse.Namespace) -> None:
    counts = [int(n) for n in args.streams.split(",")]
    results: dict[str, Any] = {"streams": counts, "runs": {}}
    ng_pid = None
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        try:
            if args.rtpengine:
                ng_pid = start_rtpengine(args.ng_port)
            for n in counts:
                runs: dict[str, Any] = {"direct": probe("direct", n, args.duration)}
                runs["pbx"] = run_ours(n, args.duration, args.port_range, Path(tmp))
                if ng_pid is not None:
                    runs["rtpengine"] = run_rtpengine(n, args.duration, args.ng_port, ng_pid)
                results["runs"][str(n)] = runs
                print(f"streams={n} done", file=sys.stderr, flush=True)
        finally:
            if ng_pid is not None:
                stop_rtpengine(args.ng_port)
    print(f"# relay_bench {time.strftime('%Y-%m-%d %H:%M')} duration={args.duration}s per run")
    print("| streams (pps) | relay | sent | lost | added p50 µs | added p99 µs | "
          "jitter mean / max µs | relay CPU | CPU µs/packet | probe send lag p99 µs |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in counts:
        runs = results["runs"][str(n)]
        direct = runs["direct"]
        print(f"| {n} ({n * 50:,}) | direct | {direct['sent']:,} | {direct['lost']} | "
              f"p50 {direct['lat_p50_us']:.0f} | p99 {direct['lat_p99_us']:.0f} | "
              f"{direct['jitter_mean_us']:.0f} / {direct['jitter_max_us']:.0f} | - | - | "
              f"{direct['send_lag_p99_us']:.0f} |")  # fmt: skip
        for label in ("pbx", "rtpengine"):
            if label in runs:
                print(f"| {n} ({n * 50:,}) " + row(label, runs[label], direct))
    for n in counts:
        ours = results["runs"][str(n)]["pbx"]
        print(f"pbx streams={n}: relay counters {ours['relay']}; memory per call "
              f"{ours['memory_per_call_kb']:.1f} KiB (RSS {ours['rss_kb_opened']} KiB opened, "
              f"{ours['rss_kb_end']} KiB at the end)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="10,100,400")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--port-range", default="46000-47999", help="our relay's RTP ports")
    parser.add_argument("--ng-port", type=int, default=22222)
    parser.add_argument("--no-rtpengine", dest="rtpengine", action="store_false")
    parser.add_argument("--json", help="also write every probe result to this file")
    parser.add_argument(
        "--session-only", action="store_true", help="time the pure relay function, no sockets"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--pairs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_main(args)
    elif args.session_only:
        session_only()
    else:
        bench_main(args)


if __name__ == "__main__":
    main()
