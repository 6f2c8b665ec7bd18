"""Call-progress tones one after another through one detector: the second tone is reported as
soon as a fresh detector would report it, whatever came before (a louder tone, speech)."""

from __future__ import annotations

import numpy as np
import pytest

from gateway_fxo.backends.sim_signals import TONE_LEVELS_DBM0
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples
from gateway_fxo.dsp.tones import TONE_PLANS, ToneDetector, TonePlan, generate_tone

from .signals import speech_like, through_codec

BLOCK = 160  # the gateway pushes 20 ms frames and reads `current` after each
# A 20 ms window holding the end of the first tone and the start of the second can move the
# second one's first edge by up to two 10 ms hops, and `current` is read once per 20 ms block:
# 40 ms, rounded up to the cadence's own timing tolerance (tones.TOLERANCE_S).
MARGIN = round(0.05 * SAMPLE_RATE)
CUTS = (0.0, 0.25, 0.75)  # where in its cycle the first tone stops (after two cycles)

PAIRS = [
    (first, second)
    for plans in TONE_PLANS.values()
    for first in plans
    for second in plans
    if first is not second
]


def pair_id(pair: tuple[TonePlan, TonePlan]) -> str:
    first, second = pair
    return f"{first.country}-{first.tone}-{second.tone}"


def level(plan: TonePlan) -> float:
    return TONE_LEVELS_DBM0[plan.country][plan.tone]


def reported_after(signal: Samples, plan: TonePlan, since: int) -> tuple[int | None, set[str]]:
    """Samples from `since` until `current` first says `plan`'s tone (None: never), and every
    tone `current` said before `since`."""
    detector = ToneDetector(plan.country)
    before: set[str] = set()
    for i in range(0, signal.size, BLOCK):
        detector.push(signal[i : i + BLOCK])
        end = min(i + BLOCK, signal.size)
        if end <= since:
            if detector.current is not None:
                before.add(detector.current)
        elif detector.current == plan.tone:
            return end - since, before
    return None, before


def second_tone(plan: TonePlan, level_dbm0: float) -> Samples:
    """Long enough for a fresh detector plus one more cycle (cadences match in under two)."""
    return generate_tone(plan, 3.0 if plan.continuous else 3 * plan.period_s, level_dbm0=level_dbm0)


def first_tone(plan: TonePlan, level_dbm0: float, cut: float) -> Samples:
    seconds = 2.5 if plan.continuous else (2.0 + cut) * plan.period_s
    return generate_tone(plan, seconds, level_dbm0=level_dbm0)


def allowed_delay(first: Samples, first_plan: TonePlan, second_plan: TonePlan) -> int:
    """MARGIN, plus one cycle of the second tone when the first ends in an unbroken tone of the
    same frequencies: the second's first burst is then one with it (a fresh detector shown that
    signal could not tell either), so its cadence is seen one cycle later."""
    unbroken = first_plan.frequencies == second_plan.frequencies and first[-1] != 0.0
    return MARGIN + (round(second_plan.period_s * SAMPLE_RATE) if unbroken else 0)


def check_change(first_plan: TonePlan, second_plan: TonePlan, levels: tuple[float, float]) -> None:
    second = through_codec(second_tone(second_plan, levels[1]))
    fresh, _ = reported_after(second, second_plan, 0)
    assert fresh is not None
    for cut in CUTS:
        first = through_codec(first_tone(first_plan, levels[0], cut))
        signal = np.concatenate((first, second))
        delay, before = reported_after(signal, second_plan, first.size)
        assert before == {first_plan.tone}, (cut, before)  # the first tone was heard (only)
        assert delay is not None, cut
        assert delay <= fresh + allowed_delay(first, first_plan, second_plan), (cut, delay, fresh)


@pytest.mark.parametrize("pair", PAIRS, ids=pair_id)
def test_a_tone_change_is_reported_as_soon_as_by_a_fresh_detector(
    pair: tuple[TonePlan, TonePlan],
) -> None:
    """Every ordered pair of a country's tones at the simulator's levels (US: ringback 6 dB and
    busy 11 dB below dial tone): louder then quieter and quieter then louder."""
    first, second = pair
    check_change(first, second, (level(first), level(second)))


@pytest.mark.parametrize("country", list(TONE_PLANS))
def test_the_loudest_then_the_quietest_and_back(country: str) -> None:
    """0 dBm0 then -30 dBm0 (and back), same frequencies or not: nothing remembers the level."""
    plans = TONE_PLANS[country]
    for first, second in ((plans[0], plans[-1]), (plans[1], plans[2]), (plans[-1], plans[1])):
        check_change(first, second, (0.0, -30.0))
        check_change(first, second, (-30.0, 0.0))


@pytest.mark.parametrize("country", list(TONE_PLANS))
def test_loud_speech_then_a_tone(country: str) -> None:
    """Speech louder than any tone (-5 dBm0): not a tone, and the tone after it is on time."""
    voice = speech_like(np.random.default_rng(0), 6.0, -5.0)
    for plan in TONE_PLANS[country]:
        tone = second_tone(plan, level(plan))
        fresh, _ = reported_after(through_codec(tone), plan, 0)
        assert fresh is not None
        signal = through_codec(np.concatenate((voice, tone)))
        delay, before = reported_after(signal, plan, voice.size)
        assert before == set()
        assert delay is not None and delay <= fresh + MARGIN, (plan.tone, delay, fresh)
