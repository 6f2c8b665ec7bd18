"""Call-progress tones: national plans, a generator, and a cadence-matching detector.

Each 20 ms window (every 10 ms) is fitted, by least squares, with the sines of each frequency set
the country uses; a window is "on" for a set when the fit holds most of its energy, every tone
of the set is present, and it is at least half as loud as the loudest window of its own burst
(so on/off edges are placed where the tone is half there, whatever the level, and nothing heard
before the burst, a louder tone or speech, raises the bar for it). Runs of on and off are then
matched against the plan's cadence: a cadenced tone is reported once two of its cycles have been
seen, a continuous one (dial) once it has lasted long enough.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, SampleSpan, dbm0_to_peak, dbm0_to_power
from gateway_fxo.dsp.windows import SlidingWindows

DIAL = "dial"
BUSY = "busy"
CONGESTION = "congestion"  # "reorder" in North America
RINGBACK = "ringback"


@dataclass(frozen=True, slots=True, kw_only=True)
class TonePlan:
    """One national tone: its frequencies (summed) and cadence (on, off, on, off... seconds;
    empty for a continuous tone)."""

    tone: str
    country: str
    frequencies: tuple[float, ...]
    cadence: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.frequencies or len(self.cadence) % 2:
            raise ValueError("a tone has frequencies and an even on/off cadence")

    @property
    def continuous(self) -> bool:
        return not self.cadence

    @property
    def period_s(self) -> float:
        return sum(self.cadence)


def _plan(tone: str, country: str, freqs: tuple[float, ...], *cadence: float) -> TonePlan:
    return TonePlan(tone=tone, country=country, frequencies=freqs, cadence=cadence)


# US: ANSI T1.401 / "precise tone plan"; UK: BT SIN 350; FR: France Telecom (ETSI TR 101 041);
# DE: Deutsche Telekom 1 TR 110 (ETSI TR 101 041).
TONE_PLANS: dict[str, tuple[TonePlan, ...]] = {
    "US": (
        _plan(DIAL, "US", (350.0, 440.0)),
        _plan(BUSY, "US", (480.0, 620.0), 0.5, 0.5),
        _plan(CONGESTION, "US", (480.0, 620.0), 0.25, 0.25),
        _plan(RINGBACK, "US", (440.0, 480.0), 2.0, 4.0),
    ),
    "UK": (
        _plan(DIAL, "UK", (350.0, 440.0)),
        _plan(BUSY, "UK", (400.0,), 0.375, 0.375),
        _plan(CONGESTION, "UK", (400.0,), 0.4, 0.35, 0.225, 0.525),
        _plan(RINGBACK, "UK", (400.0, 450.0), 0.4, 0.2, 0.4, 2.0),
    ),
    "FR": (
        _plan(DIAL, "FR", (440.0,)),
        _plan(BUSY, "FR", (440.0,), 0.5, 0.5),
        _plan(RINGBACK, "FR", (440.0,), 1.5, 3.5),
    ),
    "DE": (
        _plan(DIAL, "DE", (425.0,)),
        _plan(BUSY, "DE", (425.0,), 0.48, 0.48),
        _plan(CONGESTION, "DE", (425.0,), 0.24, 0.24),
        _plan(RINGBACK, "DE", (425.0,), 1.0, 4.0),
    ),
}
COUNTRIES = tuple(TONE_PLANS)


def tone_plan(country: str, tone: str) -> TonePlan:
    for plan in TONE_PLANS.get(country.upper(), ()):
        if plan.tone == tone:
            return plan
    raise ValueError(f"no {tone!r} tone for country {country!r}")


def generate_tone(plan: TonePlan, seconds: float, *, level_dbm0: float = -13.0) -> Samples:
    """`seconds` of a tone, starting with its first on period; `level_dbm0` is each component's
    level (national plans give per-frequency levels)."""
    count = round(seconds * SAMPLE_RATE)
    n = np.arange(count, dtype=np.float64)
    signal = np.zeros(count)
    peak = dbm0_to_peak(level_dbm0)
    for frequency in plan.frequencies:
        signal += peak * np.sin(2.0 * math.pi * frequency * n / SAMPLE_RATE)
    if plan.continuous:
        return signal
    gate = np.zeros(count, dtype=np.bool_)
    t = 0.0
    k = 0
    while t < seconds:
        length = plan.cadence[k % len(plan.cadence)]
        if k % 2 == 0:
            gate[round(t * SAMPLE_RATE) : round((t + length) * SAMPLE_RATE)] = True
        t += length
        k += 1
    result: Samples = np.where(gate, signal, 0.0)
    return result


@dataclass(frozen=True, slots=True, kw_only=True)
class ToneEvent(SampleSpan):
    """A call-progress tone that was heard from `start` to `end` (samples, end exclusive)."""

    tone: str
    country: str
    start: int
    end: int


WINDOW = 160
HOP = 80
MIN_SHARE = 0.7  # of a window's energy in the fitted tones
MAX_COMPONENT_SPREAD_DB = 12.0  # between the tones of a pair
MIN_LEVEL_DBM0 = -42.0  # of the fitted tones together
MIN_RUN = 2  # windows a change must last to count (glitches shorter are ignored)
TOLERANCE = 0.12  # cadence: each period within 12 % of nominal ...
TOLERANCE_S = 0.05  # ... or 50 ms, whichever is more
DIAL_MIN_S = 1.0  # a continuous tone is dial tone after this, or after the longest on period
# of a cadenced tone with the same frequencies plus its tolerance, whichever is later


def _tolerance(nominal: float) -> float:
    return max(TOLERANCE * nominal, TOLERANCE_S)


@dataclass(slots=True)
class _Run:
    state: int  # index of the frequency set, or -1 for none
    start: int
    end: int


class ToneDetector:
    """Call-progress tone detector for one country's plan. Push blocks, get ToneEvents when each
    tone ends; `current` tells the tone being heard now, once its cadence has matched."""

    def __init__(self, country: str = "US") -> None:
        key = country.upper()
        if key not in TONE_PLANS:
            raise ValueError(f"no tone plan for country {country!r} (have {', '.join(COUNTRIES)})")
        self.country = key
        self.plans = TONE_PLANS[key]
        self.sets: list[tuple[float, ...]] = []
        for plan in self.plans:
            if plan.frequencies not in self.sets:
                self.sets.append(plan.frequencies)
        self._plan_set = [self.sets.index(p.frequencies) for p in self.plans]
        n = np.arange(WINDOW, dtype=np.float64)
        self._bases: list[tuple[Samples, Samples]] = []
        for freqs in self.sets:
            columns = []
            for f in freqs:
                w = 2.0 * math.pi * f / SAMPLE_RATE
                columns += [np.cos(w * n), np.sin(w * n)]
            basis = np.stack(columns, axis=1)
            self._bases.append((basis, np.linalg.pinv(basis)))
        self._dial_min = [self._dial_threshold(p) for p in self.plans]
        self._windows = SlidingWindows(WINDOW, HOP)
        # The burst being heard: its frequency set (-1: none) and loudest fit so far. Windows are
        # compared with their own burst only, so nothing heard before it sets its threshold.
        self._burst_set = -1
        self._burst_peak = 0.0
        self._runs: deque[_Run] = deque(maxlen=24)
        self._current = _Run(state=-1, start=0, end=0)
        self._candidate = -1
        self._candidate_count = 0
        self._candidate_start = 0
        self._active: int | None = None  # index into self.plans
        self._active_start = 0
        self._active_segment_start = 0  # start of the last segment that matched
        self._active_end = 0  # ... and its end
        self._active_phase = 0  # index in the cadence of the segment expected next

    def _dial_threshold(self, plan: TonePlan) -> float:
        longest = DIAL_MIN_S
        for other in self.plans:
            if other.frequencies == plan.frequencies and not other.continuous:
                on = max(other.cadence[0::2])
                longest = max(longest, on + _tolerance(on) + 0.1)
        return longest

    @property
    def current(self) -> str | None:
        return None if self._active is None else self.plans[self._active].tone

    @property
    def hearing_tone(self) -> bool:
        """The frequencies of one of the plan's tones are heard now, before any cadence has
        matched: the first burst of ringback is a tone, not the far party talking."""
        return self._current.state >= 0

    def push(self, block: npt.ArrayLike) -> list[ToneEvent]:
        windows, first = self._windows.push(block)
        events: list[ToneEvent] = []
        for k, state in enumerate(self._classify(windows)):
            events += self._step(state, first + k * HOP)
        return events

    def finish(self) -> list[ToneEvent]:
        """End of stream: the last run counts as complete; close a tone still being heard."""
        end = self._windows.samples_seen
        run = self._current
        run.end = end
        self._current = _Run(state=-1, start=end, end=end)
        self._candidate_count = 0
        if self._active is None and run.state >= 0:
            events = self._continuous(run, end, final=True)
            if events:
                return events
        self._runs.append(run)
        events = self._run_finished(run)
        if self._active is not None:
            events.append(self._event(self._active, self._active_start, self._active_end))
            self._active = None
        return events

    # --- per window ---------------------------------------------------------------------------

    def _classify(self, windows: Samples) -> list[int]:
        if windows.shape[0] == 0:
            return []
        energy = np.einsum("ij,ij->i", windows, windows)
        best_state = np.full(windows.shape[0], -1, dtype=np.int64)
        best_power = np.zeros(windows.shape[0])
        best_share = np.zeros(windows.shape[0])
        spread = 10.0 ** (-MAX_COMPONENT_SPREAD_DB / 10.0)
        for index, (basis, pinv) in enumerate(self._bases):
            coefficients = windows @ pinv.T  # (windows, 2 per tone)
            fitted = coefficients @ basis.T
            share = np.einsum("ij,ij->i", fitted, fitted) / np.maximum(energy, 1e-9)
            component = 0.5 * (coefficients[:, 0::2] ** 2 + coefficients[:, 1::2] ** 2)
            power = np.sum(component, axis=1)
            balanced = np.min(component, axis=1) >= spread * np.max(component, axis=1)
            better = (share >= MIN_SHARE) & balanced & (share > best_share)
            best_state = np.where(better, index, best_state)
            best_power = np.where(better, power, best_power)
            best_share = np.where(better, share, best_share)
        floor = dbm0_to_power(MIN_LEVEL_DBM0)
        states: list[int] = []
        for state, power in zip(best_state.tolist(), best_power.tolist(), strict=True):
            if state < 0 or power < floor:
                self._burst_set = -1
                states.append(-1)
                continue
            if state != self._burst_set:
                self._burst_set = state
                self._burst_peak = power
            self._burst_peak = max(self._burst_peak, power)
            if power >= 0.5 * self._burst_peak:
                states.append(state)
            else:
                # Half as loud as the burst so far: its end, or a step down to a quieter tone of
                # the same frequencies, which starts its own burst (and reference) here.
                self._burst_peak = power
                states.append(-1)
        return states

    # --- runs and cadences --------------------------------------------------------------------

    def _step(self, state: int, window_start: int) -> list[ToneEvent]:
        # A window stands for the hop around its centre (the first one from the stream's start).
        time = window_start + WINDOW // 2 - HOP // 2 if window_start else 0
        events: list[ToneEvent] = []
        if state == self._current.state:
            self._candidate_count = 0
            self._current.end = time + HOP
        else:
            if state != self._candidate or self._candidate_count == 0:
                self._candidate = state
                self._candidate_start = time
                self._candidate_count = 0
            self._candidate_count += 1
            if self._candidate_count >= MIN_RUN:
                finished = self._current
                finished.end = self._candidate_start
                self._runs.append(finished)
                self._current = _Run(state=state, start=self._candidate_start, end=time + HOP)
                self._candidate_count = 0
                events += self._run_finished(finished)
        events += self._ongoing(time + HOP)
        return events

    def _segments(self, set_index: int) -> list[tuple[bool, int, int]]:
        """Completed runs seen as on/off for one frequency set, merged, oldest first."""
        merged: list[tuple[bool, int, int]] = []
        for run in self._runs:
            on = run.state == set_index
            if merged and merged[-1][0] == on:
                merged[-1] = (on, merged[-1][1], run.end)
            else:
                merged.append((on, run.start, run.end))
        return merged

    def _run_finished(self, run: _Run) -> list[ToneEvent]:
        events: list[ToneEvent] = []
        if self._active is not None:
            plan = self.plans[self._active]
            set_index = self._plan_set[self._active]
            if plan.continuous:
                if run.state == set_index:
                    events.append(self._event(self._active, self._active_start, run.end))
                    self._active = None
                return events
            segments = self._segments(set_index)
            on, start, end = segments[-1]
            if end <= self._active_end:
                return events  # merged into a segment already matched (a change of "off" kind)
            expected_on = self._active_phase % 2 == 0
            nominal = plan.cadence[self._active_phase % len(plan.cadence)]
            if on == expected_on and self._fits(end - start, nominal):
                self._active_segment_start = start
                self._active_end = end
                self._active_phase += 1
                return events
            events.append(self._event(self._active, self._active_start, self._active_end))
            self._active = None
        events += self._match_cadence()
        return events

    def _match_cadence(self) -> list[ToneEvent]:
        for index, plan in enumerate(self.plans):
            if plan.continuous:
                continue
            segments = self._segments(self._plan_set[index])
            count = 2 * len(plan.cadence) - 1  # two cycles, the last pause still running
            if len(segments) < count or not segments[-1][0]:
                continue
            recent = segments[-count:]
            for rotation in range(0, len(plan.cadence), 2):
                if all(
                    self._fits(end - start, plan.cadence[(rotation + k) % len(plan.cadence)])
                    for k, (_, start, end) in enumerate(recent)
                ):
                    self._active = index
                    self._active_start = recent[0][1]
                    self._active_segment_start = recent[-1][1]
                    self._active_end = recent[-1][2]
                    self._active_phase = rotation + count
                    return []
        return []

    def _ongoing(self, now: int) -> list[ToneEvent]:
        """Checks on the run still going: dial tone long enough, a cadence overrun."""
        run = self._current
        if self._active is None:
            if run.state >= 0:
                return self._continuous(run, now, final=False)
            return []
        plan = self.plans[self._active]
        if plan.continuous:
            return []
        set_index = self._plan_set[self._active]
        if run.state not in (-1, set_index) and self._continuous_plan(run, now) is not None:
            # Another tone's run, long enough to be dial tone, fills this one's pause: a pause
            # it takes up counts as over (dial tone after ringback is heard as soon as it is
            # dial tone, not when ringback's 4 s pause has overrun).
            event = self._event(self._active, self._active_start, self._active_end)
            self._active = None
            return [event, *self._continuous(run, now, final=False)]
        on = run.state == set_index
        if on != (self._active_phase % 2 == 0):
            # The last matched pause goes on through another tone's run (merged with it): it
            # overruns like any pause, or that tone (dial tone, say) would never end this one.
            nominal = plan.cadence[(self._active_phase - 1) % len(plan.cadence)]
            pause = (now - self._active_segment_start) / SAMPLE_RATE
            if on or pause <= nominal + _tolerance(nominal):
                return []
            stop = self._active_segment_start + round(nominal * SAMPLE_RATE)
            event = self._event(self._active, self._active_start, stop)
            self._active = None
            return [event]
        nominal = plan.cadence[self._active_phase % len(plan.cadence)]
        if (now - max(run.start, self._active_end)) / SAMPLE_RATE <= nominal + _tolerance(nominal):
            return []
        # Overrun: a pause that goes on means the tone stopped after its nominal pause.
        stop = self._active_end + (0 if on else round(nominal * SAMPLE_RATE))
        event = self._event(self._active, self._active_start, stop)
        self._active = None
        return [event]

    def _continuous(self, run: _Run, now: int, *, final: bool) -> list[ToneEvent]:
        index = self._continuous_plan(run, now)
        if index is None:
            return []
        if final:
            return [self._event(index, run.start, now)]
        self._active = index
        self._active_start = run.start
        self._active_end = now
        return []

    def _continuous_plan(self, run: _Run, now: int) -> int | None:
        """The continuous tone (dial) this run has become by `now`, if any."""
        for index, plan in enumerate(self.plans):
            if not plan.continuous or self._plan_set[index] != run.state:
                continue
            if (now - run.start) / SAMPLE_RATE >= self._dial_min[index]:
                return index
        return None

    @staticmethod
    def _fits(length: int, nominal: float) -> bool:
        return abs(length / SAMPLE_RATE - nominal) <= _tolerance(nominal)

    def _event(self, index: int, start: int, end: int) -> ToneEvent:
        plan = self.plans[index]
        return ToneEvent(tone=plan.tone, country=plan.country, start=start, end=end)
