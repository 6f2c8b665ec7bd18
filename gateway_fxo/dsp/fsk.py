"""1200 baud FSK for on-hook data: Bell 202 and ITU-T V.23, with async (UART) framing.

The modulator is continuous-phase with fractional bit timing. The demodulator mixes the line down
to the middle of the two tones (1700 Hz for both modems), low-passes the complex baseband, and
takes the phase step between samples as the instantaneous frequency: below the middle is a mark
(1), above is a space (0). The sign does not depend on the level, so no AGC is needed, and the
size of the step tells the two modems apart (+-500 Hz for Bell 202, +-400 Hz for V.23).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples, as_samples, dbm0_to_peak, dbm0_to_power


@dataclass(frozen=True, slots=True, kw_only=True)
class FskModem:
    """A binary FSK modem: mark (1, idle) and space (0) frequencies and the bit rate."""

    name: str
    mark_hz: float
    space_hz: float
    baud: float = 1200.0

    @property
    def center_hz(self) -> float:
        return (self.mark_hz + self.space_hz) / 2.0

    @property
    def deviation_hz(self) -> float:
        return abs(self.space_hz - self.mark_hz) / 2.0

    @property
    def samples_per_bit(self) -> float:
        return SAMPLE_RATE / self.baud


BELL202 = FskModem(name="bell202", mark_hz=1200.0, space_hz=2200.0)
V23 = FskModem(name="v23", mark_hz=1300.0, space_hz=2100.0)  # V.23 mode 2 forward channel
MODEMS = (BELL202, V23)


def uart_bits(data: bytes) -> list[int]:
    """Async framing: per byte a start bit (0), eight data bits LSB first, a stop bit (1)."""
    bits: list[int] = []
    for byte in data:
        bits.append(0)
        bits.extend((byte >> k) & 1 for k in range(8))
        bits.append(1)
    return bits


class FskModulator:
    """Continuous-phase FSK: successive calls continue the same waveform without clicks."""

    def __init__(self, modem: FskModem, *, level_dbm0: float = -13.0) -> None:
        self.modem = modem
        self.peak = dbm0_to_peak(level_dbm0)
        self._phase = 0.0
        self._next_bit_at = 0.0  # where the next bit starts, relative to the next output sample

    def modulate(self, bits: Sequence[int]) -> Samples:
        if len(bits) == 0:
            return np.zeros(0, dtype=np.float64)
        spb = self.modem.samples_per_bit
        end = self._next_bit_at + len(bits) * spb
        count = max(0, math.ceil(end - 1e-9))
        n = np.arange(count, dtype=np.float64)
        index = np.clip(np.floor((n - self._next_bit_at) / spb), 0, len(bits) - 1).astype(np.int64)
        levels = np.asarray(bits, dtype=np.int64)[index]
        frequency = np.where(levels != 0, self.modem.mark_hz, self.modem.space_hz)
        steps = 2.0 * math.pi * frequency / SAMPLE_RATE
        phase = self._phase + np.concatenate(([0.0], np.cumsum(steps)[:-1]))
        self._phase = float((self._phase + float(np.sum(steps))) % (2.0 * math.pi))
        self._next_bit_at = end - count
        result: Samples = self.peak * np.sin(phase)
        return result

    def mark(self, bit_count: int) -> Samples:
        return self.modulate([1] * bit_count)

    def data(self, payload: bytes) -> Samples:
        return self.modulate(uart_bits(payload))


def lowpass_taps(cutoff_hz: float, count: int) -> Samples:
    """A Hamming-windowed sinc low-pass FIR with unit DC gain."""
    n = np.arange(count, dtype=np.float64) - (count - 1) / 2.0
    taps = np.sinc(2.0 * cutoff_hz / SAMPLE_RATE * n) * np.hamming(count)
    result: Samples = taps / np.sum(taps)
    return result


class FskDemodulator:
    """Line samples in; per sample a soft bit (Hz below the centre: > 0 is a mark) and whether
    a carrier is present."""

    TAPS = 21
    SMOOTH = 3  # a moving average over about half a bit on the frequency estimate

    def __init__(self, modem: FskModem = BELL202, *, min_level_dbm0: float = -45.0) -> None:
        self.modem = modem
        cutoff = modem.deviation_hz + modem.baud / 2.0
        self._taps = lowpass_taps(cutoff, self.TAPS).astype(np.complex128)
        self._omega = 2.0 * math.pi * modem.center_hz / SAMPLE_RATE
        self._mixer_phase = 0.0
        self._history = np.zeros(self.TAPS - 1, dtype=np.complex128)
        self._previous = np.complex128(0.0)
        self._frequency_history = np.zeros(self.SMOOTH - 1, dtype=np.float64)
        self._power_history = np.zeros(round(modem.samples_per_bit) - 1, dtype=np.float64)
        # A sine of mean power P mixes down to a complex tone of power P / 2.
        self._on = dbm0_to_power(min_level_dbm0) / 2.0
        self._off = self._on / 2.0  # 3 dB of hysteresis
        self._carrier = False

    def push(self, block: npt.ArrayLike) -> tuple[Samples, npt.NDArray[np.bool_]]:
        samples = as_samples(block)
        if samples.size == 0:
            return np.zeros(0), np.zeros(0, dtype=np.bool_)
        n = np.arange(samples.size, dtype=np.float64)
        mixed = samples * np.exp(-1j * (self._mixer_phase + self._omega * n))
        self._mixer_phase = float((self._mixer_phase + self._omega * samples.size) % (2 * math.pi))
        extended = np.concatenate((self._history, mixed))
        baseband = np.convolve(extended, self._taps, mode="valid")
        self._history = extended[-(self.TAPS - 1) :]
        chained = np.concatenate(([self._previous], baseband))
        self._previous = baseband[-1]
        step = np.angle(chained[:-1] * np.conj(chained[1:]))  # > 0 when below the centre
        frequency = step * (SAMPLE_RATE / (2.0 * math.pi))
        frequency_ext = np.concatenate((self._frequency_history, frequency))
        smooth = np.convolve(frequency_ext, np.full(self.SMOOTH, 1.0 / self.SMOOTH), "valid")
        self._frequency_history = frequency_ext[-(self.SMOOTH - 1) :]
        power = np.abs(baseband) ** 2
        power_ext = np.concatenate((self._power_history, power))
        width = self._power_history.size + 1
        mean_power = np.convolve(power_ext, np.full(width, 1.0 / width), "valid")
        self._power_history = power_ext[-(width - 1) :]
        carrier = np.empty(samples.size, dtype=np.bool_)
        state = self._carrier
        # Hysteresis needs the previous decision; runs are long, so walk only the changes.
        above = mean_power >= self._on
        below = mean_power < self._off
        for i in range(samples.size):
            if state and below[i]:
                state = False
            elif not state and above[i]:
                state = True
            carrier[i] = state
        self._carrier = state
        return smooth, carrier


@dataclass(frozen=True, slots=True, kw_only=True)
class UartByte:
    """One received character: its value, the sample where its start bit began, whether the stop
    bit was a mark, and the mean frequency offset (Hz) seen at its bit centres."""

    value: int
    start: int
    framing_ok: bool
    deviation_hz: float


class UartReceiver:
    """Async framing over soft bits: find a start bit's leading edge, sample mid-bit."""

    def __init__(self, samples_per_bit: float) -> None:
        self.spb = samples_per_bit
        self._soft = np.zeros(0, dtype=np.float64)
        self._carrier = np.zeros(0, dtype=np.bool_)
        self._offset = 0  # absolute index of self._soft[0]
        self._search_from = 1
        self._edge: float | None = None

    def push(self, soft: Samples, carrier: npt.NDArray[np.bool_]) -> list[UartByte]:
        self._soft = np.concatenate((self._soft, soft))
        self._carrier = np.concatenate((self._carrier, carrier))
        end = self._offset + self._soft.size
        received: list[UartByte] = []
        while True:
            if self._edge is None:
                self._edge = self._find_edge(end)
                if self._edge is None:
                    break
            last = self._edge + 9.5 * self.spb
            if math.ceil(last) + 1 >= end:
                break
            received += self._read_frame(self._edge)
            self._edge = None
        keep_from = min(self._search_from, end) - 1
        if self._edge is not None:
            keep_from = min(keep_from, math.floor(self._edge) - 1)
        cut = max(0, keep_from - self._offset)
        self._soft = self._soft[cut:]
        self._carrier = self._carrier[cut:]
        self._offset += cut
        return received

    def _find_edge(self, end: int) -> float | None:
        """The next mark-to-space transition with carrier, at sub-sample precision."""
        lo = max(self._search_from, self._offset + 1) - self._offset
        if lo >= self._soft.size:
            self._search_from = end
            return None
        prev = self._soft[lo - 1 : -1]
        cur = self._soft[lo:]
        hits = np.flatnonzero((prev >= 0.0) & (cur < 0.0) & self._carrier[lo:])
        if hits.size == 0:
            self._search_from = end
            return None
        i = lo + int(hits[0])
        a = float(self._soft[i - 1])
        b = float(self._soft[i])
        self._search_from = self._offset + i + 1
        return self._offset + i - 1 + a / (a - b)

    def _value_at(self, t: float) -> float:
        x = t - self._offset
        i = math.floor(x)
        frac = x - i
        return float(self._soft[i] * (1.0 - frac) + self._soft[i + 1] * frac)

    def _read_frame(self, edge: float) -> list[UartByte]:
        centres = [edge + (k + 0.5) * self.spb for k in range(10)]
        values = [self._value_at(t) for t in centres]
        if values[0] >= 0.0:  # a glitch, not a start bit: look again just after it
            return []
        value = sum(1 << (k - 1) for k in range(1, 9) if values[k] > 0.0)
        self._search_from = math.floor(centres[9])
        deviation = sum(abs(v) for v in values) / len(values)
        return [
            UartByte(
                value=value, start=round(edge), framing_ok=values[9] > 0.0, deviation_hz=deviation
            )
        ]


class FskReceiver:
    """Demodulator plus UART: line samples in, characters out."""

    def __init__(self, modem: FskModem = BELL202, *, min_level_dbm0: float = -45.0) -> None:
        self.demodulator = FskDemodulator(modem, min_level_dbm0=min_level_dbm0)
        self.uart = UartReceiver(modem.samples_per_bit)

    def push(self, block: npt.ArrayLike) -> list[UartByte]:
        soft, carrier = self.demodulator.push(block)
        return self.uart.push(soft, carrier)


def fsk_modulate(
    modem: FskModem, parts: Iterable[bytes | int], *, level_dbm0: float = -13.0
) -> Samples:
    """A burst from parts: `bytes` are sent framed, an `int` is that many mark bits."""
    modulator = FskModulator(modem, level_dbm0=level_dbm0)
    chunks = [modulator.mark(p) if isinstance(p, int) else modulator.data(p) for p in parts]
    return np.concatenate(chunks) if chunks else np.zeros(0)
