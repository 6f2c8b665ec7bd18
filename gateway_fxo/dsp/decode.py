"""Decode a line recording: DTMF digits, caller ID, call-progress tones and alerting signals
(DT-AS), as JSON.

python -m gateway_fxo.dsp.decode FILE.wav [--country US]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy.typing as npt

from gateway_fxo.dsp.callerid import CallerIdReceiver
from gateway_fxo.dsp.dtas import DtasDetector
from gateway_fxo.dsp.dtmf_detect import DtmfDetector
from gateway_fxo.dsp.levels import FRAME_SAMPLES, SAMPLE_RATE, as_samples
from gateway_fxo.dsp.resample import resample
from gateway_fxo.dsp.tones import COUNTRIES, ToneDetector
from gateway_fxo.dsp.wav_file import WavError, read_wav


def _seconds(sample: int) -> float:
    return round(sample / SAMPLE_RATE, 3)


def decode_recording(
    samples_or_path: npt.ArrayLike | str | Path, rate: int | None = None, country: str = "US"
) -> dict[str, list[dict[str, object]]]:
    """Everything the DSP hears in a recording.

    `samples_or_path` is a WAV file (its own rate is used) or samples at `rate` Hz (8000 if not
    given); the audio is fed to the detectors in 20 ms frames, as the line card would.
    """
    if isinstance(samples_or_path, str | Path):
        samples, file_rate = read_wav(samples_or_path)
        rate = file_rate
    else:
        samples = as_samples(samples_or_path)
    rate = SAMPLE_RATE if rate is None else rate
    audio = resample(samples, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else samples
    dtmf = DtmfDetector()
    callerid = CallerIdReceiver()
    tones = ToneDetector(country)
    dtas = DtasDetector()
    digits = []
    callers = []
    heard = []
    alerts = []
    for first in range(0, audio.size, FRAME_SAMPLES):
        frame = audio[first : first + FRAME_SAMPLES]
        digits += dtmf.push(frame)
        callers += callerid.push(frame)
        heard += tones.push(frame)
        alerts += dtas.push(frame)
    digits += dtmf.finish()
    callers += callerid.finish()
    heard += tones.finish()
    alerts += dtas.finish()
    return {
        "dtmf": [
            {"digit": d.digit, "start": _seconds(d.start), "end": _seconds(d.end)} for d in digits
        ],
        "callerid": [c.as_json() for c in callers],
        "tones": [
            {
                "tone": t.tone,
                "country": t.country,
                "start": _seconds(t.start),
                "end": _seconds(t.end),
            }
            for t in heard
        ],
        "alerts": [
            {"signal": "dt-as", "start": _seconds(a.start), "end": _seconds(a.end)} for a in alerts
        ],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway_fxo.dsp.decode",
        description=(
            "Print the DTMF digits, caller ID, call-progress tones and alerting signals (DT-AS)"
            " in a WAV file."
        ),
    )
    parser.add_argument("file", type=Path, help="WAV file (PCM 8/16-bit, mono or stereo)")
    parser.add_argument(
        "--country",
        default="US",
        type=str.upper,
        choices=COUNTRIES,
        help="tone plan for call-progress tones (default US)",
    )
    args = parser.parse_args(argv)
    try:
        result = decode_recording(args.file, country=args.country)
    except WavError as error:
        print(f"error: {args.file}: {error}", file=sys.stderr)
        return 2
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
