"""DT-AS receiver: synthesized alerts over levels, twist, frequency error, noise and timing,
through u-law; and the signals it must not take for one (speech, DTMF, caller ID FSK, tones)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway_fxo.dsp.callerid import callerid_fsk_audio, encode_mdmf
from gateway_fxo.dsp.dtas import (
    DTAS_DURATION_S,
    DtasAlert,
    DtasDetector,
    DtasSettings,
    generate_dtas,
)
from gateway_fxo.dsp.dtmf_generate import DTMF_DIGITS, generate_dtmf
from gateway_fxo.dsp.fsk import BELL202, V23
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples
from gateway_fxo.dsp.tones import TONE_PLANS, generate_tone

from .signals import add_noise, speech_like, through_codec, white_noise

LEAD = 800  # 100 ms of silence before each alert


def alerts(signal: Samples, block: int = 160) -> list[DtasAlert]:
    detector = DtasDetector()
    found: list[DtasAlert] = []
    for first in range(0, signal.size, block):
        found += detector.push(signal[first : first + block])
    return found + detector.finish()


def framed(tone: Samples, lead: int = LEAD) -> Samples:
    return np.concatenate([np.zeros(lead), tone, np.zeros(800)])


def random_alert(
    rng: np.random.Generator, *, weakest_dbm0: float, seconds: float, max_error: float
) -> tuple[Samples, float]:
    """An alert whose weaker tone is at `weakest_dbm0`; returns it and the pair's level."""
    twist = float(rng.uniform(-6.0, 6.0))
    low = weakest_dbm0 - min(0.0, twist)
    tone = generate_dtas(
        level_dbm0=low,
        twist_db=twist,
        seconds=seconds,
        frequency_error=float(rng.uniform(-max_error, max_error)),
        phases=(float(rng.uniform(0, 6.3)), float(rng.uniform(0, 6.3))),
    )
    pair = low + 10.0 * math.log10(1.0 + 10.0 ** (twist / 10.0))
    return tone, pair


def test_a_clean_alert_is_found_with_its_edges() -> None:
    [alert] = alerts(framed(generate_dtas()))
    assert alert.start == pytest.approx(LEAD, abs=40)  # within 5 ms
    assert alert.end == pytest.approx(LEAD + DTAS_DURATION_S * SAMPLE_RATE, abs=40)
    assert alert.duration_s == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("block", [1, 37, 160, 4000])
def test_block_size_does_not_matter(block: int) -> None:
    signal = framed(generate_dtas(seconds=0.095, phases=(1.0, 2.0)), lead=1234)
    assert alerts(signal, block) == alerts(signal, 160)
    assert len(alerts(signal, block)) == 1


def test_detection_rate_over_levels_noise_and_timing() -> None:
    """240 alerts: weaker tone -38..-5 dBm0, twist -6..+6 dB, 88-110 ms (SIN 227), frequency
    error up to +-1.1 %, random phases and start, clean..12 dB SNR, through u-law: all found,
    one each, edges within 10 ms."""
    rng = np.random.default_rng(227)
    per_snr: dict[float, list[int]] = {}
    worst_edge = 0.0
    for trial in range(240):
        snr = [math.inf, 20.0, 15.0, 12.0][trial % 4]
        seconds = float(rng.uniform(0.088, 0.110))
        tone, pair = random_alert(
            rng, weakest_dbm0=float(rng.uniform(-38.0, -5.0)), seconds=seconds, max_error=0.011
        )
        lead = LEAD + int(rng.integers(0, 400))
        signal = through_codec(add_noise(rng, framed(tone, lead), snr, pair))
        found = alerts(signal)
        tally = per_snr.setdefault(snr, [0, 0])
        tally[0] += 1
        if len(found) == 1:
            tally[1] += 1
            edges = (found[0].start - lead, found[0].end - lead - tone.size)
            worst_edge = max(worst_edge, *(abs(e) / SAMPLE_RATE for e in edges))
    rates = ", ".join(f"SNR {snr:g} dB {ok}/{n}" for snr, (n, ok) in per_snr.items())
    print(f"\nDT-AS detection: {rates}; worst edge {1000 * worst_edge:.1f} ms")
    assert all(ok == n for n, ok in per_snr.values())
    assert worst_edge <= 0.010


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [(0.05, 0), (0.06, 0), (0.075, 1), (0.08, 1), (0.09, 1), (0.1, 1), (0.115, 1),
     (0.15, 0), (0.3, 0), (2.0, 0)],
)  # fmt: skip
def test_duration_check(seconds: float, expected: int) -> None:
    """Bell CAS (80 ms) and DT-AS (88-110 ms) pass; a blip or a held tone does not."""
    rng = np.random.default_rng(round(seconds * 1000))
    for _ in range(10):
        tone, pair = random_alert(rng, weakest_dbm0=-20.0, seconds=seconds, max_error=0.005)
        signal = through_codec(
            add_noise(rng, framed(tone, LEAD + int(rng.integers(0, 80))), 20.0, pair)
        )
        assert len(alerts(signal)) == expected


