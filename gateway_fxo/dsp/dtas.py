"""The Dual Tone Alerting Signal (DT-AS): 2130 Hz + 2750 Hz for about 100 ms, which tells an
on-hook terminal that caller ID data follows (ETSI EN 300 659-1 section 6.1 "prior to ringing";
BT SIN 227, after a polarity reversal). Bell's CPE Alerting Signal (CAS, 80 ms, call waiting
caller ID) is the same pair, so it is found too. A generator and a receiver.

Every 40 samples an 80-sample window (10 ms) is fitted by least squares with the two tones (cos,
sin, n*cos, n*sin each, n from the window's middle, so a frequency error of a percent or two
still fits). A window votes when the pair holds most of its energy, each tone is loud enough and
the two are within the twist limit. A run of votes is one alert if, measured between the points
where both tones reach half their amplitude in the run, it lasted like a DT-AS (70-130 ms):
speech, DTMF and caller ID FSK (V.23 space is 2100 Hz, Bell 202 space 2200 Hz, but neither has
2750 Hz) never put both tones there together for that long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.levels import (
    SAMPLE_RATE,
    Samples,
    SampleSpan,
    dbm0_to_peak,
    dbm0_to_power,
)
from gateway_fxo.dsp.windows import SlidingWindows

# EN 300 659-1 6.1.1: 2130 Hz and 2750 Hz (+-0.5 %; SIN 227 allows +-1.1 %), 100 ms +-10 ms
# (SIN 227: 88-110 ms), -2 to -40 dBV per tone, the two within 6 dB of each other.
DTAS_LOW_HZ = 2130.0
DTAS_HIGH_HZ = 2750.0
DTAS_DURATION_S = 0.1
DTAS_LEVEL_DBM0 = -16.0  # per tone, as the simulated exchange sends it

WINDOW = 80  # 10 ms: the tones are 620 Hz apart, nothing finer is needed
HOP = WINDOW // 2


def generate_dtas(
    *,
    level_dbm0: float = DTAS_LEVEL_DBM0,
    twist_db: float = 0.0,
    seconds: float = DTAS_DURATION_S,
    frequency_error: float = 0.0,
    phases: tuple[float, float] = (0.0, 0.0),
) -> Samples:
    """A DT-AS: each tone at `level_dbm0` (the high tone `twist_db` louder), both off in
    frequency by the fraction `frequency_error`."""
    n = np.arange(round(seconds * SAMPLE_RATE), dtype=np.float64)
    signal = np.zeros(n.size)
    levels = (level_dbm0, level_dbm0 + twist_db)
    for frequency, level, phase in zip((DTAS_LOW_HZ, DTAS_HIGH_HZ), levels, phases, strict=True):
        omega = 2.0 * math.pi * frequency * (1.0 + frequency_error) / SAMPLE_RATE
        signal += dbm0_to_peak(level) * np.sin(omega * n + phase)
    return signal


@dataclass(frozen=True, slots=True, kw_only=True)
class DtasSettings:
    """Acceptance limits (receiver margins around EN 300 659-1 and SIN 227)."""

    min_level_dbm0: float = -42.0  # each tone (-40 dBV is about -38 dBm0 at a 0 dBr point)
    max_twist_db: float = 8.0  # between the tones either way (sent within 6 dB)
    min_tone_share: float = 0.8  # of a window's energy in the fitted pair
    min_duration_s: float = 0.07  # sent 88-110 ms (DT-AS), 75-85 ms (Bell CAS)
    max_duration_s: float = 0.13
    misses: int = 3  # non-voting windows that end a run (a 10 ms dropout is bridged)

    def __post_init__(self) -> None:
        if not 0.0 < self.min_tone_share <= 1.0:
            raise ValueError("min_tone_share must be in (0, 1]")
        if not 0.0 < self.min_duration_s < self.max_duration_s:
            raise ValueError("the duration limits must satisfy 0 < min < max")
        if self.misses < 1:
            raise ValueError("misses must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class DtasAlert(SampleSpan):
    """An alerting signal heard from `start` to `end` (samples in the pushed stream, end
    exclusive)."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError("an alert ends after it starts")


@dataclass(slots=True)
class _Run:
    """Consecutive voting windows: their starts and the two tones' amplitudes."""

    starts: list[int] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)
    misses: int = 0


