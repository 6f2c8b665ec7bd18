"""The gpio card's real PyAudio path against an ALSA device that needs no sound card.

An asoundrc in a temporary HOME defines ``switchboard_line``: two ALSA ``file`` plugins over the
``null`` PCM (joined by ``asym``), one capturing from a raw 1 kHz tone file, the other writing
what is played to a file (one file plugin for both would write both directions to one file).
PortAudio lists it by name like any ALSA PCM. The card runs in a child process, because
alsa-lib reads its configuration (and HOME) once per process. The null PCM is not paced by a
clock, so buffers come as fast as the CPU allows: the child stops as soon as it has its answer.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.tools import require_tool

ROOT = Path(__file__).resolve().parents[3]
DEVICE = "switchboard_line"
SENT_FRAMES = 10

ASOUNDRC = """\
pcm.{device} {{
    type asym
    playback.pcm {{
        type file
        slave.pcm "null"
        file "{out}"
        format "raw"
    }}
    capture.pcm {{
        type file
        slave.pcm "null"
        file "/dev/null"
        infile "{infile}"
        format "raw"
    }}
}}
"""


def require_pyaudio() -> None:
    """Like tools.require_tool, for the Python binding: skip on a laptop, fail in CI."""
    if importlib.util.find_spec("pyaudio") is not None:
        return
    message = (
        "pyaudio not installed (pip install -e '.[dev]' after apt-get install portaudio19-dev)"
    )
    if os.environ.get("SWITCHBOARD_REQUIRE_TOOLS") == "1":
        pytest.fail(message + " and SWITCHBOARD_REQUIRE_TOOLS=1", pytrace=False)
    pytest.skip(message)


def tone(hz: float, samples: int, peak: float, start: int = 0) -> np.ndarray:
    t = np.arange(start, start + samples)
    return np.round(peak * np.sin(2 * np.pi * hz * t / 8000)).astype("<i2")


def peak_hz(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 8000 / len(samples))


def sent_frames() -> list[bytes]:
    return [tone(440, 160, 6000, start=i * 160).tobytes() for i in range(SENT_FRAMES)]


def played_so_far(path: Path, limit: int = 4 << 20) -> bytes:
    """The first bytes played (the file grows fast: the null PCM has no clock)."""
    if not path.exists():
        return b""
    with path.open("rb") as file:
        return file.read(limit)


def child(folder: str) -> None:
    """Runs in the child process (HOME=folder): the card with a fake GPIO and real PyAudio."""
    from gateway_fxo.backends.gpio import GpioLineCard, GpioSettings
    from tests.support.fake_gpio import FakeGpio

    out = Path(folder) / "played.raw"
    card = GpioLineCard(
        GpioSettings(hook_pin=17, ring_pin=27, audio_device=DEVICE), gpio=FakeGpio()
    )
    heard: list[bytes] = []
    off_hook_frames = [0]

    def on_audio(frame: bytes) -> None:
        if card.is_off_hook:
            off_hook_frames[0] += 1
        elif len(heard) < 50:
            heard.append(frame)

    card.on_audio = on_audio

    async def until(predicate: object, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():  # type: ignore[operator]
            if loop.time() > deadline:
                raise TimeoutError("child: condition not met")
            await asyncio.sleep(0.005)

    async def main() -> None:
        await card.open()
        try:
            # On hook: the tone from the capture file is not silence, so it is passed on.
            await until(lambda: len(heard) >= 20)
            await card.off_hook()
            for frame in sent_frames():
                card.send_audio(frame)
            await until(lambda: played_so_far(out).find(sent_frames()[-1]) >= 0)
            await until(lambda: off_hook_frames[0] >= 5)
            await card.on_hook()
        finally:
            await card.close()

    asyncio.run(asyncio.wait_for(main(), 20))
    result = {"heard": b"".join(heard[:20]).hex(), "off_hook_frames": off_hook_frames[0]}
    (Path(folder) / "result.json").write_text(json.dumps(result))


def test_pyaudio_stream_on_an_alsa_file_device(tmp_path: Path) -> None:
    require_pyaudio()
    aplay = require_tool("aplay", "alsa-utils")
    infile, out = tmp_path / "line.raw", tmp_path / "played.raw"
    tone(1000, 8000, 8000).tofile(infile)
    (tmp_path / ".asoundrc").write_text(ASOUNDRC.format(device=DEVICE, out=out, infile=infile))
    env = {**os.environ, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}

    listed = subprocess.run([aplay, "-L"], env=env, capture_output=True, text=True, timeout=20)
    assert DEVICE in listed.stdout.split(), listed.stdout + listed.stderr

    code = f"from tests.unit.gateway_fxo.test_gpio_audio import child; child({str(tmp_path)!r})"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())

    heard = bytes.fromhex(result["heard"])
    assert len(heard) == 20 * 320
    assert peak_hz(heard) == pytest.approx(1000, abs=10)
    assert result["off_hook_frames"] >= 5

    played = played_so_far(out)
    position = 0
    for frame in sent_frames():  # every frame we sent reached the device, in order
        found = played.find(frame, position)
        assert found >= 0
        position = found + len(frame)
