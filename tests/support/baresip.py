"""baresip (Debian's baresip 1.0) as a real softphone in tests, driven over ctrl_tcp.

Each phone gets its own config folder, SIP and RTP ports on 127.0.0.1 (or a namespace's address),
a WAV file it plays
as its microphone (aufile) and a folder where sndfile records what it sent and received.
Events (CALL_ESTABLISHED, CALL_CLOSED...) are read from the control socket; nothing sleeps.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def _netstring(obj: dict[str, Any]) -> bytes:
    data = json.dumps(obj).encode()
    return str(len(data)).encode() + b":" + data + b","


class BaresipPhone:
    def __init__(
        self,
        baresip: str,
        folder: Path,
        *,
        user: str,
        password: str,
        switch: tuple[str, int],
        sip_port: int,
        ctrl_port: int,
        rtp_ports: tuple[int, int],
        source_wav: Path,
        host: str = "127.0.0.1",
        prefix: tuple[str, ...] = (),
        codecs: tuple[str, ...] = ("g711",),
        answermode: str = "auto",
    ) -> None:
        """``host``: the address the phone listens and sends from; ``prefix``: a command run in
        front of baresip (``ip netns exec NAME`` puts it in a network namespace); ``codecs``:
        baresip's codec modules in order of preference (``g722``, ``g711``); ``answermode``
        "manual" lets a call ring until the test sends ``accept``."""
        self.folder = folder
        self.user = user
        self.recordings = folder / "rec"
        self.recordings.mkdir(parents=True, exist_ok=True)
        self.ctrl_port = ctrl_port
        self.host = host
        (folder / "config").write_text(
            "\n".join(
                [
                    "poll_method epoll",
                    f"sip_listen {host}:{sip_port}",
                    "sip_transports udp",
                    f"net_interface {host}",
                    "audio_player alsa,null",
                    f"audio_source aufile,{source_wav}",
                    "audio_alert alsa,null",
                    f"rtp_ports {rtp_ports[0]}-{rtp_ports[1]}",
                    "module_path /usr/lib/baresip/modules",
                    *(f"module {codec}.so" for codec in codecs),
                    "module aufile.so",
                    "module sndfile.so",
                    "module alsa.so",
                    "module_app account.so",
                    "module_app menu.so",
                    "module_app ctrl_tcp.so",
                    f"ctrl_tcp_listen {host}:{ctrl_port}",
                    f"snd_path {self.recordings}",
                    "",
                ]
            )
        )
        host, port = switch
        (folder / "accounts").write_text(
            f"<sip:{user}@{host}:{port}>;auth_pass={password};answermode={answermode};regint=300\n"
        )
        self.log_path = folder / "baresip.log"
        self._log = self.log_path.open("w")
        # -s: the SIP trace goes to the log, so the test can read the SDP the phone received.
        self.proc = subprocess.Popen(
            [*prefix, baresip, "-f", str(folder), "-s", "-t", "120"],
            cwd=folder, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        self._sock = self._connect()

    def _connect(self) -> socket.socket:
        deadline = time.monotonic() + 15
        while True:
            try:
                return socket.create_connection((self.host, self.ctrl_port), timeout=1)
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError(f"baresip did not start: {self.log()[-2000:]}") from None
                time.sleep(0.05)  # the process is still starting: poll its port

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def command(self, command: str, params: str = "") -> None:
        self._sock.sendall(_netstring({"command": command, "params": params, "token": command}))

    def wait_event(self, kind: str, timeout: float) -> dict[str, Any]:
        """The first event of type ``kind`` (already received or arriving within ``timeout``)."""
        for event in self.events:
            if event.get("type") == kind:
                return event
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._sock.settimeout(max(0.05, deadline - time.monotonic()))
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            self._buffer += data
            for message in self._parse():
                self.events.append(message)
                if message.get("type") == kind:
                    return message
        raise AssertionError(f"{self.user}: no {kind} in {timeout}s; events: {self.events}")

    def wait_count(self, kind: str, count: int, timeout: float) -> list[dict[str, Any]]:
        """The first ``count`` events of type ``kind``, waiting up to ``timeout`` for them."""
        deadline = time.monotonic() + timeout
        while True:
            found = [event for event in self.events if event.get("type") == kind]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() >= deadline or not self._receive(deadline):
                raise AssertionError(
                    f"{self.user}: {len(found)} of {count} {kind} in {timeout}s; {self.events}"
                )

    def _receive(self, deadline: float) -> bool:
        """Read what the control socket has until ``deadline``; False when it closed."""
        self._sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = self._sock.recv(65536)
        except TimeoutError:
            return True
        if not data:
            return False
        self._buffer += data
        self.events.extend(self._parse())
        return True

    def _parse(self) -> list[dict[str, Any]]:
        out = []
        while True:
            length, colon, rest = self._buffer.partition(b":")
            if not colon or not length.isdigit() or len(rest) < int(length) + 1:
                return out
            size = int(length)
            out.append(json.loads(rest[:size]))
            self._buffer = rest[size + 1 :]

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.command("quit")
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._sock.close()
        self._log.close()
