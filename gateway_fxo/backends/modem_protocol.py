"""ITU-T V.253 voice modem protocol without I/O: what the bytes on the serial line mean.

The serial line carries two things in turn. In *command state* the modem (DCE) sends text lines:
result codes (OK, ERROR, CONNECT, VCON), information lines (+VSM lists) and unsolicited reports
(RING, the formatted caller ID report DATE=/TIME=/NMBR=/NAME=/MESG=). After CONNECT to +VTR,
+VRX or +VTX the line is in *voice data state*: audio samples in the +VSM format, with
<DLE> (0x10) shielding: <DLE><DLE> is a literal 0x10, <DLE><ETX> ends the stream, and <DLE> plus
one character is an event (ring, DTMF digit, busy...). The gateway shields its audio the same way.

Everything here is pure: bytes and lines in, items and line events out, time as an argument.
The asyncio/pyserial edge is ``modem.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from gateway_fxo.dsp.callerid import CallerIdError, decode_message, mdmf_parameters
from gateway_fxo.line import (
    FRAME_BYTES,
    SAMPLE_RATE,
    CallerIdReceived,
    LineEvent,
    LoopCurrentDrop,
    PolarityReversal,
    RingStart,
    RingStop,
)
from pbx.media.g711 import ALAW_DECODE, ULAW_DECODE, alaw_encode, ulaw_encode

DLE = 0x10
ETX = 0x03
SUB = 0x1A  # Conexant: <DLE><SUB> stands for two 0x10 bytes of data

# DTE -> DCE shielded codes (V.253 voice data state).
END_TRANSMIT = bytes([DLE, ETX])  # ends +VTX: play what is buffered, then back to command state
END_DUPLEX = bytes([DLE, ord("^")])  # leaves +VTR (voice duplex)
ABORT_RECEIVE = bytes([DLE, ord("!")])  # ends +VRX

MAX_LINE = 512
"""A command-state line longer than this is cut (a total parser: garbage never grows memory)."""

FINAL_RESULTS = frozenset(
    {"OK", "ERROR", "CONNECT", "VCON", "NO CARRIER", "BUSY", "NO DIALTONE", "NO ANSWER"}
)
STREAM_RESULT = "CONNECT"

CALLER_ID_TAGS = ("DATE", "TIME", "NMBR", "NAME", "MESG", "DDN_NMBR")
_CALLER_ID_LINE = re.compile(r"^\s*(DATE|TIME|NMBR|NAME|MESG|DDN_NMBR)\s*=\s*(.*?)\s*$")


def shield(data: bytes) -> bytes:
    """Audio to send in voice data state: every 0x10 doubled."""
    return data.replace(b"\x10", b"\x10\x10")


# --- what the modem sends --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResponseLine:
    """One command-state line (result code, information line or unsolicited report)."""

    text: str


@dataclass(frozen=True, slots=True)
class StreamData:
    """Unshielded audio bytes in the +VSM format."""

    data: bytes


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """<DLE> plus a code in voice data state (V.253 simple event report)."""

    code: str


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """<DLE><ETX>: voice data state is over; text lines follow."""


ModemItem = ResponseLine | StreamData | StreamEvent | StreamEnd


class Unshielder:
    """The DCE-to-DTE voice stream, fed in pieces cut anywhere (a <DLE> may end a piece)."""

    def __init__(self) -> None:
        self._after_dle = False

    def feed(self, data: bytes) -> tuple[list[ModemItem], bytes]:
        """Items found in ``data``, and the bytes after <DLE><ETX> (empty unless it ended)."""
        items: list[ModemItem] = []
        audio = bytearray()
        i = 0
        while i < len(data):
            if self._after_dle:
                self._after_dle = False
                code = data[i]
                i += 1
                if code == DLE:
                    audio.append(DLE)
                elif code == SUB:
                    audio += b"\x10\x10"
                else:
                    if audio:
                        items.append(StreamData(bytes(audio)))
                        audio.clear()
                    if code == ETX:
                        items.append(StreamEnd())
                        return items, bytes(data[i:])
                    items.append(StreamEvent(chr(code)))
                continue
            j = data.find(DLE, i)
            if j < 0:
                audio += data[i:]
                break
            audio += data[i:j]
            self._after_dle = True
            i = j + 1
        if audio:
            items.append(StreamData(bytes(audio)))
        return items, b""


def unshield(data: bytes) -> bytes:
    """The audio in a whole shielded stream (events dropped; stops at <DLE><ETX>)."""
    items, _ = Unshielder().feed(data)
    return b"".join(item.data for item in items if isinstance(item, StreamData))


class ModemReceiver:
    """Everything the modem sends, in order: lines in command state, the stream in data state.

    The edge calls :meth:`expect_stream` before a command that answers CONNECT and starts voice
    data state (+VTR, +VRX, +VTX); the bytes right after that CONNECT line are the stream.
    """

    def __init__(self) -> None:
        self._line = bytearray()
        self._in_stream = False
        self._expect_stream = False
        self._skip_lf = False
        self._unshielder = Unshielder()

    @property
    def in_stream(self) -> bool:
        return self._in_stream

    def expect_stream(self) -> None:
        self._expect_stream = True

    def cancel_expect_stream(self) -> None:
        self._expect_stream = False

    def feed(self, data: bytes) -> list[ModemItem]:
        items: list[ModemItem] = []
        while data:
            if self._in_stream:
                if self._skip_lf:  # the LF of "CONNECT<CR><LF>", read apart from its CR
                    self._skip_lf = False
                    if data[0] == 0x0A:
                        data = data[1:]
                        continue
                found, data = self._unshielder.feed(data)
                items += found
                if found and isinstance(found[-1], StreamEnd):
                    self._in_stream = False
                    self._unshielder = Unshielder()
                continue
            data = self._feed_lines(data, items)
        return items

    def _feed_lines(self, data: bytes, items: list[ModemItem]) -> bytes:
        for i, byte in enumerate(data):
            if self._skip_lf:
                self._skip_lf = False
                if byte == 0x0A:
                    continue
            if byte in (0x0D, 0x0A):
                text = self._line.decode("latin-1").strip()
                self._line.clear()
                if not text:
                    continue
                items.append(ResponseLine(text))
                if self._expect_stream and text.startswith(STREAM_RESULT):
                    self._expect_stream = False
                    self._in_stream = True
                    self._skip_lf = byte == 0x0D
                    return data[i + 1 :]
            elif len(self._line) < MAX_LINE:
                self._line.append(byte)
        return b""


def is_final_result(text: str) -> bool:
    return text in FINAL_RESULTS or text.startswith("CONNECT ") or text.startswith("+CME ERROR")


def is_unsolicited(text: str) -> bool:
    """Reports the modem sends by itself, even in the middle of a command's answer."""
    return text == "RING" or _CALLER_ID_LINE.match(text) is not None


