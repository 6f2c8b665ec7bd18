"""Line echo canceller on a simulated hybrid: delayed, filtered, attenuated echo plus noise."""

from __future__ import annotations

import time

import numpy as np
import pytest

from gateway_fxo.dsp.echo_canceller import EchoCanceller, EchoCancellerSettings, erle
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples

from .signals import speech_like, through_codec, white_noise

SECOND = SAMPLE_RATE


def hybrid(rng: np.random.Generator, delay_ms: float, loss_db: float) -> Samples:
    """An echo path: a flat delay, then a decaying 16 ms response, `loss_db` of echo return loss
    (for a white signal)."""
    delay = round(delay_ms * SAMPLE_RATE / 1000)
    response = np.zeros(delay + 128)
    k = np.arange(128)
    response[delay:] = rng.standard_normal(128) * np.exp(-k / 20.0)
    response *= np.sqrt(10 ** (-loss_db / 10) / np.sum(response**2))
    return response


def run(canceller: EchoCanceller, far: Samples, near: Samples, block: int = 160) -> Samples:
    return np.concatenate(
        [
            canceller.process(far[i : i + block], near[i : i + block])
            for i in range(0, far.size, block)
        ]
    )


@pytest.mark.parametrize(("delay_ms", "loss_db"), [(5.0, 6.0), (10.0, 9.0), (20.0, 12.0)])
def test_converges_to_20_db_erle(delay_ms: float, loss_db: float) -> None:
    rng = np.random.default_rng(int(delay_ms))
    far = white_noise(rng, 3 * SECOND, -15.0)
    echo = np.convolve(far, hybrid(rng, delay_ms, loss_db))[: far.size]
    near = through_codec(echo + white_noise(rng, far.size, -65.0))
    out = run(EchoCanceller(), far, near)
    figures = [erle(echo[s : s + SECOND], out[s : s + SECOND]) for s in range(0, far.size, SECOND)]
    print(
        f"\nERLE {delay_ms:g} ms / {loss_db:g} dB path, per second:",
        [round(f, 1) for f in figures],
    )
    assert figures[1] >= 20.0 and figures[2] >= 20.0


def test_speech_like_far_end_converges_more_slowly_but_does() -> None:
    rng = np.random.default_rng(3)
    far = speech_like(rng, 8.0, -12.0) + white_noise(rng, 8 * SECOND, -45.0)
    echo = np.convolve(far, hybrid(rng, 12.0, 12.0))[: far.size]
    near = through_codec(echo + white_noise(rng, far.size, -65.0))
    out = run(EchoCanceller(), far, near)
    late = erle(echo[6 * SECOND :], out[6 * SECOND :])
    print(f"\nERLE speech-like far end, seconds 6-8: {late:.1f} dB")
    assert late >= 20.0


@pytest.mark.parametrize(("seed", "delay_ms", "loss_db"), [(11, 8.0, 9.0), (12, 20.0, 6.0)])
def test_speech_like_far_end_reaches_25_db_within_a_second(
    seed: int, delay_ms: float, loss_db: float
) -> None:
    """The issue's bar: at least 25 dB after converging within 1 s, on speech, not only noise."""
    rng = np.random.default_rng(seed)
    far = speech_like(rng, 3.0, -12.0) + white_noise(rng, 3 * SECOND, -45.0)
    echo = np.convolve(far, hybrid(rng, delay_ms, loss_db))[: far.size]
    near = through_codec(echo + white_noise(rng, far.size, -65.0))
    out = run(EchoCanceller(), far, near)
    figures = [erle(echo[s : s + SECOND], out[s : s + SECOND]) for s in range(0, far.size, SECOND)]
    print(
        f"\nERLE speech, {delay_ms:g} ms / {loss_db:g} dB, per second:",
        [round(f, 1) for f in figures],
    )
    assert figures[1] >= 25.0 and figures[2] >= 25.0


def test_harmonic_voice_on_a_6_db_hybrid_in_7_sample_blocks() -> None:
    """Seven harmonics with vibrato (the line bench's voice) through a hybrid whose echo peaks
    pass the Geigel threshold, fed 7 samples at a time: converged in the 2nd second."""
    t = np.arange(3 * SECOND) / SAMPLE_RATE
    phase = 2 * np.pi * np.cumsum(140 + 20 * np.sin(2 * np.pi * 3 * t)) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    far = 3000 * envelope * sum(np.sin(k * phase) / k for k in range(1, 8))
    taps = np.array([1.0, 0.42, -0.28, -0.17, -0.06, 0.04])
    path = np.zeros(160 + taps.size)
    path[160:] = taps / np.linalg.norm(taps) * 10 ** (-6 / 20)
    echo = np.convolve(far, path)[: far.size]
    near = echo + white_noise(np.random.default_rng(13), far.size, -70.0)
    out = run(EchoCanceller(), far, near, block=7)
    assert erle(echo[SECOND : 2 * SECOND], out[SECOND : 2 * SECOND]) >= 25.0


