"""Two real softphones (baresip) call each other through the switch and talk.

Each phone plays its own tone as its microphone (caller 440 Hz, callee 1000 Hz) and records
what it hears; the test checks each heard the other's tone, that the SDP each received named
the switch's relay, that the relay counted the packets, and the call record. The switch runs on
its defaults (its MD5 challenge is what baresip 1.0 can answer).
"""

from __future__ import annotations

import re
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pbx.store.database import open_database
from tests.support.baresip import BaresipPhone
from tests.support.cli import pbx
from tests.support.sipp import free_port
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool

RTP_RANGE = (32000, 32199)


def tone(
    path: Path, sox: str, hz: int, seconds: float, volume: float = 0.5, rate: int = 8000
) -> Path:
    subprocess.run(
        [sox, "-n", "-r", str(rate), "-c", "1", "-b", "16", str(path), "synth", str(seconds),
         "sine", str(hz), "vol", str(volume)],
        check=True, timeout=30,
    )  # fmt: skip
    return path


def heard(recordings: Path) -> tuple[float, float]:
    """(dominant frequency, seconds of audio with that tone) in the phone's decoded recording."""
    [path] = sorted(recordings.glob("*-dec.wav"))
    with wave.open(str(path)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(float)
    samples = samples[::channels]
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    peak = float(np.fft.rfftfreq(len(samples), 1 / rate)[int(spectrum.argmax())])
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    loud = float((np.sqrt((frames**2).mean(axis=1)) > 1000).sum() * 160 / rate)
    return peak, loud


def sdp_ports(log: str) -> set[int]:
    return {int(m) for m in re.findall(r"m=audio (\d+) RTP/AVP", log)}


@pytest.fixture
def office(tmp_path: Path) -> Iterator[tuple[SwitchProcess, Path, dict[str, str]]]:
    db = tmp_path / "switchboard.db"
    passwords = {}
    for user in ("201", "202"):
        created = pbx(db, "ext", "add", user, "--name", f"Phone {user}")
        assert created.returncode == 0, created.stderr
        passwords[user] = created.stdout.split("password: ")[1].split()[0]  # generated
    args = ("--rtp-ports", f"{RTP_RANGE[0]}-{RTP_RANGE[1]}")
    with SwitchProcess(tmp_path, *args) as process:
        yield process, db, passwords


def phones(
    tmp_path: Path,
    process: SwitchProcess,
    passwords: dict[str, str],
    seconds: dict[str, float],
    codecs: tuple[str, ...] = ("g711",),
) -> tuple[BaresipPhone, BaresipPhone]:
    baresip = require_tool("baresip", "baresip")
    sox = require_tool("sox", "sox")
    made = []
    for user, hz, rtp in (("201", 440, 41000), ("202", 1000, 41200)):
        folder = tmp_path / f"phone-{user}"
        folder.mkdir()
        made.append(
            BaresipPhone(
                baresip, folder, user=user, password=passwords[user],
                switch=("127.0.0.1", process.port), sip_port=free_port(), ctrl_port=free_port(),
                rtp_ports=(rtp, rtp + 99),
                source_wav=tone(folder / "mic.wav", sox, hz, seconds[user],
                                rate=16000 if codecs[0] == "g722" else 8000),  # the codec's rate
                codecs=codecs,
            )
        )  # fmt: skip
    return made[0], made[1]


def talk(
    tmp_path: Path,
    office: tuple[SwitchProcess, Path, dict[str, str]],
    seconds: dict[str, float],
    codecs: tuple[str, ...] = ("g711",),
) -> tuple[BaresipPhone, BaresipPhone, list[Any]]:
    process, db, passwords = office
    caller, callee = phones(tmp_path, process, passwords, seconds, codecs)
    try:
        for user in ("201", "202"):
            registered = re.compile(rf"event=registered aor={user} ")
            if not any(registered.search(line) for line in process.lines):
                process.wait_for(registered, timeout=15)
        caller.command("dial", f"sip:202@127.0.0.1:{process.port}")
        caller.wait_event("CALL_ESTABLISHED", 15)
        callee.wait_event("CALL_ESTABLISHED", 15)
        caller.wait_event("CALL_CLOSED", 30)
        callee.wait_event("CALL_CLOSED", 30)
        process.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
    finally:
        caller.stop()
        callee.stop()
    rows = (
        open_database(db)
        .execute(
            "SELECT caller, callee, end_reason, answered_at IS NOT NULL, caller_codec, "
            "callee_codec, ended_at - answered_at FROM call_records"
        )
        .fetchall()
    )
    return caller, callee, rows


def check_audio_and_relay(
    caller: BaresipPhone, callee: BaresipPhone, process: SwitchProcess, talk_s: float
) -> None:
    for phone, expected in ((caller, 1000.0), (callee, 440.0)):
        peak, loud = heard(phone.recordings)
        assert abs(peak - expected) < 10, (phone.user, peak)
        assert loud >= talk_s - 1.0, (phone.user, loud)
        # The SDP the phone received named the switch's relay, not the other phone.
        ports = sdp_ports(phone.log())
        assert any(RTP_RANGE[0] <= p <= RTP_RANGE[1] for p in ports), ports
        assert "c=IN IP4 127.0.0.1" in phone.log()
    end = next(line for line in process.lines if "event=call_end" in line)
    counts = [int(n) for n in re.findall(r"'packets_in': (\d+)", end)]
    assert len(counts) == 2 and min(counts) >= 50 * (talk_s - 1), end


def test_two_softphones_talk_and_the_callee_hangs_up(
    tmp_path: Path, office: tuple[SwitchProcess, Path, dict[str, str]]
) -> None:
    caller, callee, rows = talk(tmp_path, office, {"201": 20.0, "202": 4.0})
    [(src, dst, reason, answered, codec_a, codec_b, length)] = rows
    assert (src, dst, reason, answered) == ("201", "202", "callee hung up", 1)
    assert (codec_a, codec_b) == ("PCMU", "PCMU") and 3.0 <= length <= 6.0
    check_audio_and_relay(caller, callee, office[0], 4.0)


def test_two_softphones_talk_and_the_caller_hangs_up(
    tmp_path: Path, office: tuple[SwitchProcess, Path, dict[str, str]]
) -> None:
    caller, callee, rows = talk(tmp_path, office, {"201": 4.0, "202": 20.0})
    [(src, dst, reason, answered, *_)] = rows
    assert (src, dst, reason, answered) == ("201", "202", "caller hung up", 1)
    check_audio_and_relay(caller, callee, office[0], 4.0)


def test_two_hd_softphones_talk_in_g722_carried_through_the_relay(
    tmp_path: Path, office: tuple[SwitchProcess, Path, dict[str, str]]
) -> None:
    caller, callee, rows = talk(tmp_path, office, {"201": 4.0, "202": 20.0}, ("g722", "g711"))
    [(src, dst, reason, answered, codec_a, codec_b, _)] = rows
    assert (src, dst, reason, answered) == ("201", "202", "caller hung up", 1)
    assert (codec_a, codec_b) == ("G722", "G722")  # wideband end to end, not transcoded
    for phone in (caller, callee):
        assert re.search(r"m=audio \d+ RTP/AVP 9[ \r]", phone.log()), phone.user
    check_audio_and_relay(caller, callee, office[0], 4.0)
