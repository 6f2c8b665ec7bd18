"""Twinkle (Debian's twinkle-console 1.10) as a real softphone in tests, driven over stdin/stdout.

twinkle-console keeps everything in ``$HOME/.twinkle`` and takes no options but profile names
(1.10.2 has no ``-f``, ``--ip`` or ``--sip-port``: every argument is read as a profile), so each
phone gets its own HOME with its system settings (``twinkle.sys``: SIP port, RTP base port,
audio devices) and one user profile. It binds its SIP and RTP ports on every address (0.0.0.0)
and picks the address it advertises per destination (the source address the kernel routes to
the switch: its "Local IP: 255.255.255.255" means exactly that), so a switch on 127.0.0.1 makes
it a loopback phone, in its Via, Contact and SDP.

Audio without a sound card: ``$HOME/.asoundrc`` defines two ALSA ``file`` PCMs over the ``null``
device. The speaker writes what twinkle plays to a raw file (one per opening: twinkle reopens
the device after hold). The microphone reads its ``infile``, a FIFO this module feeds with a
tone in real time: the ``null`` device has no clock (a capture returns at once), so the FIFO's
writer is the microphone's clock, as a sound card would be. That holds because twinkle reads one
20 ms frame per read, the size the writer writes: ALSA's file PCM does one read() of the infile
per transfer and fills what it did not get with the slave's silence, so a reader asking for more
(arecord's default periods) gets the tone interleaved with silence, faster than real time
(``arecord --period-size=160`` from this FIFO takes 1.98 s for 2 s, the full tone).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import socket
import subprocess
import threading
import time
import wave
from pathlib import Path
from typing import IO

from tests.support.processes import stop

_RATE = 8000  # G.711: twinkle opens the sound devices at the codec's rate
_FRAME_MS = 20
_CHUNK = _RATE * _FRAME_MS // 1000 * 2  # bytes of 16-bit mono audio per frame
_LINES = 3  # twinkle's call lines; line N uses RTP port base + 2 * N (and RTCP + 1)

ESTABLISHED = re.compile(r"Line \d+: call established")
FAR_END_ANSWERED = re.compile(r"Line \d+: far end answered call")
CALL_ENDED = re.compile(r"Line \d+: call ended")
REINVITE_OK = re.compile(r"Line \d+: re-INVITE successful")
DTMF_SUPPORTED = re.compile(r"Line \d+: far end supports DTMF telephone event")


def _recording_rate(recording: Path) -> int:
    return int(recording.name.split("-")[1].split(".")[0])


def _opening_index(recording: Path) -> int:
    """ALSA's file PCM names the Nth reopening of an existing file NAME.000N."""
    suffix = recording.name.rsplit(".", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


class MicPacer:
    """Feeds 16-bit mono samples into a FIFO at the real-time rate, looping them.

    The FIFO is opened read-write and non-blocking, so the writer never waits for twinkle to open
    (or reopen) its microphone; frames nobody reads are dropped once the small pipe is full,
    as a sound card drops what no application captures."""

    def __init__(self, fifo: Path, samples: bytes) -> None:
        os.mkfifo(fifo)
        self._fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._fd, fcntl.F_SETPIPE_SZ, 4096)  # ~1/4 s of stale audio at most
        usable = len(samples) // _CHUNK * _CHUNK
        assert usable, "the microphone needs at least one 20 ms frame"
        self._samples = samples[:usable]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        offset = 0
        due = time.monotonic()
        while not self._stopping.is_set():
            # BlockingIOError: twinkle is not capturing (no call, on hold); the frame is lost.
            with contextlib.suppress(BlockingIOError):
                os.write(self._fd, self._samples[offset : offset + _CHUNK])
            offset = (offset + _CHUNK) % len(self._samples)
            due += _FRAME_MS / 1000
            # The microphone's sample clock: wait for the next frame's time.
            self._stopping.wait(max(0.0, due - time.monotonic()))

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        os.close(self._fd)


def read_mono_wav(path: Path) -> bytes:
    """The frames of an 8 kHz mono 16-bit WAV (what the microphone plays)."""
    with wave.open(str(path)) as w:
        shape = (w.getframerate(), w.getnchannels(), w.getsampwidth())
        assert shape == (_RATE, 1, 2), f"{path}: {shape}, expected 8000 Hz mono 16-bit"
        frames: bytes = w.readframes(w.getnframes())
        return frames


def _asoundrc(fifo: Path, speaker: Path) -> str:
    return (
        "# twinkle's microphone: the FIFO the test feeds; its speaker: raw files.\n"
        "pcm.tw_mic {\n"
        '    type file\n    slave.pcm "null"\n    file "/dev/null"\n'
        f'    infile "{fifo}"\n    format "raw"\n'
        "}\n"
        "pcm.tw_speaker {\n"
        '    type file\n    slave.pcm "null"\n'
        f'    file "{speaker}"\n    format "raw"\n    truncate false\n'
        "}\n"
    )


def _system_settings(sip_port: int, rtp_base: int) -> str:
    """twinkle.sys. No ring or ringback tone and no device check at start: each would open the
    speaker once more, and the recordings are numbered by opening (call, retrieve)."""
    return "\n".join(
        [
            "dev_ringtone=alsa:null",
            "dev_speaker=alsa:tw_speaker",
            "dev_mic=alsa:tw_mic",
            "validate_audio_dev=no",
            "play_ringtone=no",
            "play_ringback=no",
            f"sip_port={sip_port}",
            f"rtp_port={rtp_base}",
            "log_show_sip=yes",
            "log_max_size=20",
            "",
        ]
    )


