"""The phone matrix's common half: a switch on its defaults and a baresip peer to call.

Every matrix test (tests/interop/test_phone_*.py) starts ``office`` (``pbx serve`` as a user gets
it, extensions made with ``pbx ext add``), a baresip peer that answers by itself, plays a tone
and records what it hears, and the client under test. What the peer saw (digits, the SDP
directions of every offer, the tone) is read from its events, SIP trace and recording.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.support.baresip import BaresipPhone
from tests.support.cli import pbx
from tests.support.sipp import free_port
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool

PEER_TONE_HZ = 1000
_DIRECTION_RE = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\r?$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Office:
    process: SwitchProcess
    db: Path
    passwords: dict[str, str]

    @property
    def switch(self) -> tuple[str, int]:
        return ("127.0.0.1", self.process.port)

    def wait_registered(self, user: str, timeout: float = 20) -> None:
        """Until the switch logs the extension's registration (already or within timeout)."""
        registered = re.compile(rf"event=registered aor={user} ")
        if not any(registered.search(line) for line in self.process.lines):
            self.process.wait_for(registered, timeout=timeout)

    def auth_algorithm(self, user: str, *, wait: bool = True) -> str | None:
        """The digest algorithm the extension's newest registration authenticated with (the
        switch logs a registration just before its group commit stores it: wait for the row,
        unless ``wait`` is False: then None when there is none)."""
        from pbx.store.database import open_database

        found: list[str | None] = []

        def stored() -> bool:
            row = (
                open_database(self.db)
                .execute(
                    "SELECT auth_algorithm FROM registrations WHERE aor = ? "
                    "ORDER BY registered_at DESC LIMIT 1",
                    [user],
                )
                .fetchone()
            )
            found[:] = [None if row is None else row[0]]
            return row is not None

        if wait:
            wait_until(stored, 10, f"{user}'s registration in the store")
        else:
            stored()
        return found[0]


def add_extension(db: Path, user: str) -> str:
    """``pbx ext add USER``: the generated password it prints once."""
    created = pbx(db, "ext", "add", user, "--name", f"Phone {user}")
    assert created.returncode == 0, created.stderr
    return created.stdout.split("password: ")[1].split()[0]


@contextlib.contextmanager
def office(
    tmp_path: Path, *, rtp_ports: tuple[int, int], users: tuple[str, ...] = ("201", "202")
) -> Iterator[Office]:
    """A real ``pbx serve`` on its defaults (nothing but ports changed) with ``users``."""
    db = tmp_path / "switchboard.db"
    passwords = {user: add_extension(db, user) for user in users}
    with SwitchProcess(tmp_path, "--rtp-ports", f"{rtp_ports[0]}-{rtp_ports[1]}") as process:
        yield Office(process=process, db=db, passwords=passwords)


def tone_wav(path: Path, hz: int, seconds: float, *, rate: int = 8000, volume: float = 0.5) -> Path:
    """A sox-made sine, 16-bit mono: what a phone plays as its microphone."""
    sox = require_tool("sox", "sox")
    subprocess.run(
        [sox, "-n", "-r", str(rate), "-c", "1", "-b", "16", str(path), "synth", str(seconds),
         "sine", str(hz), "vol", str(volume)],
        check=True, timeout=30,
    )  # fmt: skip
    return path


