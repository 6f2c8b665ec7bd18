"""What the README tells a newcomer to do, for real: a fresh clone, `make run`, the web admin's
first-run setup, an extension made through the API, a phone (SIPp) registering with it, and
everything stopping within five seconds of SIGTERM.

`make run` builds its own virtual environment in the clone (the first time takes a minute or
two: that is part of what a newcomer waits for). Ports come from the environment so the test
never needs 5060 or 8080. SIPp answers only MD5, so the switch is told to offer MD5.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.support.sipp import run_sipp
from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


class Output:
    """The lines a background process writes, read by a thread; tests wait on patterns."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern)
        for line in self.lines:
            if match := regex.search(line):
                return match
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no {pattern!r}: {''.join(self.lines)[-3000:]}") from None
            if line is None:
                raise AssertionError(f"make run ended: {''.join(self.lines)[-3000:]}")
            self.lines.append(line)
            if match := regex.search(line):
                return match


def test_fresh_clone_make_run_setup_register_and_stop(tmp_path: Path) -> None:
    sipp = require_tool("sipp", "sip-tester")
    require_tool("git", "git")
    require_tool("make", "make")
    clone = tmp_path / "switchboard"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    shutil.rmtree(clone / ".venv", ignore_errors=True)
    env = dict(
        os.environ,
        SWITCHBOARD_SIP_PORT="0",
        SWITCHBOARD_WEB_PORT="0",
        PYTHONUNBUFFERED="1",
    )
    env.pop("VIRTUAL_ENV", None)
    make = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, text=True, start_new_session=True,
    )  # fmt: skip
    out = Output(make)
    try:
        sip_port = int(out.wait_for(r"listening on udp/tcp 127\.0\.0\.1:(\d+)", 600).group(1))
        code = out.wait_for(r"setup code is (\S+)", 60).group(1)
        web = out.wait_for(r"web admin on (http://\S+)/", 60).group(1)
        out.wait_for(r"Line gateway registered", 60)
        # The README's "try an inbound call" finds the simulated line with no options.
        line = subprocess.run(
            [str(clone / ".venv/bin/pbx"), "line", "status"], cwd=clone, env=env,
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (line.returncode, line.stdout) == (0, "simulated line: idle (on hook)\n"), line

        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        csrf = json.load(browser.open(web + "/api/csrf", timeout=10))["csrf_token"]
        form = {"code": code, "username": "boss", "password": "a long admin password",
                "csrf_token": csrf}  # fmt: skip
        browser.open(web + "/setup", urllib.parse.urlencode(form).encode(), timeout=10).read()
        csrf = json.load(browser.open(web + "/api/csrf", timeout=10))["csrf_token"]  # new session
        request = urllib.request.Request(
            web + "/api/extensions", data=json.dumps({"number": "201", "name": "Me"}).encode(),
            headers={"Content-Type": "application/json", "X-CSRF-Token": csrf}, method="POST",
        )  # fmt: skip
        created = json.load(browser.open(request, timeout=10))
        password = created["password"]

        users = tmp_path / "users.csv"
        users.write_text(f"SEQUENTIAL\n201;[authentication username=201 password={password}];\n")
        registered = run_sipp(
            sipp, "register_auth", ("127.0.0.1", sip_port), calls=1, rate=1, workdir=tmp_path,
            extra=("-inf", str(users), "-key", "expires", "600", "-key", "contact_port", "5999"),
        )  # fmt: skip
        assert registered.successful == 1, registered.output[-2000:]
        status = json.load(browser.open(web + "/api/status", timeout=10))
        assert [p["extension"] for p in status["phones"]] == ["201"]
    finally:
        started = time.monotonic()
        os.killpg(make.pid, signal.SIGTERM)  # what systemd or a terminal's Ctrl-C does
        try:
            make.wait(timeout=30)
        finally:
            if make.poll() is None:
                os.killpg(make.pid, signal.SIGKILL)
        stopped_in = time.monotonic() - started
    assert stopped_in < 5, f"stopping took {stopped_in:.1f} s"
    leftovers = subprocess.run(["pgrep", "-f", str(clone)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes outlived make run"