def _profile(user: str, password: str, switch: tuple[str, int], extra: dict[str, str]) -> str:
    """A user profile: what a user would type in twinkle's wizard, everything else default.

    The switch listens on a port chosen at start, so it is named as registrar and as outbound
    proxy (``call 202`` then goes to it; with the domain alone twinkle would use port 5060)."""
    host, port = switch
    fields = {
        "user_name": user,
        "user_domain": host,
        "user_display": f"Twinkle {user}",
        "auth_name": user,
        "auth_pass": password,
        "registrar": f"{host}:{port}",
        "outbound_proxy": f"{host}:{port}",
        **extra,
    }
    return "".join(f"{key}={value}\n" for key, value in fields.items())


def free_rtp_base(low: int, high: int) -> int:
    """An even port in [low, high] from which twinkle's lines' RTP/RTCP ports are all free."""
    for base in range(low + low % 2, high - 2 * _LINES + 1, 2 * _LINES):
        with contextlib.ExitStack() as held:
            try:
                for port in range(base, base + 2 * _LINES):
                    sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    continue
                raise
            return base
    raise RuntimeError(f"no free RTP ports for twinkle in {low}-{high}")


class _Output:
    """twinkle's stdout, line by line, kept whole so a test can wait for the next event of a
    kind it has seen before (hold's and retrieve's "re-INVITE successful")."""

    def __init__(self, stream: IO[str], name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.closed = False
        self._changed = threading.Condition()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.closed = True
            self._changed.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float, *, after: int = 0) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            index = after
            while True:
                for line in self.lines[index:]:
                    if pattern.search(line):
                        return line
                index = len(self.lines)
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    state = "exited" if self.closed else f"no {pattern.pattern!r} in {timeout}s"
                    raise AssertionError(f"{self.name} {state}: {''.join(self.lines[-30:])}")
                self._changed.wait(remaining)


class TwinklePhone:
    """One twinkle-console: its own HOME, a tone as microphone, its speaker recorded.

    ``command`` types a line at its prompt; ``wait_for`` waits on its stdout (events such as
    "Line 1: call established." are printed there); ``log`` is its ~/.twinkle/twinkle.log,
    with every SIP message it sent and received."""

    def __init__(
        self,
        twinkle: str,
        folder: Path,
        *,
        user: str,
        password: str,
        switch: tuple[str, int],
        sip_port: int,
        rtp_ports: tuple[int, int],
        microphone: bytes,
        profile: dict[str, str] | None = None,
    ) -> None:
        """``rtp_ports``: the range twinkle's RTP must stay in; ``microphone``: 8 kHz mono
        16-bit samples it plays in a loop; ``profile``: user-profile fields to add/override."""
        self.user = user
        self.folder = folder
        home = folder / "home"
        self.config_dir = home / ".twinkle"
        self.config_dir.mkdir(parents=True)
        self.speaker = folder / "speaker"
        self.speaker.mkdir()
        fifo = folder / "mic.fifo"
        # %r: the rate twinkle opened the speaker at, so a recording says how to read it.
        (home / ".asoundrc").write_text(_asoundrc(fifo, self.speaker / "heard-%r.raw"))
        self.rtp_base = free_rtp_base(*rtp_ports)
        (self.config_dir / "twinkle.sys").write_text(_system_settings(sip_port, self.rtp_base))
        (self.config_dir / f"{user}.cfg").write_text(
            _profile(user, password, switch, profile or {})
        )
        self.sip_port = sip_port
        self._mic = MicPacer(fifo, microphone)
        # ALSA_CONFIG_PATH and the like would hide $HOME/.asoundrc.
        env = {key: value for key, value in os.environ.items() if not key.startswith("ALSA_")}
        env.update(HOME=str(home), LANG="C", LC_ALL="C", TERM="dumb")
        try:
            self.proc = subprocess.Popen(
                [twinkle, f"{user}.cfg"], cwd=folder, env=env, text=True, bufsize=1,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )  # fmt: skip
        except OSError:
            self._mic.stop()
            raise
        assert self.proc.stdout is not None
        self.output = _Output(self.proc.stdout, f"twinkle {user}")

    def command(self, line: str) -> None:
        """One line at twinkle's prompt (call, answer, bye, hold, retrieve, dtmf, quit...)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern: re.Pattern[str], timeout: float, *, after: int = 0) -> str:
        """The first output line matching ``pattern`` among lines ``after`` onwards (already
        printed or printed within ``timeout``)."""
        return self.output.wait_for(pattern, timeout, after=after)

    def mark(self) -> int:
        """How many lines twinkle has printed so far: ``after=`` for the next event."""
        return len(self.output.lines)

    def wait_registered(self, timeout: float = 20) -> str:
        """Until twinkle prints "USER: registration succeeded" (its profile is named USER)."""
        registered = re.compile(rf"^{re.escape(self.user)}: registration succeeded", re.MULTILINE)
        return self.wait_for(registered, timeout)

    def log(self) -> str:
        path = self.config_dir / "twinkle.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def recordings(self) -> list[Path]:
        """One raw file per time twinkle opened its speaker (a call, a retrieve), in order."""
        return sorted(self.speaker.glob("heard-*.raw*"), key=_opening_index)

    def recorded_seconds(self, recording: Path) -> float:
        return recording.stat().st_size / (2 * _recording_rate(recording))

    def recording_wav(self, recording: Path) -> Path:
        """``recording`` (raw 16-bit mono) as a WAV file beside it, for dominant_tone."""
        target = recording.with_name(recording.name.replace(".", "-") + ".wav")
        with wave.open(str(target), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(_recording_rate(recording))
            w.writeframes(recording.read_bytes())
        return target

    def stop(self) -> int:
        """``quit`` at the prompt (twinkle ends its calls and de-registers), then SIGTERM."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                self.command("quit")
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        status = stop(self.proc)
        self._mic.stop()
        return status
