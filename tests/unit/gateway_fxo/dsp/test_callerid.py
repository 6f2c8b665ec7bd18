"""Caller ID framing (SDMF, MDMF / ETSI Call Set-up, DTMF CLIP) and the receiver on audio."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_fxo.dsp.callerid import (
    MESSAGE_MDMF,
    CallerId,
    CallerIdError,
    CallerIdReceiver,
    callerid_dtmf_audio,
    callerid_fsk_audio,
    checksum,
    decode_dtmf_clip,
    decode_message,
    encode_dtmf_clip,
    encode_mdmf,
    encode_sdmf,
    frame_message,
    mdmf_parameters,
    parse_message,
)
from gateway_fxo.dsp.fsk import BELL202, V23, FskModem
from gateway_fxo.dsp.levels import Samples

from .signals import add_noise, through_codec

# The SDMF example of Bellcore's caller ID documents: 9/30 12:24, (609) 555-1212.
SDMF_EXAMPLE = bytes.fromhex("0412" + b"093012246095551212".hex() + "51")


def test_sdmf_example_decodes_and_checksum_is_twos_complement() -> None:
    cid = decode_message(SDMF_EXAMPLE)
    assert (cid.format, cid.datetime, cid.number, cid.checksum_ok) == (
        "sdmf",
        "09301224",
        "6095551212",
        True,
    )
    assert checksum(SDMF_EXAMPLE[:-1]) == 0x51
    assert sum(SDMF_EXAMPLE) % 256 == 0
    assert encode_sdmf(datetime="09301224", number="6095551212") == SDMF_EXAMPLE


def test_mdmf_layout() -> None:
    message = encode_mdmf(datetime="03151430", number="5551234567", name="JOHN DOE")
    assert message[0] == MESSAGE_MDMF and message[1] == len(message) - 3
    assert mdmf_parameters(parse_message(message).payload) == [
        (0x01, b"03151430"),
        (0x02, b"5551234567"),
        (0x07, b"JOHN DOE"),
    ]


def test_absence_reasons() -> None:
    private = decode_message(encode_mdmf(absence_reason="P", name_absence_reason="P"))
    assert (private.number, private.absence_reason, private.name_absence_reason) == (None, "P", "P")
    out_of_area = decode_message(encode_sdmf(datetime="12312359", absence_reason="O"))
    assert (out_of_area.number, out_of_area.absence_reason) == (None, "O")
    with pytest.raises(CallerIdError):
        encode_sdmf(datetime="12312359", absence_reason="X")


def test_bad_checksum_is_reported_not_raised() -> None:
    broken = bytearray(encode_mdmf(number="123"))
    broken[-1] ^= 0x01
    assert decode_message(bytes(broken)).checksum_ok is False


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x80\x05\x01", b"\x80\x02\x02\x05\x77", b"\x04\x01\x31\xca", b"\x82\x00\x7e"],
)
def test_malformed_messages_raise_the_one_error(data: bytes) -> None:
    with pytest.raises(CallerIdError):
        decode_message(data)


def test_dtmf_clip_strings() -> None:
    assert encode_dtmf_clip("4512345678") == "A4512345678C"
    assert decode_dtmf_clip("A4512345678C").number == "4512345678"
    assert decode_dtmf_clip("D0612345678#").number == "0612345678"
    assert decode_dtmf_clip("B00C").absence_reason == "O"
    assert decode_dtmf_clip("B10C").absence_reason == "P"
    assert decode_dtmf_clip("D1#").absence_reason == "P"
    assert decode_dtmf_clip(encode_dtmf_clip(absence_reason="O")).absence_reason == "O"
    for bad in ("", "C", "A", "AC", "5551234", "A12B4C"):
        with pytest.raises(CallerIdError):
            decode_dtmf_clip(bad)


digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
names = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=50)
stamps = st.from_regex(r"(0[1-9]|1[0-2])[0-3][0-9]([01][0-9]|2[0-3])[0-5][0-9]", fullmatch=True)
reasons = st.sampled_from(["O", "P"])


@given(
    datetime=st.none() | stamps,
    number=st.none() | digits,
    name=st.none() | names,
    absence=st.none() | reasons,
    name_absence=st.none() | reasons,
)
def test_mdmf_round_trip(
    datetime: str | None,
    number: str | None,
    name: str | None,
    absence: str | None,
    name_absence: str | None,
) -> None:
    encoded = encode_mdmf(
        datetime=datetime,
        number=number,
        name=name,
        absence_reason=absence,
        name_absence_reason=name_absence,
    )
    assert sum(encoded) % 256 == 0
    assert decode_message(encoded) == CallerId(
        standard="bell202",
        format="mdmf",
        datetime=datetime,
        number=number,
        name=name,
        absence_reason=absence,
        name_absence_reason=name_absence,
    )


@given(datetime=stamps, number=st.none() | st.text("0123456789", max_size=10), reason=reasons)
def test_sdmf_round_trip(datetime: str, number: str | None, reason: str) -> None:
    if number == "":
        number = None
    absence = reason if number is None else None
    cid = decode_message(encode_sdmf(datetime=datetime, number=number, absence_reason=absence))
    assert (cid.datetime, cid.number, cid.absence_reason) == (datetime, number, absence)


@given(st.binary(max_size=300))
def test_decoder_is_total_on_random_bytes(data: bytes) -> None:
    try:
        cid = decode_message(data)
    except CallerIdError:
        return
    assert cid.format in ("sdmf", "mdmf")


@given(st.integers(0, 255), st.binary(max_size=255))
def test_framed_random_payloads_parse_or_raise_the_one_error(kind: int, payload: bytes) -> None:
    framed = frame_message(kind, payload)
    assert parse_message(framed).payload == payload
    with contextlib.suppress(CallerIdError):
        decode_message(framed)


@given(st.text(alphabet="0123456789ABCD*#", max_size=25))
def test_dtmf_clip_decoder_is_total(keys: str) -> None:
    with contextlib.suppress(CallerIdError):
        decode_dtmf_clip(keys)


def listen(signal: Samples, block: int = 160) -> list[CallerId]:
    receiver = CallerIdReceiver()
    found: list[CallerId] = []
    for i in range(0, signal.size, block):
        found += receiver.push(signal[i : i + block])
    return found + receiver.finish()


@pytest.mark.parametrize("modem", [BELL202, V23], ids=lambda m: m.name)
@pytest.mark.parametrize("level", [-35.0, -13.0, -3.0])
def test_receiver_on_fsk_through_ulaw(modem: FskModem, level: float) -> None:
    mdmf = encode_mdmf(datetime="03151430", number="5551234567", name="JOHN DOE")
    sdmf = encode_sdmf(datetime="01020304", absence_reason="P")
    signal = np.concatenate(
        [
            np.zeros(1000),
            callerid_fsk_audio(mdmf, modem, level_dbm0=level),
            np.zeros(4000),
            callerid_fsk_audio(sdmf, modem, level_dbm0=level, seizure=False),
            np.zeros(1000),
        ]
    )
    first, second = listen(through_codec(signal))
    assert first.as_json() == {
        "standard": modem.name,
        "format": "mdmf",
        "number": "5551234567",
        "name": "JOHN DOE",
        "datetime": "03151430",
        "checksum_ok": True,
    }
    assert (second.standard, second.format, second.absence_reason) == (modem.name, "sdmf", "P")


def test_receiver_in_noise_and_with_a_broken_checksum() -> None:
    rng = np.random.default_rng(3)
    good = encode_mdmf(number="0123456789", name="ACME")
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    signal = np.concatenate(
        [callerid_fsk_audio(good, V23, level_dbm0=-25), np.zeros(2000)]
        + [callerid_fsk_audio(bytes(bad), V23, level_dbm0=-25), np.zeros(2000)]
    )
    found = listen(through_codec(add_noise(rng, signal, 18.0, -25.0)))
    assert [(c.number, c.checksum_ok) for c in found] == [
        ("0123456789", True),
        ("0123456789", False),
    ]


def test_receiver_on_dtmf_clip() -> None:
    signal = np.concatenate(
        [
            callerid_dtmf_audio("A4512345678C", level_dbm0=-15.0),
            np.zeros(4000),
            callerid_dtmf_audio("B10C"),
            np.zeros(4000),
            callerid_dtmf_audio("D0612345678", level_dbm0=-25.0),  # no end key: a pause ends it
        ]
    )
    found = listen(through_codec(signal), block=37)
    assert [(c.standard, c.number, c.absence_reason) for c in found] == [
        ("dtmf", "4512345678", None),
        ("dtmf", None, "P"),
        ("dtmf", "0612345678", None),
    ]