def test_output_does_not_wait_for_later_input() -> None:
    """A sample's output depends only on what came before it: no added latency."""
    rng = np.random.default_rng(14)
    far = white_noise(rng, SECOND, -15.0)
    near = np.convolve(far, hybrid(rng, 10.0, 9.0))[: far.size]
    whole = run(EchoCanceller(), far, near, block=160)
    sample_by_sample = run(EchoCanceller(), far, near, block=1)
    assert whole.size == near.size
    assert np.allclose(whole, sample_by_sample)


def test_double_talk_does_not_make_it_diverge() -> None:
    rng = np.random.default_rng(9)
    far = white_noise(rng, 5 * SECOND, -15.0)
    echo = np.convolve(far, hybrid(rng, 8.0, 9.0))[: far.size]
    talker = np.zeros(far.size)
    talker[2 * SECOND : 4 * SECOND] = speech_like(rng, 2.0, -10.0)
    near = echo + talker + white_noise(rng, far.size, -65.0)
    results = {}
    for label, threshold in (("Geigel", 0.5), ("no detector", 1e9)):
        canceller = EchoCanceller(EchoCancellerSettings(geigel_threshold=threshold))
        out = run(canceller, far, near)
        during = slice(2 * SECOND, 4 * SECOND)
        after = slice(4 * SECOND, 5 * SECOND)
        results[label] = (
            erle(echo[during], out[during] - talker[during]),
            erle(echo[after], out[after]),
        )
    print(
        "\nERLE during / after 2 s of double talk: "
        + "; ".join(f"{k}: {d:.1f} / {a:.1f} dB" for k, (d, a) in results.items())
    )
    during_db, after_db = results["Geigel"]
    assert during_db >= 20.0 and after_db >= 20.0
    assert results["no detector"][1] < after_db - 10.0  # the detector is what keeps it


def test_nlp_removes_most_of_the_residual_and_keeps_the_talker() -> None:
    rng = np.random.default_rng(4)
    far = white_noise(rng, 3 * SECOND, -15.0)
    echo = np.convolve(far, hybrid(rng, 10.0, 9.0))[: far.size]
    near = echo + white_noise(rng, far.size, -65.0)
    plain = run(EchoCanceller(), far, near)
    suppressed = run(EchoCanceller(EchoCancellerSettings(nlp=True)), far, near)
    tail = slice(2 * SECOND, 3 * SECOND)
    assert erle(echo[tail], suppressed[tail]) >= erle(echo[tail], plain[tail]) + 10.0
    # A near-end talker alone (far end silent) goes through untouched.
    talker = speech_like(rng, 1.0, -15.0)
    canceller = EchoCanceller(EchoCancellerSettings(nlp=True))
    assert np.array_equal(canceller.process(np.zeros(SECOND), talker), talker)
    assert not np.any(canceller.weights)


def test_any_block_size() -> None:
    rng = np.random.default_rng(5)
    far = white_noise(rng, 2 * SECOND, -15.0)
    echo = np.convolve(far, hybrid(rng, 10.0, 9.0))[: far.size]
    out = run(EchoCanceller(), far, echo, block=7)
    assert erle(echo[SECOND:], out[SECOND:]) >= 20.0
    with pytest.raises(ValueError):
        EchoCanceller().process(np.zeros(3), np.zeros(4))


def test_speed_one_second_well_under_real_time() -> None:
    rng = np.random.default_rng(6)
    far = white_noise(rng, 2 * SECOND, -15.0)
    near = np.convolve(far, hybrid(rng, 10.0, 9.0))[: far.size]
    canceller = EchoCanceller()
    run(canceller, far[:SECOND], near[:SECOND])  # warm up
    started = time.perf_counter()
    run(canceller, far[SECOND:], near[SECOND:])
    elapsed = time.perf_counter() - started
    print(f"\necho canceller (512 taps): {1000 * elapsed:.0f} ms for 1 s of audio")
    assert elapsed < 0.5


def test_erle_helper() -> None:
    assert erle([1.0, 1.0], [0.1, 0.1]) == pytest.approx(20.0)
    assert erle([1.0], [0.0]) == float("inf")
    with pytest.raises(ValueError):
        EchoCancellerSettings(step=2.0)
