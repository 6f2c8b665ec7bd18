"""The shared Goertzel helpers and the tests' u-law codec."""

from __future__ import annotations

import numpy as np
import pytest

from gateway_fxo.dsp.goertzel import GoertzelBank, goertzel_power
from gateway_fxo.dsp.levels import (
    DBM0_PEAK,
    FULL_SCALE,
    dbm0_to_peak,
    dbm0_to_power,
    level_dbm0,
    sine,
)
from gateway_fxo.dsp.windows import SlidingWindows

from .g711_for_tests import ulaw_decode, ulaw_encode, ulaw_round_trip


def test_zero_dbm0_peaks_3_17_db_below_full_scale() -> None:
    assert 20 * np.log10(FULL_SCALE / DBM0_PEAK) == pytest.approx(3.17)
    assert level_dbm0(sine(1004.0, 8000, peak=dbm0_to_peak(-10.0))) == pytest.approx(
        -10.0, abs=0.01
    )


@pytest.mark.parametrize("frequency", [697.0, 1004.0, 1633.0, 2954.0])
def test_recurrence_and_bank_agree_and_measure_the_tone_power(frequency: float) -> None:
    block = sine(frequency, 205, peak=dbm0_to_peak(-13.0), phase=0.7)
    bank = GoertzelBank([frequency, 440.0], 205)
    powers = bank.powers(block)[0]
    assert powers[0] == pytest.approx(goertzel_power(block, frequency), rel=1e-9)
    assert powers[0] == pytest.approx(dbm0_to_power(-13.0), rel=0.05)
    assert powers[1] < powers[0] / 100


def test_sliding_windows_are_the_same_whatever_the_block_sizes() -> None:
    stream = np.arange(1000, dtype=np.float64)
    whole = SlidingWindows(102, 51).push(stream)[0]
    pieces = SlidingWindows(102, 51)
    rows = []
    starts = []
    position = 0
    for size in [1, 50, 51, 101, 3, 160, 634]:
        windows, first = pieces.push(stream[position : position + size])
        position += size
        rows.append(windows)
        starts += [first + 51 * k for k in range(windows.shape[0])]
    assert np.array_equal(np.concatenate(rows), whole)
    assert [int(w[0]) for w in whole] == starts


def test_ulaw_round_trip_is_within_a_segment_step_and_idempotent() -> None:
    pcm = np.arange(-32768, 32768, 7, dtype=np.float64)
    decoded = ulaw_round_trip(pcm)
    step = np.maximum(8.0, np.abs(pcm) / 16.0)  # half a quantisation interval, roughly
    assert np.all(np.abs(decoded - np.clip(pcm, -32124, 32124)) <= step + 4)
    assert np.array_equal(ulaw_round_trip(decoded), decoded)
    assert ulaw_encode([0])[0] == 0xFF
    assert ulaw_decode([0x00])[0] == -32124
    assert ulaw_decode([0x80])[0] == 32124