# --- +VSM: the sample format ------------------------------------------------------------------

Encoding = Literal["linear16", "ulaw", "alaw", "signed8", "unsigned8"]
_PREFERENCE: tuple[Encoding, ...] = ("linear16", "ulaw", "alaw", "signed8", "unsigned8")


@dataclass(frozen=True, slots=True, kw_only=True)
class VoiceFormat:
    """One line of the AT+VSM=? list: <cml>,<cmid>,<bps>,<tm>,<vsr>,<sds>,<sel>."""

    cml: int
    name: str
    bits: int
    rates: tuple[tuple[int, int], ...]  # closed ranges of sample rates; (8000, 8000) for 8000

    def supports_rate(self, rate: int) -> bool:
        return any(low <= rate <= high for low, high in self.rates)

    @property
    def encoding(self) -> Encoding | None:
        """What the samples are, as far as we can convert them; None for ADPCM, CELP..."""
        name = re.sub(r"[^A-Z0-9]", "", self.name.upper())
        if self.bits == 16 and name in ("LINEAR", "16BITLINEAR", "SIGNEDPCM", "PCM", "LINEARPCM"):
            return "linear16"
        if self.bits != 8:
            return None
        if name in ("ULAW", "MULAW", "G711U", "G711ULAW"):
            return "ulaw"
        if name in ("ALAW", "G711A", "G711ALAW"):
            return "alaw"
        if name == "SIGNEDPCM":
            return "signed8"
        if name in ("UNSIGNEDPCM", "8BITLINEAR", "LINEAR"):
            # Rockwell/Conexant and USR "8-BIT LINEAR" is offset binary, as in 8-bit WAV.
            return "unsigned8"
        return None


class VoiceFormatError(ValueError):
    """The modem offers no sample format we can use (the one error type of +VSM handling)."""


def _split_fields(text: str) -> list[str]:
    """Split on commas outside quotes and parentheses."""
    fields: list[str] = []
    depth, quoted = 0, False
    current: list[str] = []
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth = max(0, depth - 1)
        elif not quoted and depth == 0 and char == ",":
            fields.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    fields.append("".join(current).strip())
    return fields


def _parse_rates(text: str) -> tuple[tuple[int, int], ...]:
    rates: list[tuple[int, int]] = []
    for part in text.strip().strip("()").split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", part)
        if match is None:
            continue
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        rates.append((low, high))
    return tuple(rates)


