"""pjsua2 (PJSIP 2.15, PyPI ``pjsua2-python``) as a real softphone in tests.

The phone runs in a child process (tests/support/pjsua2_agent.py) so that a crash or a thread
inside pjsip cannot take pytest down with it, and the test stops it like any other process.
This side sends JSON-line commands and waits on the JSON-line events the agent prints; it never
sleeps. pjsip's log (with each SIP message it sent and received) is in ``log_path``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import stop

_AGENT = Path(__file__).with_name("pjsua2_agent.py")
Event = dict[str, Any]


def require_pjsua2() -> None:
    """Skip without the pjsua2 module (a dev dependency), fail in CI like require_tool."""
    try:
        import pjsua2  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        import os

        message = "pjsua2 not importable (pip install pjsua2-python)"
        if os.environ.get("SWITCHBOARD_REQUIRE_TOOLS") == "1":
            pytest.fail(message + " and SWITCHBOARD_REQUIRE_TOOLS=1", pytrace=False)
        pytest.skip(message)


class Pjsua2Phone:
    def __init__(
        self,
        folder: Path,
        *,
        sip_port: int,
        rtp_ports: tuple[int, int],
        mic_wav: Path,
        codec_priorities: dict[str, int] | None = None,
    ) -> None:
        """``rtp_ports``: the inclusive range its RTP (and RTCP, port + 1) may use;
        ``codec_priorities``: pjsua2 codec ids (``PCMU/8000/1``) to priorities 0-255."""
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.log_path = folder / "pjsua2.log"
        self.sip_port = sip_port
        config = {
            "sip_port": sip_port, "rtp_ports": list(rtp_ports), "mic_wav": str(mic_wav),
            "record_dir": str(folder), "log": str(self.log_path),
            "codec_priorities": codec_priorities or {},
        }  # fmt: skip
        self._stderr = (folder / "agent.stderr").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(_AGENT), json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )  # fmt: skip
        self.events: list[Event] = []
        self._queue: queue.Queue[Event | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_event("ready", timeout=20)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with (self.folder / "events.jsonl").open("w") as record:
            for line in self.proc.stdout:
                record.write(line)
                record.flush()
                self._queue.put(json.loads(line))
        self._queue.put(None)

    def send(self, cmd: str, **fields: Any) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.proc.stdin.flush()

    def command(self, cmd: str, timeout: float = 10, **fields: Any) -> None:
        """Send ``cmd`` and wait until the agent carried it out (or fail with its error)."""
        self.send(cmd, **fields)
        event = self.wait_event(
            "done", timeout, lambda e: e.get("cmd") == cmd, also=("error",), after=len(self.events)
        )
        assert event["event"] == "done", event

    def wait_event(
        self,
        kind: str,
        timeout: float,
        match: Callable[[Event], bool] = lambda e: True,
        *,
        also: tuple[str, ...] = (),
        after: int = 0,
    ) -> Event:
        """The first event ``kind`` (or one of ``also``) from index ``after`` on that ``match``es
        (already received or arriving within ``timeout``)."""
        kinds = (kind, *also)

        def wanted(event: Event) -> bool:
            return event["event"] in also or (event["event"] == kind and match(event))

        for event in self.events[after:]:
            if wanted(event):
                return event
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if event is None:
                raise AssertionError(f"pjsua2 agent exited: {self.stderr()[-2000:]}")
            self.events.append(event)
            if wanted(event):
                return event
        raise AssertionError(f"pjsua2: no {kinds} in {timeout}s; events: {self.events}")

    def register(self, user: str, password: str, registrar: tuple[str, int], **opts: Any) -> Event:
        """Register ``user`` at ``registrar``; the final registration event (check its code)."""
        host, port = registrar
        after = len(self.events)
        self.command("register", user=user, password=password, registrar=f"{host}:{port}", **opts)
        return self.wait_event("registered", 15, also=("unregistered",), after=after)

    def call_state(self, state: str, timeout: float, after: int = 0) -> Event:
        return self.wait_event("call_state", timeout, lambda e: e["state"] == state, after=after)

    def media(self, status: str, timeout: float, after: int = 0) -> Event:
        return self.wait_event("media", timeout, lambda e: e["status"] == status, after=after)

    def received_packets(self) -> int:
        """RTP packets received so far in the current call, as of the last ``audio`` event."""
        counts = [e["rx_packets"] for e in self.events if e["event"] == "audio"]
        return counts[-1] if counts else 0

    def wait_audio(self, packets: int, timeout: float) -> Event:
        """Until ``packets`` more RTP packets arrived than now (50 a second for G.711)."""
        goal = self.received_packets() + packets
        return self.wait_event("audio", timeout, lambda e: e["rx_packets"] >= goal)

    def recording(self, timeout: float = 10) -> Path:
        """The WAV of what the phone heard in its call, once pjsua has closed the file."""
        event = self.wait_event("recording", timeout)
        assert event["complete"], f"pjsua2 did not finish writing {event['path']}"
        return Path(event["path"])

    def dtmf_digits(self, count: int, timeout: float) -> str:
        """The first ``count`` digits the phone received (RFC 4733 or SIP INFO)."""
        deadline = time.monotonic() + timeout
        while len(digits := [e for e in self.events if e["event"] == "dtmf"]) < count:
            after = self.events.index(digits[-1]) + 1 if digits else 0
            self.wait_event("dtmf", max(0.0, deadline - time.monotonic()), after=after)
        return "".join(e["digit"] for e in digits[:count])

    def stderr(self) -> str:
        self._stderr.flush()
        return (self.folder / "agent.stderr").read_text(errors="replace")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> int:
        """Ask the agent to quit (it hangs up and destroys pjsip), else SIGTERM/SIGKILL."""
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.send("quit")
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        status = stop(self.proc)  # type: ignore[arg-type]
        self._stderr.close()
        with contextlib.suppress(queue.Empty):  # the last events, up to the end of its output
            while (event := self._queue.get(timeout=5)) is not None:
                self.events.append(event)
        return status
