"""Test signals: line noise, speech-like voices, and the codec, all from a seeded generator."""

from __future__ import annotations

import math

import numpy as np

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, dbm0_to_power, level_dbm0

from .g711_for_tests import ulaw_round_trip


def white_noise(rng: np.random.Generator, count: int, level: float) -> Samples:
    """Gaussian white noise at `level` dBm0."""
    return rng.standard_normal(count) * math.sqrt(dbm0_to_power(level))


def add_noise(rng: np.random.Generator, signal: Samples, snr_db: float, ref_dbm0: float) -> Samples:
    """`signal` plus white noise `snr_db` below a reference level (the tone's level)."""
    if math.isinf(snr_db):
        return signal
    return signal + white_noise(rng, signal.size, ref_dbm0 - snr_db)


def through_codec(signal: Samples) -> Samples:
    return ulaw_round_trip(signal)


def speech_like(rng: np.random.Generator, seconds: float, level: float = -15.0) -> Samples:
    """A voiced, vowel-like signal: a harmonic series with gliding pitch, vibrato and moving
    formants, in syllables with pauses. Hard on DTMF talk-off (many tonal components)."""
    count = round(seconds * SAMPLE_RATE)
    t = np.arange(count) / SAMPLE_RATE
    base = rng.uniform(90.0, 240.0)
    glide = base * (
        1.0 + 0.25 * np.sin(2 * math.pi * rng.uniform(0.2, 0.8) * t + rng.uniform(0, 6))
    )
    vibrato = 1.0 + 0.02 * np.sin(2 * math.pi * rng.uniform(4.0, 7.0) * t)
    f0 = glide * vibrato
    phase = 2 * math.pi * np.cumsum(f0) / SAMPLE_RATE
    # Formants that move between vowels (F1 300-900 Hz, F2 900-2500 Hz, F3 2300-3200 Hz).
    f1 = 600 + 300 * np.sin(2 * math.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6))
    f2 = 1700 + 800 * np.sin(2 * math.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6))
    f3 = 2700 + 400 * np.sin(2 * math.pi * rng.uniform(0.5, 2) * t + rng.uniform(0, 6))
    out = np.zeros(count)
    harmonic = 1
    while True:
        fh = harmonic * f0
        if float(np.min(fh)) > 3600.0:
            break
        gain = np.zeros(count)
        for formant, width, weight in ((f1, 90.0, 1.0), (f2, 120.0, 0.5), (f3, 160.0, 0.25)):
            gain += weight / (1.0 + ((fh - formant) / width) ** 2)
        out += np.where(fh < 3800.0, gain, 0.0) * np.sin(harmonic * phase)
        harmonic += 1
    syllables = 0.5 * (1.0 - np.cos(2 * math.pi * rng.uniform(3.0, 5.0) * t))
    out *= syllables
    return out * 10 ** ((level - level_dbm0(out)) / 20.0)
