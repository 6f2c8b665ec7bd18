"""linphone (Debian 12's linphonec 5.1, package linphone-cli) as a real softphone in tests.

linphonec runs its SIP stack only from readline's idle hook, which fires only while readline
waits on a terminal: fed from a pipe it reads the commands but never registers. So each phone
runs on a pseudo-terminal the test owns. It gets its own linphonerc and HOME in the test's
folder (its call-history and chat databases go to HOME/.local/share/linphone, which must exist
or the core never starts), plays a WAV as its microphone and records what it hears to a WAV
(``soundcard use files``: no sound card needed), and prints one line per event ("Call 1 with
sip:202@127.0.0.1 connected.") that the test waits on; nothing sleeps. Its SIP trace and media
log go to ``linphone.log``.

liblinphone 5.1 has no setting for the address it listens on: its SIP and RTP sockets are bound
to the wildcard address. It sends only to the switch (127.0.0.1) and names 127.0.0.1 in its
Contact and SDP (the address of its route to the switch), so all its traffic stays on loopback.
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

from tests.support.phone_peer import Office, tone_wav, wait_until
from tests.support.sipp import free_port
from tests.support.tools import require_tool

PROMPT = "linphonec> "
CLIENT_TONE_HZ = 440
_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
_CONNECTED_RE = re.compile(r"^Call (\d+) with (\S+) connected\.")
_MEDIA_RE = re.compile(r"^Media streams established with \S+ for call (\d+)")
_ENDED_RE = re.compile(r"^Call \d+ with \S+ ended")


def linphonerc(
    *, user: str, password: str, switch: tuple[str, int], sip_port: int,
    rtp_ports: tuple[int, int],
) -> str:  # fmt: skip
    """The whole configuration: one account registered to the switch, UDP only, audio only,
    RTP from ``rtp_ports``. Nothing about digest: linphone answers the switch's MD5 default
    (and SHA-256) by itself."""
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
            "capture=0",
            "display=0",
            "automatically_initiate=0",
            "automatically_accept=0",
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
        self.host = switch[0]
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
        self._master, terminal = pty.openpty()
        env = dict(os.environ, HOME=str(folder), TERM="dumb")
        self.proc = subprocess.Popen(
            [linphonec, "-c", str(config), "-d", "6", "-l", str(self.log_path)],
            stdin=terminal, stdout=terminal, stderr=terminal, cwd=folder, env=env,
            start_new_session=True,
        )  # fmt: skip
        os.close(terminal)
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()
        self.wait_for(re.compile(re.escape(PROMPT)), timeout=20)
        self.command("soundcard use files", expect=r"^Using wav files instead of soundcard")
        self.command(f"play {source_wav}")
        self.record_to(self.recording)

    # -- the terminal ------------------------------------------------------------------------

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
            if pending.endswith(PROMPT):  # readline waits for the next command
                complete.append(pending)
                pending = ""
            for line in complete:
                self._queue.put(line)
        if pending:
            self._queue.put(pending)
        self._queue.put(None)

    def _drain(self) -> None:
        """Move the lines already read into ``lines``, so a mark taken now means "from here"."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is None:
                self._queue.put(None)
                return
            self.lines.append(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float, *, since: int = 0) -> str:
        """The first output line from index ``since`` on that matches, within ``timeout``."""
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
                self._queue.put(None)
                raise AssertionError(f"linphonec exited: {self.lines[-20:]}")
            self.lines.append(line)
            if pattern.search(line):
                return line

    def command(self, text: str, *, expect: str | None = None, timeout: float = 10) -> str:
        """Type ``text``; with ``expect``, the output line after it that matches that regex."""
        self._drain()
        mark = len(self.lines)
        os.write(self._master, text.encode() + b"\n")
        if expect is None:
            return ""
        return self.wait_for(re.compile(expect), timeout, since=mark)

    # -- the phone ---------------------------------------------------------------------------

    def record_to(self, path: Path) -> None:
        """Where the next audio stream records what it hears (linphone opens a new stream at
        every hold and resume, so a call can be recorded in parts)."""
        self.command(f"record {path}")

    def call(self, user: str, timeout: float = 20) -> int:
        """Dial ``user`` at the switch; the call's id once it is connected with media."""
        self._drain()
        mark = len(self.lines)
        self.command(f"call sip:{user}@{self.host}")
        line = self.wait_for(_CONNECTED_RE, timeout, since=mark)
        match = _CONNECTED_RE.search(line)
        assert match is not None
        self.wait_for(_MEDIA_RE, timeout, since=mark)
        return int(match.group(1))

    def wait_registered(self, timeout: float = 20) -> None:
        """Until the 200 to its REGISTER has come (the switch sends it once the registration is
        stored, so its database shows it from then on); linphonec prints nothing for it."""
        wait_until(
            lambda: "to [LinphoneRegistrationOk]" in self.log(), timeout, f"{self.user} registered"
        )

    def answer_automatically(self) -> None:
        self.command("autoanswer enable", expect=r"^Auto answer enabled")

    def wait_answered(self, timeout: float = 20) -> int:
        """An incoming call answered (auto-answer) and its media up: its id."""
        line = self.wait_for(_CONNECTED_RE, timeout)
        match = _CONNECTED_RE.search(line)
        assert match is not None
        self.wait_for(_MEDIA_RE, timeout)
        return int(match.group(1))

    def wait_ended(self, timeout: float = 10) -> str:
        return self.wait_for(_ENDED_RE, timeout)

    def hold(self, timeout: float = 10) -> None:
        self.command("pause", expect=r"^Call \d+ with \S+ is now paused\.", timeout=timeout)

    def resume(self, timeout: float = 10) -> None:
        self.command("resume", expect=_MEDIA_RE.pattern, timeout=timeout)

    def send_dtmf(self, digits: str) -> None:
        """RFC 4733 events (linphone's default), one a second: linphonec sends a line of
        digits as DTMF, sleeping a second after each."""
        assert re.fullmatch(r"[0-9#*]+", digits), digits
        self.command(digits)

    def hang_up(self, timeout: float = 10) -> str:
        """``terminate``: the "Call N with ... ended (reason)." line."""
        return self.command("terminate", expect=_ENDED_RE.pattern, timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """``quit`` (ends any call, unregisters), then SIGTERM/SIGKILL if it is still there."""
        if self.proc.poll() is None:
            try:
                os.write(self._master, b"quit\n")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        os.close(self._master)


def start_linphone(
    office: Office, tmp_path: Path, user: str, *, rtp_ports: tuple[int, int],
    hz: int = CLIENT_TONE_HZ, seconds: float = 120.0,
) -> LinphonePhone:  # fmt: skip
    """linphonec registered to ``office`` as ``user``, playing ``hz`` as its microphone."""
    linphonec = require_tool("linphonec", "linphone-cli")
    folder = tmp_path / f"linphone-{user}"
    folder.mkdir(parents=True, exist_ok=True)
    microphone = tone_wav(folder / "mic.wav", hz, seconds)
    return LinphonePhone(
        linphonec, folder, user=user, password=office.passwords[user], switch=office.switch,
        sip_port=free_port(), rtp_ports=rtp_ports, source_wav=microphone,
    )  # fmt: skip
