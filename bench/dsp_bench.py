"""How much CPU the gateway DSP takes per second of line audio (fed in 20 ms frames).

.venv/bin/python bench/dsp_bench.py
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from gateway_fxo.dsp.callerid import CallerIdReceiver
from gateway_fxo.dsp.dtmf_detect import DtmfDetector
from gateway_fxo.dsp.echo_canceller import EchoCanceller, EchoCancellerSettings
from gateway_fxo.dsp.levels import FRAME_SAMPLES, SAMPLE_RATE
from gateway_fxo.dsp.tones import ToneDetector

SECONDS = 5


def per_second(process: Callable[[np.ndarray], object], audio: np.ndarray) -> float:
    """Best of three runs, in milliseconds per second of audio."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for first in range(0, audio.size, FRAME_SAMPLES):
            process(audio[first : first + FRAME_SAMPLES])
        best = min(best, time.perf_counter() - started)
    return 1000.0 * best / (audio.size / SAMPLE_RATE)


def canceller(taps: int, far: np.ndarray) -> Callable[[np.ndarray], object]:
    """An echo canceller fed the matching far-end frame with each near-end frame."""
    instance = EchoCanceller(EchoCancellerSettings(taps=taps))
    position = [0]

    def process(frame: np.ndarray) -> object:
        first = position[0]
        position[0] = (first + frame.size) % far.size
        return instance.process(far[first : first + frame.size], frame)

    return process


def main() -> None:
    rng = np.random.default_rng(1)
    audio = rng.standard_normal(SECONDS * SAMPLE_RATE) * 3000.0
    far = rng.standard_normal(audio.size) * 3000.0
    rows = []
    for taps in (256, 512):
        rows.append((f"echo canceller, {taps} taps", per_second(canceller(taps, far), audio)))
    rows.append(("DTMF detector", per_second(DtmfDetector().push, audio)))
    rows.append(("caller ID receiver (FSK + DTMF)", per_second(CallerIdReceiver().push, audio)))
    rows.append(("tone detector (US)", per_second(ToneDetector("US").push, audio)))
    for name, ms in rows:
        print(f"{name:34s} {ms:7.1f} ms per s of audio  (real-time factor {ms / 1000:.3f})")


if __name__ == "__main__":
    main()
