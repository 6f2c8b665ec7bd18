"""Reading a WAV file: the one place in the DSP package that touches the file system."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from gateway_fxo.dsp.levels import Samples

MAX_SECONDS = 3600  # longer recordings are refused rather than read into memory


class WavError(ValueError):
    """A file that is not a WAV file we can read (mono or stereo, 8- or 16-bit PCM)."""


def read_wav(path: str | Path) -> tuple[Samples, int]:
    """The first channel of a PCM WAV file on the 16-bit scale, and its sample rate."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            rate = wav.getframerate()
            frames = wav.getnframes()
            if channels not in (1, 2):
                raise WavError(f"{channels} channels (mono or stereo only)")
            if width not in (1, 2):
                raise WavError(f"{8 * width}-bit samples (8- or 16-bit PCM only)")
            if rate <= 0 or frames > rate * MAX_SECONDS:
                raise WavError("sample rate or length out of range")
            data = wav.readframes(frames)
    except WavError:
        raise
    except (wave.Error, EOFError) as error:
        raise WavError(f"not a readable PCM WAV file: {error}") from error
    except OSError as error:
        raise WavError(f"cannot read {path}: {error.strerror or error}") from error
    usable = len(data) - len(data) % (width * channels)
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        pcm = (np.frombuffer(data[:usable], dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    else:
        pcm = np.frombuffer(data[:usable], dtype="<i2").astype(np.float64)
    return pcm[::channels].copy(), rate
