#!/usr/bin/env python3
"""The line gateway's audio path on the simulated exchange: echo return loss enhancement
(ERLE) on the simulator's echo path, and the CPU the path costs per line.

    python bench/line_bench.py [--seconds 10]

The far party is silent (one talker: what an echo canceller is judged on); the phone's side
is a speech-like signal (harmonics with vibrato, syllable envelope). Per 20 ms frame the
gateway does what it does in a call: decode the frame from RTP (u-law), play it to the line,
take the line's frame, cancel the echo, run the tone detector, encode and build the RTP
packet. CPU is process time for that work only (the simulator's own time is excluded).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway_fxo.backends.sim import SimulatedLine  # noqa: E402
from gateway_fxo.backends.sim_clock import ManualTicker  # noqa: E402
from gateway_fxo.dsp.echo_canceller import EchoCanceller  # noqa: E402
from gateway_fxo.dsp.tones import ToneDetector  # noqa: E402
from pbx.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from pbx.media.rtp import RtpPacket  # noqa: E402


def speech_like(seconds: float, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 20 * np.sin(2 * np.pi * 3 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return 6000 * voice * envelope / 2


async def run(seconds: float, echo_delay: float, echo_gain_db: float) -> None:
    line = SimulatedLine(country="US", ticker=ManualTicker(), far_tone_hz=None,
                         echo_delay=echo_delay, echo_gain_db=echo_gain_db)  # fmt: skip
    heard: list[np.ndarray] = []
    line.on_event = lambda _e: None
    line.on_audio = lambda f: heard.append(np.frombuffer(f, dtype=np.int16).astype(float))
    await line.open()
    line.place_inbound_call("5551234", "BENCH")
    line.advance(2.5)
    await line.off_hook()
    line.advance(0.2)
    heard.clear()
    canceller, tones = EchoCanceller(), ToneDetector("US")
    phone = speech_like(seconds)
    ulaw_frames = [ulaw_encode(int(v) for v in phone[i:i + 160].astype(np.int16))
                   for i in range(0, len(phone) - 159, 160)]  # fmt: skip
    played: list[np.ndarray] = []
    echo_in, echo_out = [], []
    cpu = 0.0
    for n, payload in enumerate(ulaw_frames):
        started = time.process_time()
        frame = np.asarray(ulaw_decode(payload), dtype=np.int16)
        played.append(frame.astype(float))
        cpu += time.process_time() - started
        line.send_audio(frame.tobytes())
        line.step()
        while heard:
            started = time.process_time()
            near = heard.pop(0)
            far = played.pop(0) if played else np.zeros(160)
            out = canceller.process(far, near)
            tones.push(out)
            payload = ulaw_encode(int(v) for v in np.clip(out, -32768, 32767))
            packet = RtpPacket(
                payload_type=0,
                sequence_number=n & 0xFFFF,
                timestamp=n * 160,
                ssrc=1,
                payload=payload,
            )
            bytes(packet)
            cpu += time.process_time() - started
            echo_in.append(near)
            echo_out.append(out)
    near_all, out_all = np.concatenate(echo_in), np.concatenate(echo_out)
    per_second = []
    for s in range(int(len(near_all) / 8000)):
        a, b = near_all[s * 8000 : (s + 1) * 8000], out_all[s * 8000 : (s + 1) * 8000]
        per_second.append(10 * np.log10(np.mean(a**2) / max(np.mean(b**2), 1e-9)))
    print(f"METRIC line_erle echo_delay_ms={echo_delay * 1000:.0f} echo_gain_db={echo_gain_db:g} "
          + " ".join(f"s{i + 1}={v:.1f}dB" for i, v in enumerate(per_second))
          + f" converged_25db_s={converged_at(near_all, out_all, 25.0):.2f}")  # fmt: skip
    print(
        f"METRIC line_cpu seconds_of_audio={seconds:g} cpu_s={cpu:.3f} "
        f"core_pct_per_line={100 * cpu / seconds:.1f}"
    )


def converged_at(near: np.ndarray, out: np.ndarray, floor_db: float, window: int = 800) -> float:
    """Seconds until ERLE stays at or above ``floor_db`` in every later 100 ms window (inf when
    the last window is below it): the time the canceller takes to converge to the bar."""
    windows = len(near) // window
    last_below = -1
    for w in range(windows):
        a, b = near[w * window : (w + 1) * window], out[w * window : (w + 1) * window]
        if 10 * np.log10(np.mean(a**2) / max(np.mean(b**2), 1e-9)) < floor_db:
            last_below = w
    return float("inf") if last_below == windows - 1 else (last_below + 1) * window / 8000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for delay, gain in ((0.008, -9.0), (0.020, -6.0)):
        asyncio.run(run(args.seconds, delay, gain))


if __name__ == "__main__":
    main()
