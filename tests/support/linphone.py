"""linphone (Debian 12's linphonec 5.1) as a real softphone in tests.

linphonec only runs its SIP stack while readline waits on a terminal: fed from a pipe it reads
commands but never registers, so each phone runs on a pseudo-terminal the test owns. It gets its
own linphonerc and HOME (its call-history and chat databases live under HOME) in the test's
folder, plays a WAV as its microphone and records what it hears to a WAV (``soundcard use
files``), and prints one line per event ("Call 1 with ... connected.") that the test waits on;
nothing sleeps. Its SIP trace goes to ``linphone.log``.

liblinphone 5.1 has no setting for the address it listens on: SIP and RTP sockets are bound to
the wildcard address, but the phone sends only to the switch (127.0.0.1) and names 127.0.0.1 in
its Contact and SDP, so all its traffic stays on loopback.
"""

from __future__ import annotations

import os
import pty
import queue
import re
import select
import subprocess
import threading
import time
from pathlib import Path

from tests.support.processes import stop

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
PROMPT = "linphonec> "


def linphonerc(
    *, user: str, password: str, switch: tuple[str, int], sip_port: int,
    rtp_ports: tuple[int, int],
) -> str:  # fmt: skip
    """The whole configuration: one account on the switch, UDP only, RTP in ``rtp_ports``."""
    host, port = switch
    return "\n".join(
        [
            "[sip]",
            f"sip_port={sip_port}",
            "sip_tcp_port=0",
            "sip_tls_port=0",
            "use_ipv6=0",
            "[rtp]",
            f"audio_rtp_port={rtp_ports[0]}-{rtp_ports[1]}",
            "[video]",
            "enabled=0",
            "[auth_info_0]",
            f"username={user}",
            f"passwd={password}",
            f"domain={host}",
            "[proxy_0]",
            f"reg_proxy=<sip:{host}:{port};transport=udp>",
            f"reg_identity=<sip:{user}@{host}>",
            "reg_expires=300",
            "reg_sendregister=1",
            "",
        ]
    )


class LinphonePhone:
    def __init__(
        self,
        linphonec: str,
        folder: Path,
        *,
        user: str,
        password: str,
        switch: tuple[str, int],
        sip_port: int,
        rtp_ports: tuple[int, int],
        source_wav: Path,
    ) -> None:
        self.folder = folder
        self.user = user
        self.switch = switch
        self.recording = folder / "heard.wav"
        (folder / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        config = folder / "linphonerc"
        config.write_text(
            linphonerc(
                user=user, password=password, switch=switch, sip_port=sip_port,
                rtp_ports=rtp_ports,
            )
        )  # fmt: skip
        self.log_path = folder / "linphone.log"
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        master, terminal = pty.openpty()
        self._master = master
        env = dict(os.environ, HOME=str(folder), TERM="dumb")
        self.proc = subprocess.Popen(
            [linphonec, "-c", str(config), "-d", "6", "-l", str(self.log_path)],
            stdin=terminal, stdout=terminal, stderr=terminal, cwd=folder, env=env,
            start_new_session=True,
        )  # fmt: skip
        os.close(terminal)
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_for(re.compile(re.escape(PROMPT.strip())), timeout=20)
        self.command("soundcard use files", expect=r"[Uu]sing wav files")
        self.command(f"play {source_wav}")
        self.command(f"record {self.recording}")

    def _pump(self) -> None:
        pending = ""
        while True:
            try:
                ready, _, _ = select.select([self._master], [], [], 0.5)
                if not ready:
                    if self.proc.poll() is not None:
                        break
                    continue
                data = os.read(self._master, 65536)
            except OSError:  # the terminal closes when linphonec exits
                break
            if not data:
                break
            pending += _ANSI_RE.sub("", data.decode(errors="replace"))
            *complete, pending = pending.split("\n")
            if pending.endswith(PROMPT):  # readline's prompt: waiting for the next command
                complete.append(pending)
                pending = ""
            for line in complete:
                self._queue.put(line)
        if pending:
            self._queue.put(pending)
        self._queue.put(None)

    def wait_for(self, pattern: re.Pattern[str], timeout: float, *, since: int = 0) -> str:
        """The first output line from index ``since`` on matching ``pattern``, within
        ``timeout``."""
        for line in self.lines[since:]:
            if pattern.search(line):
                return line
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"linphone {self.user}: no {pattern.pattern!r} in {timeout}s: "
                    f"{self.lines[-20:]}"
                ) from None
            if line is None:
                raise AssertionError(f"linphonec exited: {self.lines[-20:]}")
            self.lines.append(line)
            if pattern.search(line):
                return line

    def _drain(self) -> None:
        """Move the lines already read into ``lines`` (so a mark taken now is "from here on")."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._queue.put(None)
                return
            self.lines.append(line)

    def command(self, text: str, *, expect: str | None = None, timeout: float = 10) -> str:
        """Type ``text``; with ``expect``, the output line (after it) matching that regex."""
        self._drain()
        mark = len(self.lines)
        os.write(self._master, text.encode() + b"\n")
        if expect is None:
            return ""
        return self.wait_for(re.compile(expect), timeout, since=mark)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.command("quit")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        stop(self.proc)  # type: ignore[arg-type]
        os.close(self._master)
