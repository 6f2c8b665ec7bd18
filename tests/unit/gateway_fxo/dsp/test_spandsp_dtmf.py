"""Our DTMF receiver against libspandsp's generator (issue 11: spandsp's -10 dBm0, +4 dB twist,
100 ms "3690" came out as "90"), directly and through ``pbx line decode``."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from gateway_fxo.dsp.dtmf_detect import DtmfDetector
from gateway_fxo.dsp.dtmf_generate import DTMF_DIGITS, dtmf_frequencies
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, power_to_dbm0
from tests.support.spandsp import require_spandsp

from .signals import add_noise, through_codec


def digits(signal: npt.ArrayLike) -> str:
    detector = DtmfDetector()
    samples = np.asarray(signal, dtype=np.float64)
    events = []
    for first in range(0, samples.size, 160):
        events += detector.push(samples[first : first + 160])
    return "".join(e.digit for e in events + detector.finish())


def tone_level(samples: Samples, frequency: float) -> float:
    """dBm0 of one tone, from a Hann-windowed FFT's peak bin (0.5 Hz bins: zero padding)."""
    window = np.hanning(samples.size)
    size = 16 * SAMPLE_RATE
    spectrum = np.abs(np.fft.rfft(samples * window, size))
    bin_hz = SAMPLE_RATE / size
    k = round(frequency / bin_hz)
    peak = float(np.max(spectrum[k - 8 : k + 9]))
    amplitude = 2.0 * peak / float(np.sum(window))
    return power_to_dbm0(amplitude * amplitude / 2.0)


@pytest.mark.parametrize("twist", [4, 0, -4, -8])
def test_spandsp_level_is_the_low_tone_and_twist_raises_the_high_one(twist: int) -> None:
    """Measured, not assumed: set_level(-10, twist) gives low -10 dBm0, high -10 + twist."""
    spandsp = require_spandsp()
    samples = spandsp.generate("3", level_dbm0=-10, twist_db=twist, on_ms=100, off_ms=0)
    assert samples.size == 800
    low_hz, high_hz = dtmf_frequencies("3")
    tone = samples[80:720].astype(np.float64)
    assert tone_level(tone, low_hz) == pytest.approx(-10.0, abs=0.2)
    assert tone_level(tone, high_hz) == pytest.approx(-10.0 + twist, abs=0.2)


def test_spandsp_3690_at_minus_10_dbm0_and_4_db_twist() -> None:
    """The issue's case, clean, through u-law and at 20 dB SNR."""
    spandsp = require_spandsp()
    samples = spandsp.generate("3690", level_dbm0=-10, twist_db=4, on_ms=100, off_ms=100)
    signal = np.concatenate([np.zeros(400), samples.astype(np.float64), np.zeros(400)])
    rng = np.random.default_rng(3690)
    pair = -10.0 + 10.0 * math.log10(1.0 + 10.0**0.4)
    assert digits(signal) == "3690"
    assert digits(through_codec(signal)) == "3690"
    assert digits(through_codec(add_noise(rng, signal, 20.0, pair))) == "3690"


def test_spandsp_every_key_over_levels_and_twists() -> None:
    """All 16 keys at 40 ms on / 40 ms off, low tone -3..-30 dBm0, twist -8..+4 dB (both tones
    in -3..-30 dBm0), through u-law: every key, nothing else."""
    spandsp = require_spandsp()
    failures = []
    tried = 0
    for level in (-3, -7, -10, -15, -20, -26, -30):
        for twist in (-8, -6, -4, -2, 0, 2, 4):
            if not -30 <= level + twist <= -3:
                continue
            samples = spandsp.generate(
                DTMF_DIGITS, level_dbm0=level, twist_db=twist, on_ms=40, off_ms=40
            )
            got = digits(through_codec(samples.astype(np.float64)))
            tried += 1
            if got != DTMF_DIGITS:
                failures.append(f"low {level} dBm0, twist {twist:+d} dB: {got!r}")
    print(f"\nspandsp DTMF: {tried - len(failures)}/{tried} level/twist cases gave every key")
    assert not failures, "\n".join(failures)


def test_pbx_line_decode_prints_spandsp_digits(tmp_path: Path) -> None:
    spandsp = require_spandsp()
    samples = spandsp.generate("3690", level_dbm0=-10, twist_db=4, on_ms=100, off_ms=100)
    path = tmp_path / "spandsp-3690.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(np.concatenate([np.zeros(800, np.int16), samples]).astype("<i2").tobytes())
    done = subprocess.run(
        [sys.executable, "-m", "pbx.cli", "line", "decode", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)["dtmf"]
    assert "".join(d["digit"] for d in found) == "3690"
    # 100 ms tones every 200 ms after 100 ms of silence.
    assert [d["start"] for d in found] == pytest.approx([0.1, 0.3, 0.5, 0.7], abs=0.006)
    assert [d["end"] for d in found] == pytest.approx([0.2, 0.4, 0.6, 0.8], abs=0.006)
