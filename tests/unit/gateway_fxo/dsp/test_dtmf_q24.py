"""The DTMF receiver over ITU-T Q.24's acceptance region, as grids (our generator, u-law).

Q.24 Table 1 (AT&T column, the common one; the brief's region for levels): each tone -3..-30 dBm0
(0 dBm0 each would clip u-law), high group 8 dB below to 4 dB above the low group, frequency
within 1.5 % accepted and 3.5 % off rejected, >= 40 ms tones accepted and <= 23 ms rejected,
40 ms pauses seen, 10 ms breaks bridged. Each grid lists every failing case at once.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from gateway_fxo.dsp.dtmf_detect import DtmfDetector
from gateway_fxo.dsp.dtmf_generate import DTMF_DIGITS, dtmf_tone
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples

from .signals import add_noise, through_codec

LOW_LEVELS = (-3.0, -6.0, -10.0, -15.0, -20.0, -25.0, -30.0)  # the low-group tone, dBm0
TWISTS = (-8.0, -6.0, -4.0, -2.0, 0.0, 2.0, 4.0)  # high group minus low group, dB
ACCEPT_ERRORS = (-0.015, 0.0, 0.015)
REJECT_ERRORS = (-0.05, -0.035, 0.035, 0.05)


def pair_level(low_dbm0: float, twist_db: float) -> float:
    """Level of the pair whose low tone is at `low_dbm0` (dtmf_tone takes the pair's level)."""
    return low_dbm0 + 10.0 * math.log10(1.0 + 10.0 ** (twist_db / 10.0))


def in_region(low_dbm0: float, twist_db: float) -> bool:
    return -30.0 <= low_dbm0 + twist_db <= -3.0


def keys_signal(
    rng: np.random.Generator,
    keys: str,
    *,
    low_dbm0: float,
    twist_db: float,
    error: float = 0.0,
    on_s: float = 0.040,
    off_s: float = 0.040,
    snr_db: float = math.inf,
) -> Samples:
    """`keys` with random phases after a random lead, plus white noise, through u-law."""
    level = pair_level(low_dbm0, twist_db)
    parts = [np.zeros(int(rng.integers(0, 300)))]
    for key in keys:
        phases = (float(rng.uniform(0.0, 2 * math.pi)), float(rng.uniform(0.0, 2 * math.pi)))
        parts.append(
            dtmf_tone(
                key,
                duration_s=on_s,
                level_dbm0=level,
                twist_db=twist_db,
                frequency_error=error,
                phases=phases,
            )
        )
        parts.append(np.zeros(round(off_s * SAMPLE_RATE)))
    parts.append(np.zeros(400))
    return through_codec(add_noise(rng, np.concatenate(parts), snr_db, level))


def digits(signal: Samples) -> str:
    """One push (block sizes give the same digits: test_dtmf.py), many times faster than 20 ms."""
    detector = DtmfDetector()
    return "".join(e.digit for e in detector.push(signal) + detector.finish())


def describe(low: float, twist: float, error: float, snr: float) -> str:
    return f"low {low:g} dBm0, twist {twist:+g} dB, {100 * error:+.1f} %, SNR {snr:g} dB"


def test_every_key_over_levels_twists_and_frequency_errors() -> None:
    """16 keys of 40 ms with 40 ms pauses per case: per-tone levels, twists and +-1.5 % over the
    region, clean and at 20 dB SNR (noise vs the pair), and at 15 dB SNR for twist -6..+4 dB
    (the existing random test's range; at -8 dB the weak tone is then 6 dB above the noise)."""
    rng = np.random.default_rng(24)
    failures = []
    cases = 0
    for snr in (math.inf, 20.0, 15.0):
        twists = TWISTS if snr >= 20.0 else TWISTS[1:]
        for low, twist, error in itertools.product(LOW_LEVELS, twists, ACCEPT_ERRORS):
            if not in_region(low, twist):
                continue
            signal = keys_signal(
                rng, DTMF_DIGITS, low_dbm0=low, twist_db=twist, error=error, snr_db=snr
            )
            got = digits(signal)
            cases += 1
            if got != DTMF_DIGITS:
                failures.append(f"{describe(low, twist, error, snr)}: {got!r}")
    print(f"\nQ.24 accept grid: {cases - len(failures)}/{cases} cases of 16 keys all right")
    assert not failures, f"{len(failures)} of {cases} cases:\n" + "\n".join(failures)


def test_frequency_errors_of_3_5_percent_are_rejected() -> None:
    """Both tones 3.5 % or 5 % off, at the twist limits and between, clean and at 20 dB SNR."""
    rng = np.random.default_rng(35)
    failures = []
    cases = 0
    for snr in (math.inf, 20.0):
        for low, twist, error in itertools.product(
            (-6.0, -15.0, -25.0), (-8.0, -4.0, 0.0, 4.0), REJECT_ERRORS
        ):
            if not in_region(low, twist):
                continue
            got = digits(
                keys_signal(rng, DTMF_DIGITS, low_dbm0=low, twist_db=twist, error=error, snr_db=snr)
            )
            cases += 1
            if got:
                failures.append(f"{describe(low, twist, error, snr)}: {got!r}")
    print(f"\nQ.24 frequency reject grid: {cases - len(failures)}/{cases} cases gave no digit")
    assert not failures, f"{len(failures)} of {cases} cases:\n" + "\n".join(failures)


def test_twist_beyond_the_limits_is_rejected() -> None:
    """Q.24 sets no twist that must be rejected; ours are 2 dB beyond its limits: high group
    10 dB below or 6 dB above the low group, no noise (noise moves a window's twist ~1 dB)."""
    rng = np.random.default_rng(10)
    failures = []
    for low, twist in itertools.product((-6.0, -12.0, -18.0), (-12.0, -10.0, 6.0, 8.0)):
        for error in ACCEPT_ERRORS:
            got = digits(keys_signal(rng, DTMF_DIGITS, low_dbm0=low, twist_db=twist, error=error))
            if got:
                failures.append(f"{describe(low, twist, error, math.inf)}: {got!r}")
    assert not failures, "\n".join(failures)


def test_too_quiet_per_tone_is_rejected() -> None:
    """Below the receiver's floor (-42 dBm0 a tone) and at Q.24's -55 dBm: nothing."""
    rng = np.random.default_rng(55)
    for low, twist in itertools.product((-46.0, -55.0), (-8.0, 0.0, 4.0)):
        high = low + twist
        # Only the weaker tone need be under the floor; keep both below it here.
        if high > -43.0:
            low, high = low - (high + 43.0), -43.0
        got = digits(keys_signal(rng, DTMF_DIGITS, low_dbm0=low, twist_db=high - low))
        assert got == "", describe(low, high - low, 0.0, math.inf)


def test_durations_40_ms_accepted_23_ms_rejected_at_any_alignment() -> None:
    """One key at a time with a random lead (any alignment to the 51-sample hop), at the twist
    limits, the level extremes and +-1.5 %, at 20 dB SNR."""
    rng = np.random.default_rng(40)
    failures = []
    tries = 0
    for low, twist in ((-3.0, -8.0), (-7.0, 4.0), (-22.0, -8.0), (-30.0, 0.0), (-30.0, 4.0)):
        for error, key in itertools.product(ACCEPT_ERRORS, DTMF_DIGITS):
            for on_s, expected in ((0.040, key), (0.023, "")):
                signal = keys_signal(
                    rng, key, low_dbm0=low, twist_db=twist, error=error, on_s=on_s, snr_db=20.0
                )
                got = digits(signal)
                tries += 1
                if got != expected:
                    failures.append(f"{key} {1000 * on_s:g} ms, {describe(low, twist, error, 20)}")
    print(f"\nQ.24 duration grid: {tries - len(failures)}/{tries} single keys right")
    assert not failures, f"{len(failures)} of {tries}:\n" + "\n".join(failures)


def test_40_ms_pauses_separate_and_10_ms_breaks_bridge_at_the_twist_limits() -> None:
    rng = np.random.default_rng(41)
    failures = []
    for low, twist in ((-10.0, -8.0), (-10.0, 4.0), (-22.0, -8.0), (-30.0, 4.0)):
        for key in DTMF_DIGITS:
            for off_s, expected in ((0.040, key * 3), (0.010, key)):
                signal = keys_signal(
                    rng, key * 3, low_dbm0=low, twist_db=twist, on_s=0.045, off_s=off_s,
                    snr_db=20.0,
                )  # fmt: skip
                got = digits(signal)
                if got != expected:
                    failures.append(f"{key} pause {1000 * off_s:g} ms, low {low}, {twist}: {got!r}")
    assert not failures, "\n".join(failures)
