"""Against independent tools: sox makes DTMF and tones for us to detect, multimon-ng decodes our
DTMF, minimodem sends Bell 202 for us and decodes ours, espeak-ng talks without dialling."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from gateway_fxo.dsp.callerid import callerid_fsk_audio, encode_mdmf
from gateway_fxo.dsp.decode import decode_recording
from gateway_fxo.dsp.dtas import DtasDetector
from gateway_fxo.dsp.dtmf_detect import DtmfDetector
from gateway_fxo.dsp.dtmf_generate import DTMF_DIGITS, dtmf_frequencies, generate_dtmf
from gateway_fxo.dsp.fsk import BELL202, FskReceiver, fsk_modulate
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, to_pcm16
from gateway_fxo.dsp.resample import resample
from gateway_fxo.dsp.wav_file import read_wav
from tests.support.tools import require_tool

from .signals import through_codec


def write_wav(path: Path, samples: Samples, rate: int = SAMPLE_RATE) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(to_pcm16(samples).astype("<i2").tobytes())
    return path


def run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def sox_dtmf(sox: str, path: Path, keys: str, on_s: float = 0.07, off_s: float = 0.07) -> Path:
    effects: list[str] = []
    for k, key in enumerate(keys):
        low, high = dtmf_frequencies(key)
        if k:
            effects.append(":")
        effects += ["synth", f"{on_s}", "sine", f"{low}", "sine", f"{high}", "vol", "0.3"]
        effects += ["pad", "0", f"{off_s}"]
    run(sox, "-n", "-r", "8000", "-b", "16", "-c", "1", str(path), *effects)
    return path


def test_sox_dtmf_is_detected(tmp_path: Path) -> None:
    sox = require_tool("sox", "sox")
    samples, rate = read_wav(sox_dtmf(sox, tmp_path / "dtmf.wav", DTMF_DIGITS))
    assert rate == 8000
    detector = DtmfDetector()
    events = detector.push(through_codec(samples)) + detector.finish()
    assert "".join(e.digit for e in events) == DTMF_DIGITS


def test_sox_busy_and_dial_tones_are_detected(tmp_path: Path) -> None:
    sox = require_tool("sox", "sox")
    busy = tmp_path / "busy.wav"
    run(sox, "-n", "-r", "8000", "-b", "16", "-c", "1", str(busy), "synth", "0.5", "sine", "480",
        "sine", "620", "vol", "0.3", "pad", "0", "0.5", "repeat", "3")  # fmt: skip
    result = decode_recording(busy, country="US")
    assert [(t["tone"], t["start"], t["end"]) for t in result["tones"]] == [("busy", 0.0, 4.0)]
    dial = tmp_path / "dial.wav"
    run(sox, "-n", "-r", "16000", "-b", "16", "-c", "1", str(dial), "synth", "3", "sine", "425",
        "vol", "0.2")  # fmt: skip
    result = decode_recording(dial, country="DE")
    assert [(t["tone"], t["country"]) for t in result["tones"]] == [("dial", "DE")]


def test_sox_alerting_signal_is_detected(tmp_path: Path) -> None:
    """sox's 2130 + 2750 Hz pair: 100 ms found (at 8 and 44.1 kHz), 40 ms and 300 ms not."""
    sox = require_tool("sox", "sox")
    found = []
    for rate, seconds in ((8000, 0.1), (44100, 0.1), (8000, 0.04), (8000, 0.3)):
        path = tmp_path / f"dtas-{rate}-{seconds}.wav"
        run(sox, "-n", "-r", str(rate), "-b", "16", "-c", "1", str(path), "synth", str(seconds),
            "sine", "2130", "sine", "2750", "vol", "0.1", "pad", "0.2", "0.2")  # fmt: skip
        samples, file_rate = read_wav(path)
        line = through_codec(resample(samples, file_rate) if file_rate != 8000 else samples)
        detector = DtasDetector()
        found.append([(round(a.start_s, 2), round(a.end_s, 2)) for a in detector.push(line)])
        found[-1] += [(round(a.start_s, 2), round(a.end_s, 2)) for a in detector.finish()]
    assert found == [[(0.2, 0.3)], [(0.2, 0.3)], [], []]
    result = decode_recording(tmp_path / "dtas-44100-0.1.wav", country="UK")
    assert [(a["signal"], a["start"], a["end"]) for a in result["alerts"]] == [
        ("dt-as", pytest.approx(0.2, abs=0.006), pytest.approx(0.3, abs=0.006))
    ]


def test_multimon_ng_decodes_our_dtmf(tmp_path: Path) -> None:
    multimon = require_tool("multimon-ng", "multimon-ng")
    signal = generate_dtmf(DTMF_DIGITS, level_dbm0=-10.0, lead_s=0.2, tail_s=0.2)
    path = write_wav(tmp_path / "ours.wav", through_codec(signal))
    output = run(multimon, "-q", "-a", "DTMF", "-t", "wav", str(path))
    heard = "".join(line.split(":", 1)[1].strip() for line in output.splitlines() if "DTMF" in line)
    assert heard == DTMF_DIGITS


def test_minimodem_bell202_is_received(tmp_path: Path) -> None:
    minimodem = require_tool("minimodem", "minimodem")
    text = "Switchboard 0123456789 the quick brown fox\n"
    path = tmp_path / "mm.wav"
    # minimodem drifts in baud rate at 8 kHz: it sends at 48 kHz and we resample.
    run(minimodem, "--tx", "1200", "-R", "48000", "-f", str(path), stdin=text)
    samples, rate = read_wav(path)
    line = through_codec(resample(samples, rate) * 0.5)
    received = FskReceiver(BELL202).push(np.concatenate([line, np.zeros(400)]))
    assert bytes(b.value for b in received if b.framing_ok).decode("ascii") == text


def test_minimodem_decodes_our_fsk_and_caller_id(tmp_path: Path) -> None:
    minimodem = require_tool("minimodem", "minimodem")
    text = "our Bell 202 modulator\n"
    burst = fsk_modulate(BELL202, [40, text.encode(), 20])
    path = write_wav(tmp_path / "ours.wav", np.concatenate([np.zeros(800), burst, np.zeros(800)]))
    assert text.strip() in run(minimodem, "--rx", "1200", "-q", "-f", str(path))
    message = encode_mdmf(datetime="03151430", number="5551234567", name="JOHN DOE")
    audio = np.concatenate([np.zeros(800), callerid_fsk_audio(message), np.zeros(800)])
    path = write_wav(tmp_path / "cid.wav", through_codec(audio))
    output = run(minimodem, "--rx", "callerid", "-q", "-f", str(path))
    assert "555-123-4567" in output and "JOHN DOE" in output and "03/15 14:30" in output


@pytest.mark.parametrize(
    "text",
    [
        "Hello, this is the switchboard. Please hold the line while we connect you.",
        "One two three four five six seven eight nine zero, star, hash.",
    ],
)
def test_espeak_speech_dials_nothing(tmp_path: Path, text: str) -> None:
    espeak = require_tool("espeak-ng", "espeak-ng")
    results: list[object] = []
    for voice in ("en", "en-us+f3"):
        path = tmp_path / f"{voice}.wav"
        run(espeak, "-v", voice, "-w", str(path), text)
        samples, rate = read_wav(path)
        speech = through_codec(resample(samples, rate))
        detector = DtmfDetector()
        results += detector.push(speech) + detector.finish()
        alerting = DtasDetector()  # nor does it sound like a DT-AS
        results += alerting.push(speech) + alerting.finish()
    assert results == []
