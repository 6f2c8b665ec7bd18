"""Caller ID: message framing (Bell SDMF/MDMF, ETSI EN 300 659-3), DTMF CLIP, and a receiver.

On the line a message is: channel seizure (300 alternating bits), 180 mark bits, then the framed
bytes  type | length | payload | checksum,  where the checksum makes the byte sum 0 mod 256.
SDMF (type 0x04) carries MMDDHHMM then the number, or 'O'/'P' when it is absent. MDMF (0x80, in
ETSI the Call Set-up message) carries parameters  type | length | value.  DTMF CLIP sends the
number as digits between a start key ('A', or 'D') and 'C' (or '#'); 'B' or 'D' plus a code
says why there is no number (as used in DK, NL, SE, FI, IS and others).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gateway_fxo.dsp.dtmf_detect import DtmfDetector, DtmfDigit
from gateway_fxo.dsp.dtmf_generate import generate_dtmf
from gateway_fxo.dsp.fsk import BELL202, MODEMS, FskModem, FskReceiver, UartByte, fsk_modulate
from gateway_fxo.dsp.levels import SAMPLE_RATE, Samples

# Message types (Bellcore GR-30-CORE; ETSI EN 300 659-3 section 5.2).
MESSAGE_SDMF = 0x04
MESSAGE_SDMF_MWI = 0x06
MESSAGE_MDMF = 0x80  # ETSI: Call Set-up
MESSAGE_MDMF_MWI = 0x82
MESSAGE_ADVICE_OF_CHARGE = 0x86
MESSAGE_SMS = 0x89
CALL_SETUP_TYPES = (MESSAGE_SDMF, MESSAGE_MDMF)
KNOWN_TYPES = frozenset(
    {
        MESSAGE_SDMF,
        MESSAGE_SDMF_MWI,
        MESSAGE_MDMF,
        MESSAGE_MDMF_MWI,
        MESSAGE_ADVICE_OF_CHARGE,
        MESSAGE_SMS,
    }
)

# MDMF parameter types (ETSI EN 300 659-3 section 5.3).
PARAM_DATETIME = 0x01
PARAM_NUMBER = 0x02
PARAM_NUMBER_ABSENT = 0x04
PARAM_NAME = 0x07
PARAM_NAME_ABSENT = 0x08

ABSENT_OUT_OF_AREA = "O"  # unavailable
ABSENT_PRIVATE = "P"  # withheld by the caller
ABSENCE_REASONS = (ABSENT_OUT_OF_AREA, ABSENT_PRIVATE)

MAX_PAYLOAD = 255  # the length byte
MAX_NUMBER = 20  # ETSI allows 20 digits; Bell SDMF 10
MAX_NAME = 50
SEIZURE_BITS = 300
MARK_BITS = 180
DTMF_CLIP_TIMEOUT_S = 0.5  # a digit string that stops this long without 'C' is over

_DATETIME = re.compile(r"[0-9]{8}")


class CallerIdError(ValueError):
    """A caller ID message or digit string that cannot be read (the one error type here)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerIdMessage:
    """A framed on-hook data message, as sent: type, payload, and whether its checksum held."""

    message_type: int
    payload: bytes
    checksum_ok: bool = True

    def __bytes__(self) -> bytes:
        return frame_message(self.message_type, self.payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerId:
    """Who is calling, however it was sent.

    standard: 'bell202', 'v23' or 'dtmf'; format: 'sdmf', 'mdmf' or 'dtmf'; datetime: MMDDHHMM;
    absence_reason / name_absence_reason: 'O' (out of area) or 'P' (private) when absent.
    """

    standard: str
    format: str
    number: str | None = None
    name: str | None = None
    datetime: str | None = None
    absence_reason: str | None = None
    name_absence_reason: str | None = None
    checksum_ok: bool = True
    start: int = 0  # sample where the message's first byte (or first key) began

    def as_json(self) -> dict[str, object]:
        return {
            "standard": self.standard,
            "format": self.format,
            "number": self.number,
            "name": self.name,
            "datetime": self.datetime,
            "checksum_ok": self.checksum_ok,
        }


def checksum(data: bytes) -> int:
    """The byte that makes the sum of a message's bytes 0 mod 256 (two's complement)."""
    return -sum(data) & 0xFF


def frame_message(message_type: int, payload: bytes) -> bytes:
    if not 0 <= message_type <= 0xFF or len(payload) > MAX_PAYLOAD:
        raise CallerIdError("message type or payload out of range")
    body = bytes([message_type, len(payload)]) + payload
    return body + bytes([checksum(body)])


def parse_message(data: bytes) -> CallerIdMessage:
    """A whole framed message (type, length, payload, checksum) and nothing more."""
    if len(data) < 3:
        raise CallerIdError("message shorter than type, length and checksum")
    if len(data) != data[1] + 3:
        raise CallerIdError(f"length byte says {data[1]}, message has {len(data) - 3}")
    return CallerIdMessage(
        message_type=data[0], payload=bytes(data[2:-1]), checksum_ok=sum(data) & 0xFF == 0
    )


def _text(value: bytes) -> str:
    return value.decode("latin-1")


def _check_datetime(datetime: str | None) -> bytes:
    if datetime is None:
        return b""
    if not _DATETIME.fullmatch(datetime):
        raise CallerIdError("datetime must be MMDDHHMM")
    return datetime.encode("ascii")


def _check_reason(reason: str | None) -> None:
    if reason is not None and reason not in ABSENCE_REASONS:
        raise CallerIdError("an absence reason is 'O' (out of area) or 'P' (private)")


def _ascii(text: str, limit: int, what: str) -> bytes:
    if len(text) > limit or not all(0x20 <= ord(ch) < 0x7F for ch in text):
        raise CallerIdError(f"{what} must be printable ASCII of at most {limit} characters")
    return text.encode("ascii")


def encode_sdmf(
    *, datetime: str, number: str | None = None, absence_reason: str | None = None
) -> bytes:
    """SDMF: date and time, then the number or 'O'/'P'."""
    _check_reason(absence_reason)
    if (number is None) == (absence_reason is None):
        raise CallerIdError("SDMF carries either a number or an absence reason")
    stamp = _check_datetime(datetime)
    if len(stamp) != 8:
        raise CallerIdError("SDMF needs the date and time")
    tail = _ascii(number, MAX_NUMBER, "number") if number is not None else b""
    if absence_reason is not None:
        tail = absence_reason.encode("ascii")
    elif not tail.isdigit():
        raise CallerIdError("an SDMF number is digits")
    return frame_message(MESSAGE_SDMF, stamp + tail)


def encode_mdmf(
    *,
    datetime: str | None = None,
    number: str | None = None,
    name: str | None = None,
    absence_reason: str | None = None,
    name_absence_reason: str | None = None,
    message_type: int = MESSAGE_MDMF,
) -> bytes:
    """MDMF / ETSI Call Set-up: the parameters that are given, in type order."""
    _check_reason(absence_reason)
    _check_reason(name_absence_reason)
    params: list[tuple[int, bytes]] = []
    if datetime is not None:
        params.append((PARAM_DATETIME, _check_datetime(datetime)))
    if number is not None:
        params.append((PARAM_NUMBER, _ascii(number, MAX_NUMBER, "number")))
    if absence_reason is not None:
        params.append((PARAM_NUMBER_ABSENT, absence_reason.encode("ascii")))
    if name is not None:
        params.append((PARAM_NAME, _ascii(name, MAX_NAME, "name")))
    if name_absence_reason is not None:
        params.append((PARAM_NAME_ABSENT, name_absence_reason.encode("ascii")))
    payload = b"".join(bytes([kind, len(value)]) + value for kind, value in params)
    return frame_message(message_type, payload)


def mdmf_parameters(payload: bytes) -> list[tuple[int, bytes]]:
    """Split an MDMF payload into (type, value) parameters."""
    params: list[tuple[int, bytes]] = []
    i = 0
    while i < len(payload):
        if i + 2 > len(payload):
            raise CallerIdError("parameter header cut short")
        kind, size = payload[i], payload[i + 1]
        if i + 2 + size > len(payload):
            raise CallerIdError(f"parameter 0x{kind:02x} runs past the message")
        params.append((kind, payload[i + 2 : i + 2 + size]))
        i += 2 + size
    return params


def decode_message(data: bytes, *, standard: str = "bell202", start: int = 0) -> CallerId:
    """A framed SDMF or MDMF message to a CallerId; total: a value or CallerIdError."""
    message = parse_message(data)
    payload = message.payload
    if message.message_type == MESSAGE_SDMF:
        if len(payload) < 8:
            raise CallerIdError("SDMF shorter than its date and time")
        stamp, tail = _text(payload[:8]), _text(payload[8:])
        absent = tail if tail in ABSENCE_REASONS else None
        return CallerId(
            standard=standard,
            format="sdmf",
            datetime=stamp,
            number=None if absent else tail,
            absence_reason=absent,
            checksum_ok=message.checksum_ok,
            start=start,
        )
    if message.message_type != MESSAGE_MDMF:
        raise CallerIdError(f"message type 0x{message.message_type:02x} is not a call set-up")
    fields: dict[int, str] = {}
    for kind, value in mdmf_parameters(payload):
        fields[kind] = _text(value)  # an unknown parameter is skipped; a repeated one: last wins
    return CallerId(
        standard=standard,
        format="mdmf",
        datetime=fields.get(PARAM_DATETIME),
        number=fields.get(PARAM_NUMBER),
        name=fields.get(PARAM_NAME),
        absence_reason=fields.get(PARAM_NUMBER_ABSENT),
        name_absence_reason=fields.get(PARAM_NAME_ABSENT),
        checksum_ok=message.checksum_ok,
        start=start,
    )


# --- DTMF CLIP --------------------------------------------------------------------------------

_DTMF_SPECIAL = {"B00": ABSENT_OUT_OF_AREA, "B10": ABSENT_PRIVATE}
_DTMF_D_CODES = {"D1": ABSENT_PRIVATE, "D2": ABSENT_OUT_OF_AREA, "D3": ABSENT_OUT_OF_AREA}


def encode_dtmf_clip(
    number: str | None = None, *, absence_reason: str | None = None, start: str = "A"
) -> str:
    """The key string for DTMF CLIP: 'A' + number + 'C', or 'B00C' / 'B10C' when absent."""
    _check_reason(absence_reason)
    if (number is None) == (absence_reason is None):
        raise CallerIdError("DTMF CLIP carries either a number or an absence reason")
    if absence_reason is not None:
        return "B00C" if absence_reason == ABSENT_OUT_OF_AREA else "B10C"
    assert number is not None
    if start not in ("A", "D") or not number or not number.isdigit() or len(number) > MAX_NUMBER:
        raise CallerIdError("DTMF CLIP: start 'A' or 'D' and a number of digits")
    return f"{start}{number}C"


def decode_dtmf_clip(keys: str, *, start: int = 0) -> CallerId:
    """Read a DTMF CLIP key string (with or without its end key)."""
    body = keys.upper()
    if body.endswith(("C", "#")):
        body = body[:-1]
    if body in _DTMF_SPECIAL:
        reason = _DTMF_SPECIAL[body]
        return CallerId(standard="dtmf", format="dtmf", absence_reason=reason, start=start)
    if body in _DTMF_D_CODES:
        reason = _DTMF_D_CODES[body]
        return CallerId(standard="dtmf", format="dtmf", absence_reason=reason, start=start)
    if len(body) >= 2 and body[0] in "AD" and body[1:].isdigit() and len(body) <= MAX_NUMBER + 1:
        return CallerId(standard="dtmf", format="dtmf", number=body[1:], start=start)
    raise CallerIdError(f"not a DTMF CLIP string: {keys!r}")


# --- audio ------------------------------------------------------------------------------------


def callerid_fsk_audio(
    message: bytes,
    modem: FskModem = BELL202,
    *,
    level_dbm0: float = -13.0,
    seizure: bool = True,
    mark_bits: int = MARK_BITS,
) -> Samples:
    """A framed message as it goes down the line: seizure, mark, bytes, a few marks after.
    `mark_bits`: 180 with ringing; after a DT-AS, SIN 227 sends 55-90 (80 here)."""
    parts: list[bytes | int] = []
    if seizure:
        parts.append(b"\x55" * (SEIZURE_BITS // 10))
    parts += [mark_bits, message, 4]
    return fsk_modulate(modem, parts, level_dbm0=level_dbm0)


def callerid_dtmf_audio(keys: str, *, level_dbm0: float = -10.0) -> Samples:
    """DTMF CLIP keys at the usual 70 ms on / 70 ms off."""
    return generate_dtmf(keys, on_s=0.07, off_s=0.07, level_dbm0=level_dbm0)


class _FskMessageReader:
    """Bytes from the UART in, framed call set-up messages out."""

    MIN_IDLE_BITS = 8  # the mark run before a message's first byte (180 nominal)

    def __init__(self, samples_per_bit: float) -> None:
        self._spb = samples_per_bit
        self._last_end: float | None = None
        self._buffer: list[UartByte] = []

    def push(self, received: list[UartByte]) -> list[CallerId]:
        found: list[CallerId] = []
        for byte in received:
            idle = self._last_end is None or byte.start - self._last_end >= (
                self.MIN_IDLE_BITS * self._spb
            )
            self._last_end = byte.start + 10 * self._spb
            if not byte.framing_ok:
                self._buffer = []
                continue
            if not self._buffer:
                if idle and byte.value in KNOWN_TYPES:
                    self._buffer = [byte]
                continue
            if byte.start - (self._buffer[-1].start + 10 * self._spb) > 2 * self._spb:
                self._buffer = []  # a gap inside a message: lost
                if idle and byte.value in KNOWN_TYPES:
                    self._buffer = [byte]
                continue
            self._buffer.append(byte)
            if len(self._buffer) >= 2 and len(self._buffer) == self._buffer[1].value + 3:
                message = self._buffer
                self._buffer = []
                found += self._decode(message)
        return found

    def _decode(self, message: list[UartByte]) -> list[CallerId]:
        if message[0].value not in CALL_SETUP_TYPES:
            return []
        deviation = float(np.median([b.deviation_hz for b in message]))
        modem = min(MODEMS, key=lambda m: abs(m.deviation_hz - deviation))
        try:
            return [
                decode_message(
                    bytes(b.value for b in message), standard=modem.name, start=message[0].start
                )
            ]
        except CallerIdError:
            return []


class _DtmfClipReader:
    """DTMF digits in, DTMF CLIP strings out (start key, digits, end key or a pause)."""

    def __init__(self) -> None:
        self._keys: list[DtmfDigit] = []

    def push(self, digits: list[DtmfDigit], now: int) -> list[CallerId]:
        found: list[CallerId] = []
        for digit in digits:
            if self._keys and digit.start - self._keys[-1].end > DTMF_CLIP_TIMEOUT_S * SAMPLE_RATE:
                found += self.flush()
            if not self._keys:
                if digit.digit in "ABD":
                    self._keys = [digit]
                continue
            self._keys.append(digit)
            if digit.digit in "C#":
                found += self.flush()
        if self._keys and now - self._keys[-1].end > DTMF_CLIP_TIMEOUT_S * SAMPLE_RATE:
            found += self.flush()
        return found

    def flush(self) -> list[CallerId]:
        """End the string being collected (an end key, a pause, or the end of the stream)."""
        keys, self._keys = self._keys, []
        if not keys:
            return []
        try:
            return [decode_dtmf_clip("".join(k.digit for k in keys), start=keys[0].start)]
        except CallerIdError:
            return []


class CallerIdReceiver:
    """On-hook caller ID from line audio: FSK (Bell 202 or V.23, told apart by the measured
    deviation) and DTMF CLIP, both listened for at once. Push blocks, get CallerIds."""

    def __init__(self, *, min_level_dbm0: float = -45.0) -> None:
        self._fsk = FskReceiver(BELL202, min_level_dbm0=min_level_dbm0)
        self._messages = _FskMessageReader(BELL202.samples_per_bit)
        self._dtmf = DtmfDetector()
        self._clip = _DtmfClipReader()
        self._seen = 0

    def push(self, block: npt.ArrayLike) -> list[CallerId]:
        samples = np.asarray(block, dtype=np.float64)
        self._seen += samples.size
        found = self._messages.push(self._fsk.push(samples))
        found += self._clip.push(self._dtmf.push(samples), self._seen)
        return sorted(found, key=lambda c: c.start)

    def finish(self) -> list[CallerId]:
        """End of the stream: a DTMF CLIP string still open is read as it is."""
        return self._clip.push(self._dtmf.finish(), self._seen) + self._clip.flush()
