"""What the simulated central office puts on the line: call-progress tones, the far party, caller ID
bursts (with the DT-AS that announces them on UK lines), line noise, slow level variation and the
hybrid's echo of what the gateway sends.

Every source is a state object asked for one 20 ms frame at a time, so phase and cadence run on
across frames. Randomness comes from the numpy Generator the line passes in (seeded), never from
a global.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from gateway_fxo.dsp.callerid import (
    callerid_dtmf_audio,
    callerid_fsk_audio,
    encode_dtmf_clip,
    encode_mdmf,
    encode_sdmf,
)
from gateway_fxo.dsp.dtas import generate_dtas
from gateway_fxo.dsp.fsk import BELL202, V23
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, dbm0_to_peak, dbm0_to_power
from gateway_fxo.dsp.resample import resample
from gateway_fxo.dsp.tones import BUSY, CONGESTION, DIAL, RINGBACK, TonePlan, tone_plan
from gateway_fxo.dsp.wav_file import read_wav
from gateway_fxo.line import FRAME_SAMPLES, CallerIdReceived

# Per-frequency tone levels. US: the "precise tone plan" (ANSI T1.401), where ringback is 6 dB
# and busy 11 dB below dial tone. Elsewhere every tone at one level (a simplification).
TONE_LEVELS_DBM0: dict[str, dict[str, float]] = {
    "US": {DIAL: -13.0, RINGBACK: -19.0, BUSY: -24.0, CONGESTION: -24.0},
    "UK": {DIAL: -13.0, RINGBACK: -13.0, BUSY: -13.0, CONGESTION: -13.0},
    "FR": {DIAL: -13.0, RINGBACK: -13.0, BUSY: -13.0, CONGESTION: -13.0},
    "DE": {DIAL: -13.0, RINGBACK: -13.0, BUSY: -13.0, CONGESTION: -13.0},
}

# Ring cadences (on, off, on, off... seconds), one cycle per "ring".
RING_CADENCES: dict[str, tuple[float, ...]] = {
    "US": (2.0, 4.0),  # Telcordia GR-506
    "UK": (0.4, 0.2, 0.4, 2.0),  # BT SIN 350: the double ring
    "FR": (1.5, 3.5),
    "DE": (1.0, 4.0),
}
COUNTRIES = tuple(RING_CADENCES)

# Caller ID as each country's exchanges send it by default: FSK after the first ring, except on
# UK lines (BT SIN 227), where a polarity reversal and a DT-AS announce V.23 before ringing.
DEFAULT_CALLER_ID_STANDARD = {"US": "bell202", "UK": "v23-dtas", "FR": "v23", "DE": "v23"}
V23_DTAS = "v23-dtas"
STANDARDS = ("bell202", "v23", V23_DTAS, "dtmf")
FORMATS = ("mdmf", "sdmf")

FSK_LEVEL_DBM0 = -13.0
DTMF_CLIP_LEVEL_DBM0 = -10.0
DTAS_LEVEL_DBM0 = -16.0  # per tone: the pair at -13 dBm0, as loud as the FSK after it
# SIN 227 / EN 300 659-1 6.1: the FSK starts 45-500 ms after the DT-AS ends (the terminal's
# current wetting pulse falls in this gap: a real FXO card applies it, the simulation notes it).
DTAS_TO_FSK_S = 0.1
DTAS_MARK_BITS = 80  # SIN 227: 55-90 mark bits after the DT-AS (180 after a ring)

# The hybrid's impulse response after its flat delay: the main reflection at lag 0, then a short
# decaying tail (a transformer's low-frequency roll-off and the line's mismatch). Scaled to unit
# energy, so white noise comes back exactly `gain_db` down.
HYBRID_TAPS = (1.0, 0.42, -0.28, -0.17, -0.06, 0.04)


class FrameSource(Protocol):
    """Something the exchange plays: the next FRAME_SAMPLES samples each time it is asked."""

    def frame(self) -> Samples: ...


class ToneSource:
    """A call-progress tone from its national plan, its cadence counted from its first sample."""

    def __init__(self, plan: TonePlan, *, level_dbm0: float | None = None) -> None:
        if level_dbm0 is None:
            level_dbm0 = TONE_LEVELS_DBM0.get(plan.country, {}).get(plan.tone, -13.0)
        level = level_dbm0
        self.plan = plan
        self._peak = dbm0_to_peak(level)
        self._omegas = [2.0 * math.pi * f / SAMPLE_RATE for f in plan.frequencies]
        bounds = np.cumsum([round(s * SAMPLE_RATE) for s in plan.cadence])
        self._bounds = bounds.astype(np.int64)
        self._period = int(bounds[-1]) if bounds.size else 0
        self._n = 0

    @classmethod
    def for_country(cls, country: str, tone: str, *, level_dbm0: float | None = None) -> ToneSource:
        """The country's tone; congestion falls back to busy where the plan has none (FR)."""
        try:
            plan = tone_plan(country, tone)
        except ValueError:
            if tone != CONGESTION:
                raise
            plan = tone_plan(country, BUSY)
        return cls(plan, level_dbm0=level_dbm0)

    def frame(self) -> Samples:
        n = np.arange(self._n, self._n + FRAME_SAMPLES, dtype=np.int64)
        self._n += FRAME_SAMPLES
        signal = np.zeros(FRAME_SAMPLES)
        for omega in self._omegas:
            signal += self._peak * np.sin(omega * n.astype(np.float64))
        if self._period:
            segment = np.searchsorted(self._bounds, n % self._period, side="right")
            signal = np.where(segment % 2 == 0, signal, 0.0)
        return signal