@pytest.mark.parametrize(("weakest", "expected"), [(-40.0, 1), (-46.0, 0)])
def test_level_floor(weakest: float, expected: int) -> None:
    rng = np.random.default_rng(40)
    tone, _ = random_alert(rng, weakest_dbm0=weakest, seconds=0.1, max_error=0.0)
    assert len(alerts(through_codec(framed(tone)))) == expected


@pytest.mark.parametrize(("twist", "expected"), [(-7.0, 1), (7.0, 1), (-11.0, 0), (11.0, 0)])
def test_twist_limit(twist: float, expected: int) -> None:
    tone = generate_dtas(level_dbm0=-15.0, twist_db=twist)
    assert len(alerts(through_codec(framed(tone)))) == expected


@pytest.mark.parametrize(("error", "expected"), [(-0.02, 1), (0.02, 1), (-0.04, 0), (0.04, 0)])
def test_frequency_tolerance(error: float, expected: int) -> None:
    tone = generate_dtas(frequency_error=error)
    assert len(alerts(through_codec(framed(tone)))) == expected


def test_one_tone_alone_is_not_an_alert() -> None:
    n = np.arange(800)
    for frequency in (2130.0, 2750.0):
        tone = 5000.0 * np.sin(2 * np.pi * frequency * n / SAMPLE_RATE)
        assert alerts(framed(tone)) == []


def test_no_talk_off_on_speech_and_noise() -> None:
    rng = np.random.default_rng(7)
    for level in (-25.0, -15.0, -5.0):
        assert alerts(through_codec(speech_like(rng, 120.0, level))) == []
    assert alerts(through_codec(white_noise(rng, 60 * SAMPLE_RATE, -20.0))) == []


def test_no_talk_off_on_what_the_exchange_sends() -> None:
    """DTMF (every key, CLIP speed), Bell 202 and V.23 caller ID, every country's tones."""
    assert alerts(through_codec(generate_dtmf(DTMF_DIGITS * 3, level_dbm0=-6.0))) == []
    message = encode_mdmf(datetime="03151430", number="01234567890", name="ACME CORP")
    for modem in (BELL202, V23):
        burst = callerid_fsk_audio(message, modem, level_dbm0=-8.0)
        assert alerts(through_codec(np.concatenate([burst] * 5))) == []
    for plans in TONE_PLANS.values():
        for plan in plans:
            assert alerts(through_codec(generate_tone(plan, 6.0, level_dbm0=-8.0))) == []


def test_alert_after_noise_and_before_fsk_is_found_once() -> None:
    """The UK sequence as a receiver hears it: quiet line, DT-AS, 100 ms, V.23 burst."""
    rng = np.random.default_rng(3)
    message = encode_mdmf(datetime="03151430", number="01234567890", name="ACME CORP")
    signal = np.concatenate(
        [
            np.zeros(1600),
            generate_dtas(),
            np.zeros(800),
            callerid_fsk_audio(message, V23, level_dbm0=-13.0),
            np.zeros(1600),
        ]
    )
    [alert] = alerts(through_codec(signal + white_noise(rng, signal.size, -60.0)))
    assert alert.start == pytest.approx(1600, abs=40)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="share"):
        DtasSettings(min_tone_share=0.0)
    with pytest.raises(ValueError, match="duration"):
        DtasSettings(min_duration_s=0.2, max_duration_s=0.1)
    with pytest.raises(ValueError, match="misses"):
        DtasSettings(misses=0)
    with pytest.raises(ValueError, match="ends after"):
        DtasAlert(start=10, end=5)