def parse_vsm_formats(lines: Iterable[str]) -> list[VoiceFormat]:
    """The formats in an AT+VSM=? answer; lines that do not parse are skipped."""
    formats: list[VoiceFormat] = []
    for line in lines:
        text = line.strip()
        if text.upper().startswith("+VSM:"):
            text = text[5:]
        fields = _split_fields(text)
        if len(fields) < 5 or not fields[0].isdigit() or not fields[2].isdigit():
            continue
        formats.append(
            VoiceFormat(
                cml=int(fields[0]),
                name=fields[1].strip('"').strip(),
                bits=int(fields[2]),
                rates=_parse_rates(fields[4]),
            )
        )
    return formats


def choose_format(formats: Iterable[VoiceFormat], rate: int = SAMPLE_RATE) -> VoiceFormat:
    """16-bit linear, then u-law, A-law, 8-bit linear: the first the modem offers at ``rate``."""
    usable = [f for f in formats if f.encoding is not None and f.supports_rate(rate)]
    for encoding in _PREFERENCE:
        for candidate in usable:
            if candidate.encoding == encoding:
                return candidate
    raise VoiceFormatError(f"no {rate} Hz linear or G.711 format in +VSM list")


def select_format_command(chosen: VoiceFormat, rate: int = SAMPLE_RATE) -> str:
    return f"AT+VSM={chosen.cml},{rate}"


_ULAW_TABLE = np.asarray(ULAW_DECODE, dtype=np.int16)
_ALAW_TABLE = np.asarray(ALAW_DECODE, dtype=np.int16)


class SampleCodec:
    """Modem samples <-> the LineCard's 16-bit little-endian samples."""

    def __init__(self, encoding: Encoding) -> None:
        self.encoding: Encoding = encoding
        self.bytes_per_sample = 2 if encoding == "linear16" else 1
        self._carry = b""

    def decode(self, data: bytes) -> bytes:
        """PCM16 LE for the whole samples in ``data`` (a split 16-bit sample waits for its half)."""
        if self.encoding == "linear16":
            data = self._carry + data
            whole = len(data) - len(data) % 2
            self._carry = data[whole:]
            return bytes(data[:whole])
        raw = np.frombuffer(data, dtype=np.uint8)
        if self.encoding == "ulaw":
            pcm = _ULAW_TABLE[raw]
        elif self.encoding == "alaw":
            pcm = _ALAW_TABLE[raw]
        elif self.encoding == "signed8":
            pcm = raw.view(np.int8).astype(np.int16) << 8
        else:
            pcm = (raw.astype(np.int16) - 128) << 8
        return pcm.astype("<i2").tobytes()

    def encode(self, pcm: bytes) -> bytes:
        """Modem samples for PCM16 LE (an even number of bytes)."""
        if self.encoding == "linear16":
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2")
        if self.encoding == "ulaw":
            return ulaw_encode(samples.tolist())
        if self.encoding == "alaw":
            return alaw_encode(samples.tolist())
        high = (samples.astype(np.int16) >> 8).astype(np.int16)
        if self.encoding == "signed8":
            return high.astype(np.int8).tobytes()
        return (high + 128).astype(np.uint8).tobytes()


class AudioFramer:
    """Cuts a PCM16 byte stream into the LineCard's 20 ms frames."""

    def __init__(self, frame_bytes: int = FRAME_BYTES) -> None:
        self._frame_bytes = frame_bytes
        self._buffer = bytearray()

    def push(self, pcm: bytes) -> list[bytes]:
        self._buffer += pcm
        frames: list[bytes] = []
        size = self._frame_bytes
        while len(self._buffer) >= size:
            frames.append(bytes(self._buffer[:size]))
            del self._buffer[:size]
        return frames

    def clear(self) -> None:
        self._buffer.clear()


# --- caller ID report and DLE events -> line events -------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ModemSignal:
    """What the modem heard that the LineCard has no event for (the gateway's DSP hears it too).

    kind: 'busy', 'dialtone', 'ringback', 'silence', 'quiet', 'dtmf', 'fax', 'data',
    'underrun', 'overrun' or 'other'; code: the DLE character as sent.
    """

    kind: str
    code: str
    digit: str | None = None


# V.253 simple event reports (DCE -> DTE, <DLE> + code). Mapped to line events:
#   'R' ring -> RingStart, 'l' loop current interruption -> LoopCurrentDrop,
#   'L' loop current polarity reversal -> PolarityReversal (V.253 event 14).
# Reported as ModemSignal (the gateway's own tone and DTMF detectors hear these in the audio):
_SIGNALS = {
    "b": "busy",
    "d": "dialtone",
    "r": "ringback",
    "s": "silence",  # "presumed hangup": no voice energy since the stream began
    "q": "quiet",  # "presumed end of message": voice, then silence
    "c": "fax",  # T.30 calling tone (1100 Hz)
    "e": "data",  # data calling tone (1300 Hz)
    "a": "data",  # fax or data answer tone (2100 Hz)
    "f": "data",  # data answer (2225 Hz)
    "u": "underrun",  # the modem ran out of our audio
    "o": "overrun",  # the modem dropped audio we did not read in time
}
DTMF_CODES = frozenset("0123456789*#ABCD")


