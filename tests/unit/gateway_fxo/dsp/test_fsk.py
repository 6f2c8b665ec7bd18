"""Bell 202 / V.23 FSK: modulator and receiver round trips through noise and u-law."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gateway_fxo.dsp.fsk import (
    BELL202,
    MODEMS,
    V23,
    FskModem,
    FskModulator,
    FskReceiver,
    UartByte,
    fsk_modulate,
    uart_bits,
)
from gateway_fxo.dsp.levels import Samples, level_dbm0

from .signals import add_noise, through_codec, white_noise


def receive(signal: Samples, modem: FskModem = BELL202, block: int = 160) -> list[UartByte]:
    receiver = FskReceiver(modem)
    received: list[UartByte] = []
    for i in range(0, signal.size, block):
        received += receiver.push(signal[i : i + block])
    return received


def burst(modem: FskModem, payload: bytes, level: float = -13.0) -> Samples:
    return np.concatenate(
        [np.zeros(400), fsk_modulate(modem, [60, payload, 10], level_dbm0=level), np.zeros(400)]
    )


def test_uart_framing() -> None:
    assert uart_bits(b"\x01\x80") == [0, 1, 0, 0, 0, 0, 0, 0, 0, 1] + [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_modulator_is_continuous_across_calls_and_keeps_bit_time() -> None:
    modulator = FskModulator(BELL202, level_dbm0=-10.0)
    pieces = [modulator.modulate([k % 2, 1, 0]) for k in range(100)]
    signal = np.concatenate(pieces)
    assert signal.size == round(300 * 8000 / 1200)
    # No clicks: a sample-to-sample step never exceeds what a 2200 Hz sine allows.
    peak = modulator.peak
    assert np.max(np.abs(np.diff(signal))) <= peak * 2 * math.sin(math.pi * 2200 / 8000) + 1e-6
    assert level_dbm0(signal) == pytest.approx(-10.0, abs=0.1)


@pytest.mark.parametrize("modem", MODEMS, ids=lambda m: m.name)
@pytest.mark.parametrize("level", [-40.0, -30.0, -13.0, -3.0])
def test_every_byte_value_through_ulaw(modem: FskModem, level: float) -> None:
    payload = bytes(range(256))
    received = receive(through_codec(burst(modem, payload, level)), modem)
    assert bytes(b.value for b in received if b.framing_ok)[: len(payload)] == payload


@pytest.mark.parametrize("block", [1, 13, 160, 4000])
def test_block_size_does_not_matter(block: int) -> None:
    signal = burst(V23, b"block sizes")
    got = receive(signal, V23, block)
    want = receive(signal, V23, 160)
    assert [(b.value, b.start, b.framing_ok) for b in got] == [
        (b.value, b.start, b.framing_ok) for b in want
    ]
    assert [b.deviation_hz for b in got] == pytest.approx([b.deviation_hz for b in want])


@pytest.mark.parametrize("modem", MODEMS, ids=lambda m: m.name)
def test_measured_deviation_tells_the_modems_apart(modem: FskModem) -> None:
    received = receive(burst(modem, b"\x55" * 10 + b"deviation"), BELL202)
    deviation = float(np.median([b.deviation_hz for b in received]))
    assert min(MODEMS, key=lambda m: abs(m.deviation_hz - deviation)) == modem


@pytest.mark.parametrize("snr", [30.0, 20.0, 15.0])
def test_noise(snr: float) -> None:
    rng = np.random.default_rng(int(snr))
    errors = 0
    for modem in MODEMS:
        payload = bytes(rng.integers(0, 256, 200).tolist())
        signal = through_codec(add_noise(rng, burst(modem, payload, -20.0), snr, -20.0))
        got = bytes(b.value for b in receive(signal, modem))
        errors += byte_errors(payload, got)
    print(f"\nFSK at {snr:g} dB SNR: {errors} byte errors in 400")
    assert errors == 0


def byte_errors(sent: bytes, got: bytes) -> int:
    """Errors of `sent` within `got` at the best alignment (the line noise before and after the
    burst is loud enough to count as a carrier, so `got` may have bytes around the payload)."""
    best = len(sent)
    for offset in range(max(1, len(got) - len(sent) + 1)):
        window = got[offset : offset + len(sent)]
        errors = sum(a != b for a, b in zip(window, sent, strict=False)) + len(sent) - len(window)
        best = min(best, errors)
    return best


def test_no_carrier_no_bytes() -> None:
    rng = np.random.default_rng(5)
    assert receive(white_noise(rng, 16000, -50.0)) == []
    assert receive(np.zeros(8000)) == []