class SineSource:
    """The far party as a steady tone (a test signal the gateway can find by FFT)."""

    def __init__(self, frequency_hz: float, level_dbm0: float) -> None:
        self._omega = 2.0 * math.pi * frequency_hz / SAMPLE_RATE
        self._peak = dbm0_to_peak(level_dbm0)
        self._n = 0

    def frame(self) -> Samples:
        n = np.arange(self._n, self._n + FRAME_SAMPLES, dtype=np.float64)
        self._n += FRAME_SAMPLES
        return self._peak * np.sin(self._omega * n)


class LoopedSamples:
    """The far party as a recording, played over and over."""

    def __init__(self, samples: Samples) -> None:
        if samples.size == 0:
            raise ValueError("an empty recording cannot be played")
        self._samples = samples
        self._position = 0

    def frame(self) -> Samples:
        count = self._samples.size
        index = (np.arange(FRAME_SAMPLES) + self._position) % count
        self._position = (self._position + FRAME_SAMPLES) % count
        return self._samples[index]


def load_recording(path: str | Path) -> Samples:
    """A WAV file (any rate, first channel) as 8 kHz samples, at the level it was recorded."""
    samples, rate = read_wav(path)
    return resample(samples, rate) if rate != SAMPLE_RATE else samples


class BurstPlayer:
    """A finished signal (a caller ID burst) cut into frames; the last one is padded with zeros."""

    def __init__(self, samples: Samples) -> None:
        self._samples = samples
        self._position = 0

    @property
    def done(self) -> bool:
        return self._position >= self._samples.size

    def frame(self) -> Samples:
        chunk = self._samples[self._position : self._position + FRAME_SAMPLES]
        self._position += FRAME_SAMPLES
        if chunk.size < FRAME_SAMPLES:
            chunk = np.concatenate((chunk, np.zeros(FRAME_SAMPLES - chunk.size)))
        return chunk


class LevelWander:
    """Slow level variation of what the exchange sends: a mean-reverting random walk in dB,
    bounded by `depth_db`, interpolated within each frame so the gain never steps."""

    def __init__(self, rng: np.random.Generator, depth_db: float, *, step_db: float = 0.05):
        self._rng = rng
        self._depth = abs(depth_db)
        self._step = step_db
        self._db = 0.0

    def gains(self) -> Samples:
        if self._depth == 0.0:
            return np.ones(FRAME_SAMPLES)
        target = 0.995 * self._db + self._rng.normal(0.0, self._step)
        target = min(self._depth, max(-self._depth, target))
        ramp = np.linspace(self._db, target, FRAME_SAMPLES, endpoint=False)
        self._db = target
        gains: Samples = np.power(10.0, ramp / 20.0)
        return gains


