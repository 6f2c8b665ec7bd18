"""Windowed-sinc resampling to 8 kHz."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway_fxo.dsp.resample import resample


def tone(frequency: float, rate: int, seconds: float = 0.5) -> np.ndarray:
    return 10000.0 * np.sin(2 * math.pi * frequency * np.arange(round(rate * seconds)) / rate)


@pytest.mark.parametrize("rate", [11025, 16000, 22050, 44100, 48000, 96000, 6000])
def test_in_band_tone_is_kept_exactly(rate: int) -> None:
    out = resample(tone(1000.0, rate), rate)
    assert out.size == 4000
    reference = tone(1000.0, 8000)
    core = slice(400, -400)
    error = np.std(out[core] - reference[core]) / np.std(reference[core])
    assert 20 * math.log10(error) < -60


@pytest.mark.parametrize("rate", [16000, 44100, 48000])
def test_above_4_khz_does_not_fold_into_the_band(rate: int) -> None:
    out = resample(tone(5000.0, rate), rate)
    assert 20 * math.log10(np.std(out[400:-400]) / 7071.0) < -60


def test_same_rate_and_empty_and_bad_rates() -> None:
    data = np.arange(10.0)
    assert np.array_equal(resample(data, 8000), data)
    assert resample(np.zeros(0), 44100).size == 0
    with pytest.raises(ValueError):
        resample(data, 0)
