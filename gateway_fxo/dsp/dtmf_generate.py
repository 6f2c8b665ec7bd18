"""DTMF signals (ITU-T Q.23 frequencies) at a chosen level, twist and timing."""

from __future__ import annotations

import math

import numpy as np

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, dbm0_to_peak, sine

DTMF_ROW_HZ = (697.0, 770.0, 852.0, 941.0)
DTMF_COL_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_DIGITS = "".join(DTMF_KEYPAD)

# Q.23 recommends 40 ms minimum tone and pause; 70 ms / 70 ms is what phones and CLIP send.
DEFAULT_ON_S = 0.070
DEFAULT_OFF_S = 0.070


def dtmf_frequencies(digit: str) -> tuple[float, float]:
    """The (low group, high group) frequencies of a key."""
    key = digit.upper()
    for row, keys in enumerate(DTMF_KEYPAD):
        col = keys.find(key)
        if len(key) == 1 and col >= 0:
            return DTMF_ROW_HZ[row], DTMF_COL_HZ[col]
    raise ValueError(f"not a DTMF digit: {digit!r}")


def dtmf_tone(
    digit: str,
    *,
    duration_s: float = DEFAULT_ON_S,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    frequency_error: float = 0.0,
    phases: tuple[float, float] = (0.0, 0.0),
) -> Samples:
    """One key's tone pair.

    `level_dbm0` is the power of the pair together; `twist_db` is the high-group tone's level
    minus the low-group tone's (negative: "normal" twist, positive: "reverse" twist);
    `frequency_error` is a relative offset applied to both tones (0.015 = +1.5 %).
    """
    low_hz, high_hz = dtmf_frequencies(digit)
    count = round(duration_s * SAMPLE_RATE)
    share_high = 10.0 ** (twist_db / 10.0)
    low_level = level_dbm0 - 10.0 * math.log10(1.0 + share_high)
    high_level = low_level + twist_db
    scale = 1.0 + frequency_error
    return sine(low_hz * scale, count, peak=dbm0_to_peak(low_level), phase=phases[0]) + sine(
        high_hz * scale, count, peak=dbm0_to_peak(high_level), phase=phases[1]
    )


def generate_dtmf(
    digits: str,
    *,
    on_s: float = DEFAULT_ON_S,
    off_s: float = DEFAULT_OFF_S,
    level_dbm0: float = -10.0,
    twist_db: float = 0.0,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Samples:
    """A dialled string: each digit `on_s` long, followed by `off_s` of silence."""
    parts = [np.zeros(round(lead_s * SAMPLE_RATE))]
    gap = np.zeros(round(off_s * SAMPLE_RATE))
    for digit in digits:
        parts.append(dtmf_tone(digit, duration_s=on_s, level_dbm0=level_dbm0, twist_db=twist_db))
        parts.append(gap)
    parts.append(np.zeros(round(tail_s * SAMPLE_RATE)))
    return np.concatenate(parts)
