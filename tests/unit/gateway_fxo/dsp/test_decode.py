"""decode_recording and its command line, on synthesized recordings written as WAV files."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from gateway_fxo.dsp.callerid import callerid_dtmf_audio, callerid_fsk_audio, encode_mdmf
from gateway_fxo.dsp.decode import decode_recording, main
from gateway_fxo.dsp.dtas import generate_dtas
from gateway_fxo.dsp.dtmf_generate import generate_dtmf
from gateway_fxo.dsp.fsk import V23
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, to_pcm16
from gateway_fxo.dsp.resample import resample
from gateway_fxo.dsp.tones import BUSY, generate_tone, tone_plan
from gateway_fxo.dsp.wav_file import WavError, read_wav

from .signals import through_codec

ROOT = Path(__file__).resolve().parents[4]


def write_wav(path: Path, samples: Samples, rate: int = SAMPLE_RATE, *, channels: int = 1) -> Path:
    pcm = to_pcm16(samples)
    if channels == 2:
        pcm = np.stack([pcm, np.zeros_like(pcm)], axis=1).reshape(-1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.astype("<i2").tobytes())
    return path


def scenario() -> Samples:
    """Caller ID, then dialled digits, then 4 s of US busy tone."""
    message = encode_mdmf(datetime="03151430", number="5551234567", name="JOHN DOE")
    return through_codec(
        np.concatenate(
            [
                np.zeros(800),
                callerid_fsk_audio(message),
                np.zeros(4000),
                generate_dtmf("5", level_dbm0=-12.0),
                np.zeros(4000),
                generate_tone(tone_plan("US", BUSY), 4.0),
                np.zeros(8000),
            ]
        )
    )


EXPECTED_CALLER = {
    "standard": "bell202",
    "format": "mdmf",
    "number": "5551234567",
    "name": "JOHN DOE",
    "datetime": "03151430",
    "checksum_ok": True,
}


def check(result: dict[str, list[dict[str, object]]], offset_s: float) -> None:
    assert list(result) == ["dtmf", "callerid", "tones", "alerts"]
    assert result["callerid"] == [EXPECTED_CALLER]
    assert result["alerts"] == []
    (digit,) = result["dtmf"]
    assert digit["digit"] == "5"
    assert isinstance(digit["start"], float) and isinstance(digit["end"], float)
    (tone,) = result["tones"]
    assert (tone["tone"], tone["country"]) == ("busy", "US")
    assert tone["start"] == pytest.approx(offset_s, abs=0.03)
    assert tone["end"] == pytest.approx(offset_s + 4.0, abs=0.05)


def busy_offset(signal_samples: int) -> float:
    return (signal_samples - 8000 - 4 * SAMPLE_RATE) / SAMPLE_RATE


def test_samples_in_memory() -> None:
    signal = scenario()
    check(decode_recording(signal, 8000), busy_offset(signal.size))


def test_wav_at_44k1_stereo(tmp_path: Path) -> None:
    signal = scenario()
    path = write_wav(tmp_path / "call.wav", resample(signal, 8000, 44100), 44100, channels=2)
    check(decode_recording(path), busy_offset(signal.size))


def test_eight_bit_wav_and_v23_with_dtmf_clip(tmp_path: Path) -> None:
    audio = np.concatenate(
        [
            callerid_dtmf_audio("A31415926C", level_dbm0=-8.0),
            np.zeros(8000),
            callerid_fsk_audio(encode_mdmf(number="0123456789"), V23, level_dbm0=-8.0),
            np.zeros(800),
        ]
    )
    path = tmp_path / "eight.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(1)
        wav.setframerate(8000)
        wav.writeframes((to_pcm16(audio).astype(np.int32) // 256 + 128).astype(np.uint8).tobytes())
    samples, rate = read_wav(path)
    assert rate == 8000 and samples.size == audio.size
    result = decode_recording(path, country="UK")
    assert [(c["standard"], c["number"]) for c in result["callerid"]] == [
        ("dtmf", "31415926"),
        ("v23", "0123456789"),
    ]
    assert "".join(str(d["digit"]) for d in result["dtmf"]) == "A31415926C"


def test_uk_alert_before_its_caller_id(tmp_path: Path) -> None:
    """A BT line's caller ID: DT-AS, 100 ms, then the V.23 burst; at 16 kHz."""
    audio = through_codec(
        np.concatenate(
            [
                np.zeros(2000),
                generate_dtas(),
                np.zeros(800),
                callerid_fsk_audio(encode_mdmf(number="01234567890"), V23),
                np.zeros(800),
            ]
        )
    )
    path = write_wav(tmp_path / "uk.wav", resample(audio, 8000, 16000), 16000)
    result = decode_recording(path, country="UK")
    [alert] = result["alerts"]
    assert alert["signal"] == "dt-as"
    assert alert["start"] == pytest.approx(0.25, abs=0.006)
    assert alert["end"] == pytest.approx(0.35, abs=0.006)
    assert [(c["standard"], c["number"]) for c in result["callerid"]] == [("v23", "01234567890")]
    assert result["dtmf"] == [] and result["tones"] == []


def test_bad_files_raise_wav_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(WavError):
        read_wav(junk)
    with pytest.raises(WavError):
        read_wav(tmp_path / "missing.wav")
    wide = tmp_path / "wide.wav"
    with wave.open(str(wide), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(3)
        wav.setframerate(8000)
        wav.writeframes(b"\x00" * 30)
    with pytest.raises(WavError):
        read_wav(wide)


def test_main_prints_json_and_exits_2_on_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_wav(tmp_path / "call.wav", scenario())
    assert main([str(path), "--country", "us"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["callerid"] == [EXPECTED_CALLER]
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not a wav")
    assert main([str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_module_runs_as_a_command(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "digits.wav", generate_dtmf("12", level_dbm0=-10.0))
    command = [sys.executable, "-m", "gateway_fxo.dsp.decode"]
    done = subprocess.run(
        [*command, str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert [d["digit"] for d in json.loads(done.stdout)["dtmf"]] == ["1", "2"]
    bad = subprocess.run(
        [*command, str(tmp_path / "nope.wav")], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    wrong = subprocess.run(
        [*command, str(path), "--country", "XX"], cwd=ROOT, capture_output=True, text=True
    )
    assert wrong.returncode == 2
