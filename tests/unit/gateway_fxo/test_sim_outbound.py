"""Outbound calls and the line itself: dial tone, the digits heard, ringback, busy, answer,
hang-up signals, the hybrid's echo, line voltage and hook flash."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from gateway_fxo.backends.sim import Phase, SimulatedLineError
from gateway_fxo.dsp.dtmf_generate import generate_dtmf
from gateway_fxo.dsp.levels import FRAME_SAMPLES, SAMPLE_RATE, dbm0_to_power, level_dbm0
from gateway_fxo.line import (
    FRAME_SECONDS,
    LineVoltageLost,
    LineVoltageRestored,
    LoopCurrentDrop,
    PolarityReversal,
)

from .test_sim_harness import Harness, peak_hz

COUNTRIES = ("US", "UK", "FR", "DE")
RINGBACK_CYCLE = {"US": 6.0, "UK": 3.0, "FR": 5.0, "DE": 5.0}


def dial(h: Harness, digits: str, *, level_dbm0: float = -10.0) -> None:
    h.send(generate_dtmf(digits, level_dbm0=level_dbm0))


def off_hook_and_dial(h: Harness, digits: str = "5550100") -> float:
    """Off hook, 1 s of dial tone, dial; returns the time the last digit ended."""
    h.off_hook()
    h.advance(1.0)
    dial(h, digits)
    h.advance(len(digits) * 0.14)
    return h.line.now


@pytest.mark.parametrize("country", COUNTRIES)
def test_dial_tone_then_ringback_then_answer(country: str) -> None:
    h = Harness(country)
    h.advance(0.2)
    h.off_hook()
    h.advance(2.5)
    dialled_at = h.line.now
    dial(h, "5550100")
    h.advance(3.5 + 2 * RINGBACK_CYCLE[country] + 0.5)
    h.line.far_end_answer()
    answered = h.line.now
    h.advance(1.0)
    assert h.line.dialled_digits() == "5550100"
    [dial_tone] = h.tones(0.0, dialled_at + 0.5)
    assert dial_tone.tone == "dial"
    assert dial_tone.start == pytest.approx(0.2 + 0.1, abs=0.05)  # 100 ms to dial tone
    assert dial_tone.end == pytest.approx(dialled_at, abs=0.06)  # the first key stops it
    # What follows the dialling, on its own: ringback after the interdigit pause.
    [ringback] = h.tones(dialled_at + 0.5)
    last_key_end = dialled_at + 7 * 0.14 - 0.07
    assert ringback.tone == "ringback"
    assert ringback.start == pytest.approx(last_key_end + 3.0, abs=0.1)  # interdigit pause
    assert ringback.end == pytest.approx(answered, abs=0.1)
    assert peak_hz(h.audio(answered)) == pytest.approx(1000.0, abs=2.0)
    state = h.line.state()
    assert (state.phase, state.direction, state.in_call) == ("connected", "outbound", True)


def test_us_ringback_after_dial_tone_in_one_detector() -> None:
    """One detector over the whole call: ringback, 6 dB under the dial tone before it, is found
    as soon as a fresh detector finds it (it used to wait until dial tone was 8 s old)."""
    h = Harness("US", answer_after=20.0)
    h.off_hook()
    h.advance(2.0)
    dialled_at = h.line.now
    dial(h, "5550100")
    h.advance(19.0)
    tones = h.tones()
    assert [t.tone for t in tones] == ["dial", "ringback"]
    last_key_end = dialled_at + 7 * 0.14 - 0.07
    assert tones[1].start == pytest.approx(last_key_end + 3.0, abs=0.1)


@pytest.mark.parametrize(
    ("country", "congestion"), [(c, False) for c in COUNTRIES] + [("US", True)]
)
def test_far_end_busy(country: str, congestion: bool) -> None:
    h = Harness(country, number_length=7)
    off_hook_and_dial(h)
    h.line.far_end_busy(congestion=congestion)
    start = h.line.now
    h.advance(2.5)
    assert h.line.state().phase == Phase.BUSY
    tones = h.tones(start)
    assert [t.tone for t in tones] == ["congestion" if congestion else "busy"]


def test_digits_are_heard_exactly_and_number_length_ends_dialling() -> None:
    h = Harness(number_length=7, answer_after=2.0)
    end = off_hook_and_dial(h, "5550100")
    assert h.line.dialled_digits() == "5550100"
    assert h.line.state().phase == Phase.RINGBACK  # no interdigit wait
    h.advance(2.0)
    assert h.line.state().phase == Phase.CONNECTED  # answer_after
    dial(h, "12#")  # digits in the call are heard but not dialled
    h.advance(1.0)
    assert h.line.dialled_digits() == "5550100"
    assert h.line.state().digits_in_call == "12#"
    assert end > 0


def test_quiet_and_slow_dialling_is_still_heard() -> None:
    h = Harness(interdigit_timeout=4.0)
    h.off_hook()
    h.advance(1.0)
    for digit in "9*0#":
        dial(h, digit, level_dbm0=-28.0)
        h.advance(2.0)  # 2 s between digits: less than the timeout
    assert h.line.state().phase == Phase.DIALLING
    h.advance(3.0)
    assert h.line.state().phase == Phase.RINGBACK
    assert h.line.dialled_digits() == "9*0#"


def test_answer_and_busy_armed_while_dialling() -> None:
    h = Harness(polarity_on_answer=True)
    h.off_hook()
    h.advance(0.5)
    h.line.far_end_answer()
    dial(h, "123")
    h.advance(4.0)
    assert h.line.state().phase == Phase.CONNECTED
    assert any(isinstance(e, PolarityReversal) for _, e in h.events)
    b = Harness()
    b.off_hook()
    b.line.far_end_busy()
    dial(b, "123")
    b.advance(4.0)
    assert b.line.state().phase == Phase.BUSY


def test_answer_with_no_outbound_call_is_refused() -> None:
    h = Harness()
    with pytest.raises(SimulatedLineError):
        h.line.far_end_answer()
    with pytest.raises(SimulatedLineError):
        h.line.far_end_busy()
    with pytest.raises(SimulatedLineError):
        h.line.far_end_hangup()
    with pytest.raises(ValueError, match="hang-up signals"):
        h.line.far_end_hangup("smoke")


def connected(country: str = "US", **options: object) -> Harness:
    h = Harness(country, **options)
    h.line.place_inbound_call()
    h.advance(0.5)
    h.off_hook()
    h.advance(0.5)
    return h


def test_hangup_by_loop_drop() -> None:
    h = connected("US")
    h.line.far_end_hangup()  # the US default
    hung_up = h.line.now
    h.advance(2.0)
    [(t, drop)] = [(t, e) for t, e in h.events if isinstance(e, LoopCurrentDrop)]
    assert drop == LoopCurrentDrop(seconds=0.6)
    assert t == pytest.approx(hung_up + 0.6, abs=FRAME_SECONDS)
    assert level_dbm0(h.audio(hung_up, hung_up + 0.6)) < -60.0  # no loop current, no audio
    assert level_dbm0(h.audio(hung_up + 0.6)) < -60.0  # and nobody there after
    assert h.line.state().phase == Phase.CLEARED


def test_hangup_by_polarity_reversal() -> None:
    h = connected("US")
    h.line.far_end_hangup("polarity")
    assert h.events[-1] == (h.line.now, PolarityReversal())
    h.advance(1.0)
    assert not any(isinstance(e, LoopCurrentDrop) for _, e in h.events)


@pytest.mark.parametrize("country", ["DE", "FR"])
def test_hangup_by_busy_tone_where_that_is_the_norm(country: str) -> None:
    h = connected(country)
    h.line.far_end_hangup()  # DE/FR default: the busy cadence
    hung_up = h.line.now
    h.advance(3.0)
    tones = h.tones(hung_up)
    assert [t.tone for t in tones] == ["busy"]
    assert tones[0].start == pytest.approx(hung_up, abs=0.05)
    assert not any(isinstance(e, LoopCurrentDrop) for _, e in h.events)


def test_hangup_with_several_signals_then_dial_tone() -> None:
    h = connected("UK", dial_tone_after_clear=3.0)
    h.line.far_end_hangup(["polarity", "loop_drop", "busy_tone"])
    hung_up = h.line.now
    h.advance(5.0)
    kinds = [type(e).__name__ for t, e in h.events if t >= hung_up]
    assert kinds == ["PolarityReversal", "LoopCurrentDrop"]
    assert [t.tone for t in h.tones(hung_up + 0.6, hung_up + 3.0)] == ["busy"]
    assert [t.tone for t in h.tones(hung_up + 3.0)] == ["dial"]
    assert h.line.state().phase == Phase.DIAL_TONE


def noise(seconds: float, level: float, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(round(seconds * SAMPLE_RATE)) * np.sqrt(dbm0_to_power(level))


@pytest.mark.parametrize(("delay", "gain_db"), [(0.008, -9.0), (0.020, -15.0)])
def test_echo_comes_back_delayed_and_attenuated(delay: float, gain_db: float) -> None:
    h = connected("US", far_tone_hz=None, echo_delay=delay, echo_gain_db=gain_db)
    start = h.line.now
    sent = noise(1.0, -20.0)
    h.send(sent)
    h.advance(1.0)
    heard = h.audio(start)
    assert heard.size == sent.size
    lags = np.arange(0, 400)
    correlation = [float(np.dot(heard[lag:], sent[: sent.size - lag])) for lag in lags]
    assert int(lags[int(np.argmax(correlation))]) == round(delay * SAMPLE_RATE)
    tail = round(delay * SAMPLE_RATE) + 8  # after the delay and the filter's start-up
    ratio = level_dbm0(heard[tail:]) - level_dbm0(sent[tail:])
    assert ratio == pytest.approx(gain_db, abs=0.5)


def test_echo_off_and_line_noise() -> None:
    h = connected("US", far_tone_hz=None, echo=False, noise_dbm0=-60.0)
    start = h.line.now
    h.send(noise(1.0, -10.0))
    h.advance(1.0)
    assert level_dbm0(h.audio(start)) == pytest.approx(-60.0, abs=0.5)
    quiet = connected("US", far_tone_hz=None, echo=False, noise_dbm0=None)
    assert not quiet.audio(0.5).any()


def test_echo_seen_through_a_tone_and_seeded_noise_repeats() -> None:
    runs = []
    for _ in range(2):
        h = connected("US", seed=42)
        h.send(noise(0.5, -20.0))
        h.advance(0.5)
        runs.append(h.audio())
    assert np.array_equal(runs[0], runs[1])
    other = connected("US", seed=43)
    other.send(noise(0.5, -20.0))
    other.advance(0.5)
    assert not np.array_equal(runs[0], other.audio())


def test_line_voltage_lost_and_restored() -> None:
    h = Harness()
    h.line.place_inbound_call()
    h.advance(1.0)
    h.line.line_voltage_lost()
    assert [type(e).__name__ for _, e in h.events] == ["RingStart", "RingStop", "LineVoltageLost"]
    with pytest.raises(SimulatedLineError, match="voltage"):
        h.line.place_inbound_call()
    h.off_hook()
    h.advance(2.0)
    assert not h.audio(1.0).any()  # off hook, no line: silence, no dial tone
    assert h.line.state().phase == Phase.DEAD
    h.line.line_voltage_restored()
    h.advance(2.0)
    assert isinstance(h.events[-1][1], LineVoltageRestored)
    assert [t.tone for t in h.tones(3.0)] == ["dial"]
    assert sum(isinstance(e, LineVoltageLost) for _, e in h.events) == 1


def test_hook_flash_keeps_the_call_and_sends_no_frames_meanwhile() -> None:
    async def scenario() -> None:
        h = connected("US")
        flash = asyncio.ensure_future(h.line.hook_flash(0.6))
        await asyncio.sleep(0)
        assert not h.line.is_off_hook
        before = len(h.frames)
        h.advance(0.5)
        assert not flash.done() and len(h.frames) == before
        h.advance(0.2)
        await asyncio.wait_for(flash, 1.0)
        assert h.line.is_off_hook and h.line.state().flashes == 1
        assert h.line.state().phase == Phase.CONNECTED
        h.advance(0.2)
        assert len(h.frames) == before + 5 + 10  # from the frame the flash ended

    asyncio.run(scenario())


def test_frames_sent_while_on_hook_are_dropped_and_odd_sizes_refused() -> None:
    h = Harness()
    h.line.send_audio(b"\x01\x00" * FRAME_SAMPLES)
    with pytest.raises(ValueError):
        h.line.send_audio(b"\x00")
    h.off_hook()
    h.advance(0.1)
    assert h.line.dialled_digits() == ""