def dominant_tone(path: Path, *, loud_rms: float = 1000.0) -> tuple[float, float]:
    """(the strongest frequency, seconds of audio louder than ``loud_rms``) of a WAV."""
    with wave.open(str(path)) as w:
        rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
        raw = w.readframes(w.getnframes())
    assert width == 2, f"{path}: {8 * width}-bit audio, expected 16"
    samples = np.frombuffer(raw, dtype=np.int16).astype(float)[::channels]
    if len(samples) < rate // 10:
        return 0.0, 0.0
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    peak = float(np.fft.rfftfreq(len(samples), 1 / rate)[int(spectrum.argmax())])
    block = rate // 50
    frames = samples[: len(samples) // block * block].reshape(-1, block)
    loud = float((np.sqrt((frames**2).mean(axis=1)) > loud_rms).sum() / 50)
    return peak, loud


def wait_until(check: Callable[[], object], timeout: float, what: str) -> None:
    """Poll a condition on what a phone wrote (its log, its recording) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)  # polling a file another process writes; the condition decides


def wav_seconds(path: Path, *, rate: int = 8000) -> float:
    """Seconds of 16-bit mono audio in a WAV still being written (its header says 0 until the
    recorder closes it, so this goes by the file's size); 0 while there is no file."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0.0
    return max(0, size - 44) / (2 * rate)


def recorded_seconds(folder: Path, pattern: str = "*-dec.wav", rate: int = 8000) -> float:
    """How much audio the newest recording in ``folder`` holds so far."""
    files = sorted(folder.glob(pattern))
    return 0.0 if not files else wav_seconds(files[-1], rate=rate)


class PeerPhone(BaresipPhone):
    """baresip answering by itself, playing PEER_TONE_HZ, recording what it hears."""

    def __init__(self, office: Office, folder: Path, user: str, *, rtp_ports: tuple[int, int],
                 seconds: float = 120.0, hz: int = PEER_TONE_HZ,
                 answermode: str = "auto", volume: float = 0.5) -> None:  # fmt: skip
        """``volume``: of the tone it plays (0.1 on a line call, so the line's echo of it
        stays below the far party)."""
        baresip = require_tool("baresip", "baresip")
        folder.mkdir(parents=True, exist_ok=True)
        sip_port = free_port()
        self.sip_address = f"127.0.0.1:{sip_port}"
        super().__init__(
            baresip, folder, user=user, password=office.passwords[user], switch=office.switch,
            sip_port=sip_port, ctrl_port=free_port(), rtp_ports=rtp_ports,
            source_wav=tone_wav(folder / "mic.wav", hz, seconds, volume=volume),
            answermode=answermode,
        )  # fmt: skip
        self._office = office

    def wait_registered(self, timeout: float = 20) -> None:
        self._office.wait_registered(self.user, timeout)

    def dtmf_digits(self, count: int, timeout: float) -> str:
        """The first ``count`` digits received (RFC 4733 or INFO), from CALL_DTMF_START."""
        events = self.wait_count("CALL_DTMF_START", count, timeout)
        return "".join(str(event.get("param", "?")) for event in events)

    def remote_directions(self) -> list[str]:
        """The direction attribute of every SDP the peer received (sendrecv when absent)."""
        directions = []
        for body in _received_sdps(self.log(), self.sip_address):
            found = _DIRECTION_RE.findall(body)
            directions.append(found[-1] if found else "sendrecv")
        return directions

    def wait_held(self, timeout: float = 10) -> None:
        """Until an offer put the peer on hold (sendonly or inactive towards it)."""
        wait_until(
            lambda: any(d in ("sendonly", "inactive") for d in self.remote_directions()[1:]),
            timeout, f"{self.user} to be put on hold: {self.remote_directions()}",
        )  # fmt: skip

    def wait_resumed(self, timeout: float = 10) -> None:
        """Until, after a hold, the newest offer is sendrecv again."""

        def resumed() -> bool:
            later = self.remote_directions()[1:]
            held = [i for i, d in enumerate(later) if d in ("sendonly", "inactive")]
            return bool(held) and "sendrecv" in later[held[0] + 1 :]

        wait_until(resumed, timeout, f"{self.user} to be resumed: {self.remote_directions()}")

    def wait_heard(self, seconds: float, timeout: float = 20) -> None:
        """Until the peer's recording holds ``seconds`` of what reached it."""
        wait_until(lambda: recorded_seconds(self.recordings) >= seconds, timeout,
                   f"{seconds}s recorded by {self.user}")  # fmt: skip

    def heard(self) -> tuple[float, float]:
        """dominant_tone of the peer's decoded recording (what reached it from the client)."""
        [path] = sorted(self.recordings.glob("*-dec.wav"))
        return dominant_tone(path)


def start_peer(
    office: Office, tmp_path: Path, user: str, *, rtp_ports: tuple[int, int]
) -> PeerPhone:
    return PeerPhone(office, tmp_path / f"peer-{user}", user, rtp_ports=rtp_ports)


_TRACE_HEAD_RE = re.compile(r"^(?:UDP|TCP|TLS) (\S+) -> (\S+)\r?$", re.MULTILINE)


def _received_sdps(log: str, own_address: str) -> list[str]:
    """The SDP bodies of the messages baresip's SIP trace (-s) shows arriving at it."""
    heads = list(_TRACE_HEAD_RE.finditer(log))
    bodies = []
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        block = log[head.end() : following.start() if following else len(log)]
        if head.group(2) == own_address and "\nv=0" in block:
            bodies.append(block[block.index("\nv=0") + 1 :])
    return bodies
