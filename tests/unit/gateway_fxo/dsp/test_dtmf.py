"""DTMF receiver on synthesized digits through noise and u-law (spandsp dtmf_rx_tests style)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway_fxo.dsp.dtmf_detect import DtmfDetector, DtmfDigit, DtmfSettings
from gateway_fxo.dsp.dtmf_generate import (
    DTMF_DIGITS,
    dtmf_frequencies,
    dtmf_tone,
    generate_dtmf,
)
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples

from .signals import add_noise, speech_like, through_codec, white_noise


def detect(signal: Samples, block: int = 160) -> list[DtmfDigit]:
    detector = DtmfDetector()
    events: list[DtmfDigit] = []
    for i in range(0, signal.size, block):
        events += detector.push(signal[i : i + block])
    return events + detector.finish()


def digits(signal: Samples) -> str:
    return "".join(e.digit for e in detect(signal))


def test_every_key_with_its_timing() -> None:
    signal = generate_dtmf(DTMF_DIGITS, on_s=0.07, off_s=0.07, level_dbm0=-10.0, lead_s=0.1)
    events = detect(through_codec(signal))
    assert "".join(e.digit for e in events) == DTMF_DIGITS
    for k, event in enumerate(events):
        assert event.start_s == pytest.approx(0.1 + 0.14 * k, abs=0.006)
        assert event.end_s == pytest.approx(0.17 + 0.14 * k, abs=0.006)


def test_lower_case_keys_and_bad_keys() -> None:
    assert dtmf_frequencies("a") == (697.0, 1633.0)
    with pytest.raises(ValueError):
        dtmf_frequencies("E")


@pytest.mark.parametrize("block", [1, 7, 102, 160, 1000, 100_000])
def test_block_size_does_not_matter(block: int) -> None:
    signal = through_codec(generate_dtmf("159D", level_dbm0=-20.0, lead_s=0.013))
    assert detect(signal, block) == detect(signal, 160)
    assert digits(signal) == "159D"


@pytest.mark.parametrize("level", [0.0, -3.0, -10.0, -20.0, -25.0, -30.0])
def test_levels_through_ulaw(level: float) -> None:
    assert digits(through_codec(generate_dtmf("0847#", level_dbm0=level))) == "0847#"


@pytest.mark.parametrize("level", [-48.0, -55.0])
def test_too_quiet_is_ignored(level: float) -> None:
    assert digits(through_codec(generate_dtmf("0847#", level_dbm0=level))) == ""


@pytest.mark.parametrize("twist", [-7.0, -5.0, 0.0, 2.0, 3.0])
def test_twist_within_limits(twist: float) -> None:
    signal = generate_dtmf("14*D", level_dbm0=-12.0, twist_db=twist)
    assert digits(through_codec(signal)) == "14*D"


@pytest.mark.parametrize("twist", [-10.0, -12.0, 6.0, 8.0])
def test_twist_beyond_limits(twist: float) -> None:
    signal = generate_dtmf("14*D", level_dbm0=-12.0, twist_db=twist)
    assert digits(through_codec(signal)) == ""


@pytest.mark.parametrize("error", [-0.015, 0.015])
def test_frequency_within_q24_tolerance(error: float) -> None:
    signal = np.concatenate(
        [dtmf_tone(d, frequency_error=error, level_dbm0=-15.0) for d in "19#D"] + [np.zeros(600)]
    )
    # No gaps between keys: each change of key ends the previous digit.
    assert digits(signal) == "19#D"


def test_40_ms_digits_accepted_and_20_ms_rejected_at_any_alignment() -> None:
    rng = np.random.default_rng(40)
    for _ in range(30):
        lead = np.zeros(int(rng.integers(0, 200)))
        for on_s, expected in ((0.040, "7"), (0.020, "")):
            signal = np.concatenate(
                [lead, dtmf_tone("7", duration_s=on_s, level_dbm0=-20.0), np.zeros(400)]
            )
            assert digits(through_codec(add_noise(rng, signal, 20.0, -20.0))) == expected


def test_a_40_ms_pause_separates_repeated_keys_and_a_10_ms_break_does_not() -> None:
    tone = dtmf_tone("5", duration_s=0.06, level_dbm0=-15.0)
    for gap_s, expected in ((0.040, "55"), (0.010, "5"), (0.0, "5")):
        signal = np.concatenate([tone, np.zeros(round(gap_s * SAMPLE_RATE)), tone, np.zeros(500)])
        assert digits(through_codec(signal)) == expected, gap_s


def test_held_key_is_one_digit_reported_when_released() -> None:
    detector = DtmfDetector()
    tone = dtmf_tone("9", duration_s=2.0, level_dbm0=-15.0)
    assert detector.push(tone) == []
    assert detector.current == "9"
    (event,) = detector.push(np.zeros(400))
    assert event.digit == "9"
    assert event.duration_s == pytest.approx(2.0, abs=0.006)
    assert detector.current is None


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        DtmfSettings(hits=0)
    with pytest.raises(ValueError):
        DtmfSettings(min_tone_share=0.0)


def test_detection_rate_over_levels_noise_and_timing() -> None:
    """200 random digits over the grid (-30..0 dBm0, clean..15 dB SNR, twist -6..+3 dB,
    45-100 ms on and off, random phases), through u-law: >= 99 % found, no false digits."""
    rng = np.random.default_rng(2024)
    sent = found = false = 0
    per_snr: dict[float, list[int]] = {}
    for trial in range(40):
        level = float(rng.uniform(-30.0, 0.0))
        snr = [math.inf, 30.0, 20.0, 15.0][trial % 4]
        twist = float(rng.uniform(-6.0, 3.0))
        keys = "".join(rng.choice(list(DTMF_DIGITS), 5))
        parts = [np.zeros(int(rng.integers(0, 400)))]
        for key in keys:
            on = float(rng.uniform(0.045, 0.1))
            phases = (float(rng.uniform(0, 6.3)), float(rng.uniform(0, 6.3)))
            parts.append(
                dtmf_tone(key, duration_s=on, level_dbm0=level, twist_db=twist, phases=phases)
            )
            parts.append(np.zeros(round(float(rng.uniform(0.045, 0.1)) * SAMPLE_RATE)))
        signal = np.concatenate(parts)
        # Line noise is referred to the weaker tone's... no: to the pair's total level.
        got = digits(through_codec(add_noise(rng, signal, snr, level)))
        hits = _matched(keys, got)
        sent += len(keys)
        found += hits
        false += len(got) - hits
        tally = per_snr.setdefault(snr, [0, 0])
        tally[0] += len(keys)
        tally[1] += hits
    rates = ", ".join(f"SNR {snr:g} dB {ok}/{n}" for snr, (n, ok) in per_snr.items())
    print(
        f"\nDTMF detection: {found}/{sent} = {100 * found / sent:.1f} % ({rates}); false: {false}"
    )
    assert found / sent >= 0.99
    assert false == 0


def _matched(sent: str, got: str) -> int:
    """Length of the longest common subsequence: digits found in order."""
    table = [[0] * (len(got) + 1) for _ in range(len(sent) + 1)]
    for i, a in enumerate(sent):
        for j, b in enumerate(got):
            table[i + 1][j + 1] = (
                table[i][j] + 1 if a == b else max(table[i][j + 1], table[i + 1][j])
            )
    return table[-1][-1]


def test_no_talk_off_on_speech_like_signals() -> None:
    rng = np.random.default_rng(7)
    total_s = 0.0
    for k in range(12):
        level = [-25.0, -15.0, -5.0][k % 3]
        voice = speech_like(rng, 5.0, level)
        total_s += 5.0
        noisy = voice + white_noise(rng, voice.size, level - 30.0)
        assert digits(through_codec(noisy)) == "", k
    print(f"\nDTMF talk-off: 0 digits in {total_s:g} s of speech-like signal")


def test_no_digits_in_noise() -> None:
    rng = np.random.default_rng(8)
    assert digits(through_codec(white_noise(rng, 5 * SAMPLE_RATE, -20.0))) == ""