class DtasDetector:
    """A DT-AS receiver: push blocks of any length, get each alert once it has ended."""

    def __init__(self, settings: DtasSettings | None = None) -> None:
        self.settings = settings if settings is not None else DtasSettings()
        n = np.arange(WINDOW, dtype=np.float64) - (WINDOW - 1) / 2.0
        columns = []
        for frequency in (DTAS_LOW_HZ, DTAS_HIGH_HZ):
            w = 2.0 * math.pi * frequency / SAMPLE_RATE
            columns += [np.cos(w * n), np.sin(w * n), n * np.cos(w * n), n * np.sin(w * n)]
        self._basis = np.stack(columns, axis=1)
        self._pinv = np.linalg.pinv(self._basis)
        self._min_power = dbm0_to_power(self.settings.min_level_dbm0)
        self._twist = 10.0 ** (self.settings.max_twist_db / 10.0)
        # A run longer than this is no alert; it is followed to its end but not stored.
        self._max_windows = math.ceil(self.settings.max_duration_s * SAMPLE_RATE / HOP) + 4
        self._windows = SlidingWindows(WINDOW, HOP)
        self._run: _Run | None = None

    def push(self, block: npt.ArrayLike) -> list[DtasAlert]:
        """Feed samples; return the alerts that ended within them."""
        windows, first_start = self._windows.push(block)
        if windows.shape[0] == 0:
            return []
        votes, low, high = self._votes(windows)
        alerts: list[DtasAlert] = []
        for k, vote in enumerate(votes.tolist()):
            alert = self._step(vote, first_start + k * HOP, float(low[k]), float(high[k]))
            if alert is not None:
                alerts.append(alert)
        return alerts

    def finish(self) -> list[DtasAlert]:
        """End of the stream: judge a run still going."""
        run, self._run = self._run, None
        alert = self._judge(run) if run is not None else None
        return [alert] if alert is not None else []

    def _votes(self, windows: Samples) -> tuple[npt.NDArray[np.bool_], Samples, Samples]:
        coefficients = windows @ self._pinv.T
        fitted = coefficients @ self._basis.T
        energy = np.einsum("ij,ij->i", windows, windows)
        share = np.einsum("ij,ij->i", fitted, fitted) / np.maximum(energy, 1e-9)
        # With n centred, cos/sin give each tone's amplitude in the middle of the window.
        low = np.sqrt(coefficients[:, 0] ** 2 + coefficients[:, 1] ** 2)
        high = np.sqrt(coefficients[:, 4] ** 2 + coefficients[:, 5] ** 2)
        low_power = 0.5 * low * low
        high_power = 0.5 * high * high
        votes = share >= self.settings.min_tone_share
        votes &= np.minimum(low_power, high_power) >= self._min_power
        votes &= high_power <= low_power * self._twist
        votes &= low_power <= high_power * self._twist
        return votes, low, high

    def _step(self, vote: bool, start: int, low: float, high: float) -> DtasAlert | None:
        run = self._run
        if vote:
            if run is None:
                run = self._run = _Run()
            run.misses = 0
            if len(run.starts) <= self._max_windows:
                run.starts.append(start)
                run.low.append(low)
                run.high.append(high)
            return None
        if run is None:
            return None
        run.misses += 1
        if run.misses < self.settings.misses:
            return None
        self._run = None
        return self._judge(run)

    def _judge(self, run: _Run) -> DtasAlert | None:
        if len(run.starts) > self._max_windows:
            return None
        low_half = 0.5 * float(np.median(run.low))
        high_half = 0.5 * float(np.median(run.high))
        full = [
            start
            for start, low, high in zip(run.starts, run.low, run.high, strict=True)
            if low >= low_half and high >= high_half
        ]
        if not full:
            return None
        # A window whose middle sits on the tone's edge sees half its amplitude: the first and
        # last such windows are within one hop inside the tone, so add half a hop each side.
        start = full[0] + WINDOW // 2 - HOP // 2
        end = full[-1] + WINDOW // 2 + HOP // 2
        duration = (end - start) / SAMPLE_RATE
        if not self.settings.min_duration_s <= duration <= self.settings.max_duration_s:
            return None
        return DtasAlert(start=max(0, start), end=end)
