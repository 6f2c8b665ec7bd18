"""Sample format and level conventions shared by every DSP file.

Audio is 8 kHz, 16-bit signed linear PCM. Levels are in dBm0: by ITU-T G.711 a 0 dBm0 sine wave
peaks 3.17 dB below the codec's full scale (the u-law load capacity is +3.17 dBm0).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

Samples = npt.NDArray[np.float64]
"""A block of samples as float64 on the 16-bit scale (full scale = 32768)."""

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # one 20 ms frame
FULL_SCALE = 32768.0
DBM0_PEAK_BELOW_FULL_SCALE_DB = 3.17  # G.711 (u-law): 0 dBm0 sine peak vs full scale
DBM0_PEAK = FULL_SCALE * math.pow(10.0, -DBM0_PEAK_BELOW_FULL_SCALE_DB / 20.0)
"""Peak amplitude of a 0 dBm0 sine wave (about 22 764)."""
DBM0_POWER = DBM0_PEAK * DBM0_PEAK / 2.0
"""Mean square of a 0 dBm0 sine wave: the reference power for every level in dBm0."""


def as_samples(block: npt.ArrayLike) -> Samples:
    """Any 1-D block (int16 PCM, floats, a list) as float64 samples on the 16-bit scale."""
    array = np.asarray(block, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"a block of samples must be one-dimensional, not {array.ndim}-D")
    return array


def dbm0_to_peak(level_dbm0: float) -> float:
    """Peak amplitude of a sine wave at this level."""
    return DBM0_PEAK * math.pow(10.0, level_dbm0 / 20.0)


def dbm0_to_power(level_dbm0: float) -> float:
    """Mean square of a signal at this level."""
    return DBM0_POWER * math.pow(10.0, level_dbm0 / 10.0)


def power_to_dbm0(power: float) -> float:
    """Level of a signal whose mean square is `power` (-inf for silence)."""
    if power <= 0.0:
        return -math.inf
    return 10.0 * math.log10(power / DBM0_POWER)


def level_dbm0(block: npt.ArrayLike) -> float:
    """Level of a block of samples (its mean square in dBm0)."""
    samples = as_samples(block)
    if samples.size == 0:
        return -math.inf
    return power_to_dbm0(float(np.mean(samples * samples)))


def to_pcm16(samples: npt.ArrayLike) -> npt.NDArray[np.int16]:
    """Round and clip float samples to 16-bit PCM, as a DAC or a codec input would."""
    array = np.rint(np.asarray(samples, dtype=np.float64))
    return np.clip(array, -32768, 32767).astype(np.int16)


def sine(frequency: float, count: int, *, peak: float, phase: float = 0.0) -> Samples:
    """`count` samples of a sine wave at 8 kHz (a building block for generators)."""
    n = np.arange(count, dtype=np.float64)
    return peak * np.sin(2.0 * math.pi * frequency * n / SAMPLE_RATE + phase)


class SampleSpan:
    """A detection's ``start`` and ``end`` (samples at 8 kHz in the pushed stream, end
    exclusive) read as seconds; mixed into the detectors' result records."""

    __slots__ = ()
    start: int
    end: int

    @property
    def start_s(self) -> float:
        return self.start / SAMPLE_RATE

    @property
    def end_s(self) -> float:
        return self.end / SAMPLE_RATE

    @property
    def duration_s(self) -> float:
        return (self.end - self.start) / SAMPLE_RATE