class LineNoise:
    """White noise at a level in dBm0 (None: a perfectly quiet line)."""

    def __init__(self, rng: np.random.Generator, level_dbm0: float | None) -> None:
        self._rng = rng
        self._rms = 0.0 if level_dbm0 is None else math.sqrt(dbm0_to_power(level_dbm0))

    def frame(self) -> Samples:
        if self._rms == 0.0:
            return np.zeros(FRAME_SAMPLES)
        noise: Samples = self._rms * self._rng.standard_normal(FRAME_SAMPLES)
        return noise


class HybridEcho:
    """The 2-to-4-wire hybrid: what the gateway sends comes back `delay_s` later, through a short
    FIR (`taps`, scaled to unit energy) and `gain_db` down. Fed every frame sent, in order."""

    def __init__(
        self, *, delay_s: float, gain_db: float, taps: Sequence[float] = HYBRID_TAPS
    ) -> None:
        response = np.asarray(taps, dtype=np.float64)
        norm = float(np.sqrt(np.sum(response * response)))
        if response.ndim != 1 or response.size == 0 or norm == 0.0 or delay_s < 0.0:
            raise ValueError("the echo path needs some non-zero taps and a delay >= 0")
        self.delay = round(delay_s * SAMPLE_RATE)
        self._taps = response / norm * 10.0 ** (gain_db / 20.0)
        self._history = np.zeros(self.delay + response.size - 1)

    def reset(self) -> None:
        self._history[:] = 0.0

    def frame(self, sent: Samples) -> Samples:
        # y[n] = sum_k h[k] x[n - delay - k], with x the history followed by this frame.
        x = np.concatenate((self._history, sent))
        first = self._history.size - self.delay
        full = np.convolve(x, self._taps)
        echo: Samples = full[first : first + FRAME_SAMPLES]
        if self._history.size:
            self._history = x[-self._history.size :]
        return echo


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdBurst:
    """Caller ID as it goes down the line, and what a decoder would report from it."""

    samples: Samples
    event: CallerIdReceived
    before_ring: bool  # DTMF CLIP and DT-AS + FSK come before the first ring; FSK alone after it
    polarity_reversal: bool = False  # announced by a line reversal (the DT-AS opens `samples`)


def caller_id_burst(
    *,
    standard: str,
    caller_id_format: str,
    number: str | None,
    name: str | None,
    absence_reason: str | None,
    datetime: str,
) -> CallerIdBurst:
    """Frame and modulate one caller ID message (CallerIdError when it cannot be sent)."""
    if standard not in STANDARDS:
        raise ValueError(f"caller ID standard must be one of {', '.join(STANDARDS)}")
    if caller_id_format not in FORMATS:
        raise ValueError(f"caller ID format must be one of {', '.join(FORMATS)}")
    if standard == "dtmf":
        keys = encode_dtmf_clip(number, absence_reason=absence_reason)
        event = CallerIdReceived(
            number=number, name=None, standard="dtmf", absence_reason=absence_reason
        )
        return CallerIdBurst(
            samples=callerid_dtmf_audio(keys, level_dbm0=DTMF_CLIP_LEVEL_DBM0),
            event=event,
            before_ring=True,
        )
    if caller_id_format == "sdmf":
        message = encode_sdmf(datetime=datetime, number=number, absence_reason=absence_reason)
        name = None  # SDMF has no name
    else:
        message = encode_mdmf(
            datetime=datetime,
            number=number,
            name=name,
            absence_reason=absence_reason,
            name_absence_reason=absence_reason if name is None else None,
        )
    modem = BELL202 if standard == "bell202" else V23
    event = CallerIdReceived(
        number=number,
        name=name,
        standard=modem.name,
        datetime=datetime,
        absence_reason=absence_reason,
    )
    if standard == V23_DTAS:
        fsk = callerid_fsk_audio(message, V23, level_dbm0=FSK_LEVEL_DBM0, mark_bits=DTAS_MARK_BITS)
        gap = np.zeros(round(DTAS_TO_FSK_S * SAMPLE_RATE))
        return CallerIdBurst(
            samples=np.concatenate((generate_dtas(level_dbm0=DTAS_LEVEL_DBM0), gap, fsk)),
            event=event,
            before_ring=True,
            polarity_reversal=True,
        )
    return CallerIdBurst(
        samples=callerid_fsk_audio(message, modem, level_dbm0=FSK_LEVEL_DBM0),
        event=event,
        before_ring=False,
    )