def caller_id_from_report(fields: dict[str, str], *, standard: str) -> CallerIdReceived:
    """DATE=MMDD, TIME=HHMM, NMBR=, NAME= and MESG=hex (an SDMF/MDMF frame or parameters)."""
    number = fields.get("NMBR") or fields.get("DDN_NMBR")
    name = fields.get("NAME")
    date, time = fields.get("DATE"), fields.get("TIME")
    stamp = date + time if date and time and len(date + time) == 8 else None
    mesg = fields.get("MESG")
    if mesg:
        decoded = _decode_mesg(mesg, standard)
        number = number or decoded[0]
        name = name or decoded[1]
        stamp = stamp or decoded[2]
    absence = None
    if number is not None and number.upper() in ("O", "P"):
        absence, number = number.upper(), None
    if name is not None and name.upper() in ("O", "P"):
        name = None
    return CallerIdReceived(
        number=number or None,
        name=name or None,
        standard=standard,
        datetime=stamp,
        absence_reason=absence,
    )


def _decode_mesg(mesg: str, standard: str) -> tuple[str | None, str | None, str | None]:
    try:
        raw = bytes.fromhex(re.sub(r"\s+", "", mesg))
    except ValueError:
        return None, None, None
    try:
        decoded = decode_message(raw, standard=standard)
        return decoded.number, decoded.name, decoded.datetime
    except CallerIdError:
        pass
    try:  # some modems give only the parameters they did not format themselves
        params = dict(mdmf_parameters(raw))
    except CallerIdError:
        return None, None, None
    text = {kind: value.decode("latin-1") for kind, value in params.items()}
    return text.get(0x02), text.get(0x07), text.get(0x01)


ModemOutput = LineEvent | ModemSignal


class ModemLineEvents:
    """Turns the modem's reports into line events, with the timing the modem leaves out.

    A modem says RING once per burst, at its start; RingStop follows ``ring_burst_s`` later, or
    at once when caller ID or another report comes first. The formatted caller ID report is a
    run of lines; it is complete when another report arrives or after ``callerid_quiet_s``.
    """

    def __init__(
        self,
        *,
        ring_burst_s: float = 1.0,
        callerid_quiet_s: float = 0.3,
        loop_drop_report_s: float = 0.5,
        callerid_standard: str = "bell202",
    ) -> None:
        self._ring_burst_s = ring_burst_s
        self._callerid_quiet_s = callerid_quiet_s
        self._loop_drop_report_s = loop_drop_report_s
        self._standard = callerid_standard
        self._ring_stop_at: float | None = None
        self._callerid: dict[str, str] = {}
        self._callerid_at: float | None = None

    def next_deadline(self) -> float | None:
        deadlines = [t for t in (self._ring_stop_at, self._callerid_at) if t is not None]
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> list[ModemOutput]:
        out: list[ModemOutput] = []
        if self._ring_stop_at is not None and now >= self._ring_stop_at:
            out += self._stop_ring()
        if self._callerid_at is not None and now >= self._callerid_at:
            out += self._flush_callerid()
        return out

    def receive(self, item: ResponseLine | StreamEvent, now: float) -> list[ModemOutput]:
        if isinstance(item, ResponseLine):
            match = _CALLER_ID_LINE.match(item.text)
            if match is not None:
                out = self._stop_ring()
                self._callerid[match.group(1)] = match.group(2)
                self._callerid_at = now + self._callerid_quiet_s
                return out
            if item.text == "RING":
                return self._ring(now)
            return self._flush_callerid()
        code = item.code
        if code == "R":
            return self._ring(now)
        out = self._flush_callerid()
        if code == "l":
            out += self._stop_ring()
            out.append(LoopCurrentDrop(seconds=self._loop_drop_report_s))
        elif code == "L":
            out.append(PolarityReversal())
        elif code in DTMF_CODES:
            out.append(ModemSignal(kind="dtmf", code=code, digit=code))
        else:
            out.append(ModemSignal(kind=_SIGNALS.get(code, "other"), code=code))
        return out

    def _ring(self, now: float) -> list[ModemOutput]:
        out = self._flush_callerid()
        if self._ring_stop_at is None:
            out.append(RingStart())
        self._ring_stop_at = now + self._ring_burst_s
        return out

    def _stop_ring(self) -> list[ModemOutput]:
        if self._ring_stop_at is None:
            return []
        self._ring_stop_at = None
        return [RingStop()]

    def _flush_callerid(self) -> list[ModemOutput]:
        if not self._callerid:
            return []
        fields, self._callerid, self._callerid_at = self._callerid, {}, None
        return [caller_id_from_report(fields, standard=self._standard)]
