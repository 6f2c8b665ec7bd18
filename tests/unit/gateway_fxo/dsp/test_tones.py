"""Call-progress tones: every national plan through the detector, with codec and noise."""

from __future__ import annotations

import numpy as np
import pytest

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples
from gateway_fxo.dsp.tones import (
    BUSY,
    DIAL,
    RINGBACK,
    TONE_PLANS,
    ToneDetector,
    ToneEvent,
    TonePlan,
    generate_tone,
    tone_plan,
)

from .signals import add_noise, speech_like, through_codec, white_noise

ALL_PLANS = [plan for plans in TONE_PLANS.values() for plan in plans]


def detect(signal: Samples, country: str, block: int = 160) -> list[ToneEvent]:
    detector = ToneDetector(country)
    events: list[ToneEvent] = []
    for i in range(0, signal.size, block):
        events += detector.push(signal[i : i + block])
    return events + detector.finish()


def cycles_long(plan: TonePlan, cycles: int) -> float:
    return 4.0 if plan.continuous else cycles * plan.period_s


@pytest.mark.parametrize("plan", ALL_PLANS, ids=lambda p: f"{p.country}-{p.tone}")
def test_every_plan_through_ulaw_and_noise(plan: TonePlan) -> None:
    rng = np.random.default_rng(len(plan.tone) * 7 + len(plan.frequencies))
    seconds = cycles_long(plan, 3)
    level = float(rng.uniform(-30.0, -8.0))
    tone = generate_tone(plan, seconds, level_dbm0=level)
    signal = np.concatenate([np.zeros(4000), tone, np.zeros(3 * SAMPLE_RATE)])
    noisy = through_codec(add_noise(rng, signal, 20.0, level))
    (event,) = detect(noisy, plan.country)
    assert (event.tone, event.country) == (plan.tone, plan.country)
    assert event.start_s == pytest.approx(0.5, abs=0.03)
    assert event.end_s == pytest.approx(0.5 + seconds, abs=0.05)


@pytest.mark.parametrize("block", [1, 80, 333, 8000])
def test_block_size_does_not_matter(block: int) -> None:
    signal = generate_tone(tone_plan("UK", "congestion"), 4.0)
    assert detect(signal, "UK", block) == detect(signal, "UK", 160)


def test_one_cycle_is_not_enough_two_are() -> None:
    busy = tone_plan("US", BUSY)
    assert detect(generate_tone(busy, 1.0), "US") == []
    assert [e.tone for e in detect(generate_tone(busy, 1.5), "US")] == [BUSY]


def test_dial_tone_needs_a_second_and_outlasts_a_ringback_burst() -> None:
    dial = tone_plan("US", DIAL)
    assert detect(generate_tone(dial, 0.8), "US") == []
    assert [e.tone for e in detect(generate_tone(dial, 1.2), "US")] == [DIAL]
    # In France dial and ringback are both 440 Hz: a 1.5 s burst is not dial tone.
    assert detect(generate_tone(tone_plan("FR", DIAL), 1.5), "FR") == []


def test_a_sequence_dial_ringback_busy() -> None:
    parts = [
        generate_tone(tone_plan("DE", DIAL), 2.0),
        np.zeros(8000),
        generate_tone(tone_plan("DE", RINGBACK), 10.0),
        generate_tone(tone_plan("DE", BUSY), 3.84),
        np.zeros(8000),
    ]
    events = detect(through_codec(np.concatenate(parts)), "DE")
    assert [(e.tone, round(e.start_s, 1), round(e.end_s, 1)) for e in events] == [
        ("dial", 0.0, 2.0),
        ("ringback", 3.0, 13.0),
        ("busy", 13.0, 16.8),
    ]


def test_busy_and_congestion_are_told_apart_in_the_same_country() -> None:
    for country in ("US", "UK", "DE"):
        for plan in TONE_PLANS[country]:
            if plan.continuous:
                continue
            events = detect(generate_tone(plan, cycles_long(plan, 3)), country)
            assert [e.tone for e in events] == [plan.tone], (country, plan.tone)


def test_other_countries_tones_and_speech_and_noise_are_not_tones() -> None:
    rng = np.random.default_rng(11)
    voice = speech_like(rng, 8.0, -15.0)
    assert detect(through_codec(voice), "US") == []
    assert detect(white_noise(rng, 4 * SAMPLE_RATE, -30.0), "DE") == []
    assert detect(generate_tone(tone_plan("DE", BUSY), 4.0), "US") == []


def test_unknown_country() -> None:
    with pytest.raises(ValueError):
        ToneDetector("XX")
    with pytest.raises(ValueError):
        tone_plan("US", "howler")
