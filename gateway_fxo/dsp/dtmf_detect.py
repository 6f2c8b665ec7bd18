"""DTMF receiver after ITU-T Q.24: pushed blocks of samples in, completed digits out.

Every 51 samples a 102-sample window (12.75 ms) is screened with Goertzel powers at the eight key
frequencies, then the strongest row and column are fitted by least squares. A window votes for a
key when the two fitted tones are loud enough, within the twist limits, each within the frequency
tolerance, carry most of the window's energy, leave little at the other keys' frequencies and no
second harmonics (speech has them, DTMF has not). A key
is accepted after `hits` consecutive votes (>= 40 ms of tone is always accepted, <= 20 ms never)
and ends after `misses` consecutive non-votes (a break of <= 10 ms is bridged, 40 ms ends it).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.dtmf_generate import DTMF_COL_HZ, DTMF_KEYPAD, DTMF_ROW_HZ
from gateway_fxo.dsp.goertzel import GoertzelBank
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, SampleSpan, dbm0_to_power
from gateway_fxo.dsp.windows import SlidingWindows

WINDOW = 102  # 12.75 ms: resolves the 73 Hz spacing of the low group
HOP = WINDOW // 2
# A vote needs a window almost wholly inside the tone, so the tone began somewhere in the hop
# before the first voting window and ended in the hop after the last: report the middle.
EDGE_SAMPLES = 16
# Loose first cuts on the Goertzel powers of the window, before the exact pair fit.
SCREEN_SHARE = 0.5
SCREEN_PEAK_SLACK_DB = 4.0  # leakage of a strong tone narrows the raw peak (checked on the fit)


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfSettings:
    """Acceptance limits; the defaults follow Q.24's common administration values.

    Q.24 (AT&T column) accepts the high group from 8 dB below to 4 dB above the low group; the
    limits here are 1.5 dB wider, since u-law and line noise move a 12.75 ms window's measure
    of the twist by up to +-0.2 dB (no noise), +-0.9 dB (20 dB SNR) and +-1.2 dB (15 dB), and
    Q.24 sets no twist that must be rejected (10 dB below / 6 dB above are, see the README).
    """

    min_level_dbm0: float = -42.0  # each tone of the pair
    normal_twist_db: float = 9.5  # high group weaker than the low group by at most this
    reverse_twist_db: float = 5.5  # high group stronger than the low group by at most this
    relative_peak_db: float = 8.0  # best row/column above every other row/column by this
    min_tone_share: float = 0.91  # the pair's share of the window's energy (others <= -10 dB)
    harmonic_db: float = 12.0  # second harmonic below its fundamental by at least this
    max_frequency_error: float = 0.025  # each tone's measured offset (Q.24: 1.5 % in, 3.5 % out)
    hits: int = 4  # consecutive votes to accept a key (4 windows span 32 ms)
    misses: int = 5  # consecutive non-votes to end it

    def __post_init__(self) -> None:
        if self.hits < 1 or self.misses < 1:
            raise ValueError("hits and misses must be at least 1")
        if not 0.0 < self.min_tone_share <= 1.0:
            raise ValueError("min_tone_share must be in (0, 1]")


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDigit(SampleSpan):
    """A key that was pressed: its sample range in the pushed stream (end exclusive)."""

    digit: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.end < self.start:
            raise ValueError("a digit is one key over a non-negative span")


@functools.cache
def _pair_bases() -> dict[tuple[int, int], tuple[Samples, Samples]]:
    """For each (row, column) pair: the basis of a least-squares fit of the two tones and its
    pseudo-inverse, so the checks see what the pair does not explain instead of the pair's own
    spectral leakage. Each tone gets cos, sin, n*cos and n*sin (n from the window's middle): the
    last two absorb the Q.24 frequency tolerance (+-1.5 %) and measure the tone's offset.
    Computed once per process (16 pseudo-inverses), shared read-only by every detector."""
    n = np.arange(WINDOW, dtype=np.float64) - (WINDOW - 1) / 2.0
    bases: dict[tuple[int, int], tuple[Samples, Samples]] = {}
    for r, row_hz in enumerate(DTMF_ROW_HZ):
        for c, col_hz in enumerate(DTMF_COL_HZ):
            cols = []
            for f in (row_hz, col_hz):
                w = 2.0 * math.pi * f / SAMPLE_RATE
                cols += [np.cos(w * n), np.sin(w * n), n * np.cos(w * n), n * np.sin(w * n)]
            basis = np.stack(cols, axis=1)
            pinv = np.linalg.pinv(basis)
            basis.flags.writeable = False
            pinv.flags.writeable = False
            bases[(r, c)] = (basis, pinv)
    return bases


class _Scorer:
    """Per-window key votes: the Q.24 acceptance checks, all windows of a push at once."""

    def __init__(self, settings: DtmfSettings) -> None:
        self.settings = settings
        fundamentals = DTMF_ROW_HZ + DTMF_COL_HZ
        self._fundamentals = GoertzelBank(fundamentals, WINDOW)
        # On the fit's residual: the other rows and columns, then the second harmonics.
        self._residual = GoertzelBank([*fundamentals, *(2.0 * f for f in fundamentals)], WINDOW)
        self._pair_basis = _pair_bases()
        self._min_power = dbm0_to_power(settings.min_level_dbm0)
        self._normal = 10.0 ** (-settings.normal_twist_db / 10.0)
        self._reverse = 10.0 ** (settings.reverse_twist_db / 10.0)
        self._peak = 10.0 ** (settings.relative_peak_db / 10.0)
        self._screen_peak = 10.0 ** ((settings.relative_peak_db - SCREEN_PEAK_SLACK_DB) / 10.0)
        self._harmonic = 10.0 ** (-settings.harmonic_db / 10.0)

    def votes(self, windows: Samples) -> list[str | None]:
        if windows.shape[0] == 0:
            return []
        powers = self._fundamentals.powers(windows)
        rows, cols = powers[:, :4], powers[:, 4:]
        best_row = np.argmax(rows, axis=1)
        best_col = np.argmax(cols, axis=1)
        index = np.arange(windows.shape[0])
        row_power = rows[index, best_row]
        col_power = cols[index, best_col]
        mean_power = np.mean(windows * windows, axis=1)
        # Cheap screens on the Goertzel powers first, for all windows at once.
        screen = np.minimum(row_power, col_power) >= self._min_power * 0.5
        other_rows = rows.copy()
        other_rows[index, best_row] = 0.0
        other_cols = cols.copy()
        other_cols[index, best_col] = 0.0
        screen &= np.max(other_rows, axis=1) * self._screen_peak <= row_power
        screen &= np.max(other_cols, axis=1) * self._screen_peak <= col_power
        screen &= row_power + col_power >= SCREEN_SHARE * mean_power
        result: list[str | None] = [None] * windows.shape[0]
        for i in np.flatnonzero(screen).tolist():
            r = int(best_row[i])
            c = int(best_col[i])
            if self._pair_accepted(windows[i], r, c):
                result[i] = DTMF_KEYPAD[r][c]
        return result

    def _pair_accepted(self, window: Samples, r: int, c: int) -> bool:
        """Level, twist, frequency and harmonics, on a least-squares fit of the two tones: unlike
        single Goertzel bins, the fit is not biased by one tone leaking into the other's bin."""
        basis, pinv = self._pair_basis[(r, c)]
        coefficients = pinv @ window
        # Each tone's power is that of its whole fitted component: the cos/sin terms alone lose
        # up to 1.5 dB on a high-group tone 1.5 % off (the phase drifts by +-1 rad over the
        # window), which pushed keys at the edge of the twist limits out of them.
        row_fit = basis[:, :4] @ coefficients[:4]
        col_fit = basis[:, 4:] @ coefficients[4:]
        row_power = float(row_fit @ row_fit) / WINDOW
        col_power = float(col_fit @ col_fit) / WINDOW
        if min(row_power, col_power) < self._min_power:
            return False
        if not row_power * self._normal <= col_power <= row_power * self._reverse:
            return False
        row_offset = _relative_offset(coefficients[:4], DTMF_ROW_HZ[r])
        col_offset = _relative_offset(coefficients[4:], DTMF_COL_HZ[c])
        if max(abs(row_offset), abs(col_offset)) > self.settings.max_frequency_error:
            return False
        fitted = row_fit + col_fit
        total = float(window @ window)
        if float(fitted @ fitted) < self.settings.min_tone_share * total:
            return False
        # What the pair does not explain, at the other keys' frequencies and at the pair's second
        # harmonics. On the raw window a low-group tone 8 dB above the high group leaks into the
        # other columns' bins by about as much as the relative peak allows.
        residual = self._residual.powers(window - fitted)[0]
        others = residual[:8].copy()
        others[r] = others[4 + c] = 0.0
        harmonics = residual[8:]
        return bool(
            float(np.max(others[:4])) * self._peak <= row_power
            and float(np.max(others[4:])) * self._peak <= col_power
            and harmonics[r] <= row_power * self._harmonic
            and harmonics[4 + c] <= col_power * self._harmonic
        )


def _relative_offset(coefficients: Samples, frequency_hz: float) -> float:
    """A tone's frequency error (0.01 = 1 % high) from its cos, sin, n*cos, n*sin coefficients.

    A cos((w + d) n + p) ~ A cos(w n + p) - A d n sin(w n + p): with a = A cos p, b = -A sin p
    the n-terms are c = -A d sin p and d' = -A d cos p, so d = (b c - a d') / (a^2 + b^2). Exact
    to 0.1 % of the frequency up to 1.5 % off, overestimating beyond (3.5 % reads as 3.7-6 %).
    """
    a, b, c, d = (float(x) for x in coefficients)
    amplitude2 = a * a + b * b
    if amplitude2 <= 0.0:
        return math.inf
    omega = 2.0 * math.pi * frequency_hz / SAMPLE_RATE
    return (b * c - a * d) / amplitude2 / omega


class DtmfDetector:
    """A DTMF receiver: push blocks of any length, get each digit once it has ended."""

    def __init__(self, settings: DtmfSettings | None = None) -> None:
        self.settings = settings if settings is not None else DtmfSettings()
        self._scorer = _Scorer(self.settings)
        self._windows = SlidingWindows(WINDOW, HOP)
        self._candidate: str | None = None
        self._candidate_start = 0
        self._candidate_hits = 0
        self._active: str | None = None
        self._active_start = 0
        self._last_hit_end = 0
        self._misses = 0

    @property
    def current(self) -> str | None:
        """The key being held down right now, once accepted."""
        return self._active

    def push(self, block: npt.ArrayLike) -> list[DtmfDigit]:
        """Feed samples; return the digits that ended within them."""
        windows, first_start = self._windows.push(block)
        events: list[DtmfDigit] = []
        for k, vote in enumerate(self._scorer.votes(windows)):
            start = first_start + k * HOP
            event = self._step(vote, start)
            if event is not None:
                events.append(event)
        return events

    def finish(self) -> list[DtmfDigit]:
        """End of the stream: report a digit still held."""
        if self._active is None:
            return []
        event = self._digit(self._active, self._active_start, self._last_hit_end)
        self._active = None
        self._candidate = None
        self._candidate_hits = 0
        return [event]

    def _step(self, vote: str | None, start: int) -> DtmfDigit | None:
        end = start + WINDOW
        if vote is not None and vote == self._candidate:
            self._candidate_hits += 1
        else:
            self._candidate = vote
            self._candidate_hits = 1 if vote is not None else 0
            self._candidate_start = start
        if self._active is not None:
            if vote == self._active:
                self._last_hit_end = end
                self._misses = 0
                return None
            self._misses += 1
            if self._misses < self.settings.misses:
                return None
            event = self._digit(self._active, self._active_start, self._last_hit_end)
            self._active = None
            if self._candidate_hits >= self.settings.hits:
                self._accept()
            return event
        if self._candidate is not None and self._candidate_hits >= self.settings.hits:
            self._accept()
        return None

    def _accept(self) -> None:
        self._active = self._candidate
        self._active_start = self._candidate_start
        self._last_hit_end = self._candidate_start + WINDOW + (self._candidate_hits - 1) * HOP
        self._misses = 0

    @staticmethod
    def _digit(digit: str, first_window_start: int, last_window_end: int) -> DtmfDigit:
        start = max(0, first_window_start - EDGE_SAMPLES)
        end = max(start, last_window_end + EDGE_SAMPLES)
        return DtmfDigit(digit=digit, start=start, end=end)
