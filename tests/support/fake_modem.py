"""A fake V.253 voice modem on a pseudo-terminal, for the modem backend's tests.

The backend opens a symlink we control (``path``), which points at the pty's slave side; the
fake runs on the master side in a thread. It speaks enough of the command set (ATZ, ATE, +IFC,
+FCLASS, +VCID, +VSM, +VLS, +VTR, +VRX, +VTX), streams a tone in the chosen format with <DLE>
shielding once off hook, decodes what the gateway sends, injects rings, caller ID reports and
<DLE> events on demand, and can be unplugged (pty closed, symlink gone) and plugged back (a new
pty behind the same symlink).

The shielding code here is written separately from ``modem_protocol`` on purpose, so the
backend is not tested against itself.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import select
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pbx.media.g711 import ULAW_DECODE, ulaw_encode

DLE, ETX = 0x10, 0x03

VSM_CONEXANT = (
    '1,"UNSIGNED PCM",8,0,(7200,8000,11025),(0),(0)',
    '128,"8-BIT LINEAR",8,0,(7200,8000,11025),(0),(0)',
    '129,"ADPCM",4,0,(7200,8000),(0),(0)',
    '130,"UNSIGNED PCM",8,0,(7200,8000),(0),(0)',
    '131,"ULAW",8,0,(7200,8000),(0),(0)',
    '132,"ALAW",8,0,(7200,8000),(0),(0)',
    '133,"LINEAR",16,0,(7200,8000),(0),(0)',
)
VSM_ULAW_ONLY = (
    '129,"IMA ADPCM",4,0,8000,0,0',
    '131,"ULAW",8,0,(7200,8000),(0),(0)',
)
ENCODINGS = {133: "linear16", 131: "ulaw", 1: "unsigned8", 128: "unsigned8", 130: "unsigned8"}

FRAME_SAMPLES = 160
FRAME_SECONDS = 0.02


class FakeModem:
    def __init__(
        self,
        path: Path,
        *,
        vsm_lines: tuple[str, ...] = VSM_CONEXANT,
        full_duplex: bool = True,
        caller_id: bool = True,
        tone_hz: float = 1000.0,
        tone_peak: int = 8000,
    ) -> None:
        self.path = path
        self.vsm_lines = vsm_lines
        self.full_duplex = full_duplex
        self.caller_id = caller_id
        self.tone_hz = tone_hz
        self.tone_peak = tone_peak
        self._actions: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._commands: list[str] = []
        self._received = bytearray()  # PCM16 of what the gateway sent, decoded
        self._raw_received = bytearray()  # the same, as unshielded modem samples
        self._dte_codes: list[str] = []  # <DLE> codes the gateway sent
        self._master: int | None = None
        self._slave: int | None = None
        self._out = bytearray()
        self._reset_state()
        self._thread = threading.Thread(target=self._run, name="fake-modem", daemon=True)

    # --- the test's side -----------------------------------------------------------------------

    def __enter__(self) -> FakeModem:
        self._plug()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        os.write(self._wake_w, b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._unplug()
        os.close(self._wake_r)
        os.close(self._wake_w)

    @property
    def commands(self) -> list[str]:
        with self._cond:
            return list(self._commands)

    @property
    def dte_codes(self) -> list[str]:
        with self._cond:
            return list(self._dte_codes)

    def received_audio(self) -> bytes:
        with self._cond:
            return bytes(self._received)

    def raw_received(self) -> bytes:
        with self._cond:
            return bytes(self._raw_received)

    def wait_for(self, predicate: Callable[[FakeModem], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def wait_for_command(self, command: str, count: int = 1, timeout: float = 5.0) -> bool:
        return self.wait_for(lambda m: m._commands.count(command) >= count, timeout)

    def ring(self) -> None:
        self._do(self._ring)

    def send_caller_id(self, lines: list[str]) -> None:
        """A formatted report, e.g. ['DATE = 0315', 'TIME = 1430', 'NMBR = 5551234']."""
        self._do(lambda: self._send(b"".join(b"\r\n" + line.encode() for line in lines) + b"\r\n"))

    def send_event(self, code: str) -> None:
        """<DLE> + code inside the voice stream (only while streaming)."""
        self._do(lambda: self._pending_events.append(code))

    def end_stream(self) -> None:
        """The modem ends voice data state by itself (inactivity timer, loop drop...)."""
        self._do(lambda: self._end_stream(send_etx=True) if self.stream else None)

    def send_raw(self, data: bytes) -> None:
        self._do(lambda: self._send(data))

    def unplug(self) -> None:
        done = threading.Event()

        def action() -> None:
            self._unplug()
            done.set()

        self._do(action)
        assert done.wait(5)

    def replug(self) -> None:
        done = threading.Event()

        def action() -> None:
            self._plug()
            done.set()

        self._do(action)
        assert done.wait(5)

    # --- the modem's side (the thread) ---------------------------------------------------------

    def _do(self, action: Callable[[], None]) -> None:
        self._actions.put(action)
        os.write(self._wake_w, b"x")

    def _reset_state(self) -> None:
        self.echo = True
        self.fclass = 0
        self.vcid = 0
        self.cml: int | None = None
        self.off_hook = False
        self.stream: str | None = None  # "VTR", "VRX", "VTX"
        self._line = bytearray()
        self._after_dle = False
        self._phase = 0.0
        self._next_frame = 0.0
        self._pending_events: list[str] = []

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._out.clear()
        self._reset_state()
        temp = self.path.with_name(self.path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
        temp.symlink_to(os.ttyname(slave))
        os.replace(temp, self.path)

    def _unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None
        self._out.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            readers = [self._wake_r] + ([self._master] if self._master is not None else [])
            writers = [self._master] if self._master is not None and self._out else []
            timeout = 0.005 if self.stream else 0.1
            readable, writable, _ = select.select(readers, writers, [], timeout)
            if self._wake_r in readable:
                os.read(self._wake_r, 1024)
                while True:
                    try:
                        action = self._actions.get_nowait()
                    except queue.Empty:
                        break
                    action()
            if self._master is not None and self._master in readable:
                try:
                    data = os.read(self._master, 4096)
                except (BlockingIOError, OSError):
                    data = b""
                if data:
                    self._receive(data)
            if self._master is not None and writable:
                self._flush()
            if self.stream in ("VTR", "VRX") and self._master is not None:
                self._stream_audio()

    def _send(self, data: bytes) -> None:
        if self._master is None:
            return
        self._out += data
        self._flush()

    def _flush(self) -> None:
        if self._master is None:
            return
        try:
            written = os.write(self._master, self._out)
        except (BlockingIOError, OSError):
            return
        del self._out[:written]

    def _respond(self, *lines: str) -> None:
        self._send(b"".join(b"\r\n" + line.encode() + b"\r\n" for line in lines))

    def _ring(self) -> None:
        if self.stream:
            self._pending_events.append("R")
        else:
            self._respond("RING")

    def _receive(self, data: bytes) -> None:
        for byte in data:
            if self.stream is not None:
                self._receive_stream_byte(byte)
                continue
            if self.echo:
                self._send(bytes([byte]))
            if byte == 0x0D:
                text = self._line.decode("latin-1").strip()
                self._line.clear()
                if text:
                    with self._cond:
                        self._commands.append(text)
                        self._cond.notify_all()
                    self._command(text)
            elif byte != 0x0A:
                self._line.append(byte)

    def _receive_stream_byte(self, byte: int) -> None:
        if self._after_dle:
            self._after_dle = False
            if byte == DLE:
                self._audio_in(bytes([DLE]))
                return
            code = chr(byte)
            with self._cond:
                self._dte_codes.append(code)
                self._cond.notify_all()
            if (code == "^" and self.stream == "VTR") or (code == "!" and self.stream == "VRX"):
                self._end_stream(send_etx=True)
            elif byte == ETX and self.stream == "VTX":
                self._end_stream(send_etx=False)
            return
        if byte == DLE:
            self._after_dle = True
        else:
            self._audio_in(bytes([byte]))

    def _end_stream(self, *, send_etx: bool) -> None:
        self.stream = None
        self._send((bytes([DLE, ETX]) if send_etx else b"") + b"\r\nOK\r\n")

    def _audio_in(self, raw: bytes) -> None:
        with self._cond:
            self._raw_received += raw
            encoding = ENCODINGS.get(self.cml or 0)
            if encoding == "linear16":
                self._received += raw
            elif encoding == "ulaw":
                self._received += np.asarray([ULAW_DECODE[b] for b in raw], "<i2").tobytes()
            self._cond.notify_all()

    def _stream_audio(self) -> None:
        now = time.monotonic()
        if now < self._next_frame:
            return
        self._next_frame = max(self._next_frame + FRAME_SECONDS, now - 0.1)
        out = bytearray()
        for code in self._pending_events:
            out += bytes([DLE, ord(code)])
        self._pending_events.clear()
        step = 2 * math.pi * self.tone_hz / 8000
        phases = self._phase + step * np.arange(FRAME_SAMPLES)
        self._phase = float((self._phase + step * FRAME_SAMPLES) % (2 * math.pi))
        samples = np.round(self.tone_peak * np.sin(phases)).astype(np.int16)
        encoding = ENCODINGS.get(self.cml or 0)
        if encoding == "linear16":
            raw = samples.astype("<i2").tobytes()
        elif encoding == "ulaw":
            raw = ulaw_encode(samples.tolist())
        else:
            raw = ((samples >> 8) + 128).astype(np.uint8).tobytes()
        for byte in raw:  # <DLE> shielding, DCE to DTE
            out.append(byte)
            if byte == DLE:
                out.append(DLE)
        self._send(bytes(out))

    def _command(self, text: str) -> None:
        upper = text.upper()
        if not upper.startswith("AT"):
            self._respond("ERROR")
            return
        body = upper[2:]
        if body == "Z":
            self._reset_state()
            self._respond("OK")
        elif body in ("E0", "E1"):
            self.echo = body == "E1"
            self._respond("OK")
        elif body in ("", "+IFC=2,2"):
            self._respond("OK")
        elif body.startswith("+FCLASS="):
            self.fclass = 8 if body == "+FCLASS=8" else 0
            self._respond("OK")
        elif body == "+VCID=1":
            self.vcid = 1 if self.caller_id else 0
            self._respond("OK" if self.caller_id else "ERROR")
        elif self.fclass != 8:
            self._respond("ERROR")
        elif body == "+VSM=?":
            self._respond(*self.vsm_lines, "OK")
        elif body.startswith("+VSM="):
            cml = int(body[5:].split(",")[0])
            known = {int(line.split(",")[0]) for line in self.vsm_lines}
            if cml in known:
                self.cml = cml
            self._respond("OK" if cml in known else "ERROR")
        elif body == "+VTR=?":
            self._respond("OK" if self.full_duplex else "ERROR")
        elif body == "+VLS=1":
            self.off_hook = True
            self._respond("VCON")
        elif body == "+VLS=0":
            self.off_hook = False
            self._respond("OK")
        elif body in ("+VTR", "+VRX", "+VTX"):
            name = body[1:]
            if not self.off_hook or (name == "VTR" and not self.full_duplex):
                self._respond("ERROR")
                return
            self._respond("CONNECT")
            self.stream = name
            self._next_frame = time.monotonic()
        else:
            self._respond("ERROR")
