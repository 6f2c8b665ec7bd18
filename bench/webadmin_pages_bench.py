#!/usr/bin/env python3
"""Web admin page times with a realistic office: 200 extensions, 10,000 call records.

    python bench/webadmin_pages_bench.py [--requests 300]

Runs the real app under waitress on 127.0.0.1 (pinned to CPU 0) and fetches the dashboard,
the extension list, the call history and /api/status with a logged-in session from this
process (CPU 1), one request at a time; prints the median and p95 per page. Target: the
dashboard and the extension list in under 50 ms median.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pbx.store.admins import setup_code  # noqa: E402
from pbx.store.calls import CallRecord, finish_call  # noqa: E402
from pbx.store.database import open_database  # noqa: E402
from pbx.store.extensions import add_extensions  # noqa: E402
from pbx.store.transaction import write_transaction  # noqa: E402

PAGES = ("/", "/extensions/", "/calls/", "/api/status", "/phones/")


def fill(db_path: Path) -> str:
    db = open_database(db_path)
    people = [(str(200 + i), f"Person {i}", f"password-{i:04d}-long") for i in range(200)]
    add_extensions(db, people, now=time.time())
    now = time.time()
    with write_transaction(db):
        for i in range(10_000):
            start = now - i * 60
            finish_call(db, CallRecord(
                call_id=f"bench-{i}", caller=str(200 + i % 200), callee=str(200 + (i * 7) % 200),
                started_at=start, answered_at=start + 5 if i % 3 else None, ended_at=start + 65,
                end_reason="caller hung up", status=200, caller_codec="PCMU", callee_codec="PCMU",
            ))  # fmt: skip
    code = setup_code(db)
    db.close()
    assert code is not None
    return code


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--port", type=int, default=18090)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        code = fill(db)
        command = [sys.executable, "-m", "webadmin", "--db", str(db), "--port", str(args.port)]
        if shutil.which("taskset"):
            command = ["taskset", "-c", "0", *command]
        web = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        try:
            assert web.stderr is not None
            for line in web.stderr:
                if "web admin on" in line:
                    break
            base = f"http://127.0.0.1:{args.port}"
            jar = http.cookiejar.CookieJar()
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
            page = opener.open(base + "/setup").read().decode()
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
            form = {"code": code, "username": "bench", "password": "bench-password-1",
                    "csrf_token": csrf}  # fmt: skip
            opener.open(base + "/setup", urllib.parse.urlencode(form).encode()).read()
            for path in PAGES:
                times = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    body = opener.open(base + path).read()
                    times.append((time.perf_counter() - started) * 1000)
                    assert body
                times.sort()
                print(
                    f"METRIC webadmin page={path} requests={args.requests} "
                    f"median_ms={statistics.median(times):.1f} "
                    f"p95_ms={times[int(len(times) * 0.95) - 1]:.1f} bytes={len(body)}",
                    flush=True,
                )
        finally:
            web.terminate()
            web.wait(timeout=10)


if __name__ == "__main__":
    main()
