"""V.253 without I/O: shielding, the receiver's two states, +VSM, the caller ID report, events."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_fxo.backends.modem_protocol import (
    AudioFramer,
    ModemLineEvents,
    ModemReceiver,
    ModemSignal,
    ResponseLine,
    SampleCodec,
    StreamData,
    StreamEnd,
    StreamEvent,
    Unshielder,
    VoiceFormatError,
    caller_id_from_report,
    choose_format,
    is_unsolicited,
    parse_vsm_formats,
    select_format_command,
    shield,
    unshield,
)
from gateway_fxo.dsp.callerid import encode_mdmf
from gateway_fxo.line import (
    CallerIdReceived,
    LoopCurrentDrop,
    PolarityReversal,
    RingStart,
    RingStop,
)
from tests.support.fake_modem import VSM_CONEXANT

# --- shielding -------------------------------------------------------------------------------


def test_shield_doubles_dle_only() -> None:
    assert shield(b"\x01\x10\x02\x10\x10") == b"\x01\x10\x10\x02\x10\x10\x10\x10"


@given(st.binary(max_size=600))
def test_unshield_undoes_shield(data: bytes) -> None:
    assert unshield(shield(data)) == data


@given(st.binary(max_size=300), st.data())
def test_stream_split_anywhere_gives_the_same_audio(data: bytes, draw: st.DataObject) -> None:
    shielded = shield(data)
    cuts = sorted(draw.draw(st.lists(st.integers(0, len(shielded)), max_size=6), label="cuts"))
    unshielder = Unshielder()
    audio = bytearray()
    start = 0
    for end in [*cuts, len(shielded)]:
        items, rest = unshielder.feed(shielded[start:end])
        assert rest == b""
        for item in items:
            assert isinstance(item, StreamData)
            audio += item.data
        start = end
    assert bytes(audio) == data


@given(st.binary(max_size=200), st.sampled_from("Rbdslq5#"), st.integers(0, 400))
def test_events_and_end_survive_any_split(audio: bytes, code: str, cut: int) -> None:
    stream = shield(audio) + b"\x10" + code.encode() + shield(audio) + b"\x10\x03\r\nOK\r\n"
    cut = min(cut, len(stream))
    unshielder = Unshielder()
    items, rest = unshielder.feed(stream[:cut])
    if items and isinstance(items[-1], StreamEnd):
        rest += stream[cut:]
    else:
        more, rest = unshielder.feed(stream[cut:])
        items += more
    data = b"".join(i.data for i in items if isinstance(i, StreamData))
    assert data == audio + audio
    assert [i for i in items if isinstance(i, StreamEvent)] == [StreamEvent(code)]
    assert isinstance(items[-1], StreamEnd)
    assert rest == b"\r\nOK\r\n"


def test_dle_sub_is_two_dle_bytes() -> None:
    assert unshield(b"a\x10\x1ab") == b"a\x10\x10b"


# --- the receiver ----------------------------------------------------------------------------


def test_receiver_lines_then_stream_then_lines() -> None:
    receiver = ModemReceiver()
    assert receiver.feed(b"\r\nOK\r\n\r\nRING\r\n") == [ResponseLine("OK"), ResponseLine("RING")]
    receiver.expect_stream()
    tone = bytes([0x10, 0x0A, 0x0D, 0x41])
    items = receiver.feed(b"\r\nCONNECT\r")
    assert items == [ResponseLine("CONNECT")]
    assert receiver.in_stream
    # The LF that ends the CONNECT line arrives in the next read: it is not audio.
    items = receiver.feed(b"\n" + shield(tone) + b"\x10b" + b"\x10\x03\r\nOK\r\n")
    assert items == [
        StreamData(tone),
        StreamEvent("b"),
        StreamEnd(),
        ResponseLine("OK"),
    ]
    assert not receiver.in_stream


def test_connect_without_expect_stream_is_just_a_line() -> None:
    receiver = ModemReceiver()
    assert receiver.feed(b"\r\nCONNECT\r\nAB\r\n") == [ResponseLine("CONNECT"), ResponseLine("AB")]


def test_overlong_line_is_cut() -> None:
    receiver = ModemReceiver()
    (line,) = receiver.feed(b"X" * 5000 + b"\r\n")
    assert isinstance(line, ResponseLine) and len(line.text) == 512


def test_unsolicited_reports() -> None:
    assert is_unsolicited("RING")
    assert is_unsolicited("NMBR = 5551234")
    assert is_unsolicited("DATE=0315")
    assert not is_unsolicited("OK")
    assert not is_unsolicited('133,"LINEAR",16,0,(7200,8000),(0),(0)')


# --- +VSM ------------------------------------------------------------------------------------


def test_vsm_list_parses_every_line() -> None:
    formats = parse_vsm_formats(VSM_CONEXANT)
    assert [f.cml for f in formats] == [1, 128, 129, 130, 131, 132, 133]
    assert formats[2].encoding is None  # ADPCM: we do not decode it
    assert formats[6].encoding == "linear16" and formats[6].supports_rate(8000)


def test_choose_prefers_16_bit_linear() -> None:
    chosen = choose_format(parse_vsm_formats(VSM_CONEXANT))
    assert chosen.cml == 133
    assert select_format_command(chosen) == "AT+VSM=133,8000"


def test_choose_ulaw_then_8_bit_linear() -> None:
    without_linear16 = parse_vsm_formats(VSM_CONEXANT[:6])
    assert choose_format(without_linear16).encoding == "ulaw"
    rockwell = parse_vsm_formats(
        [
            '1,"UNSIGNED PCM",8,0,8000,0,0',
            '129,"IMA ADPCM",4,0,8000,0,0',
            '140,"2 Bit ADPCM",2,0,8000,0,0',
        ]
    )
    assert choose_format(rockwell).encoding == "unsigned8"


def test_prefixed_unquoted_and_ranges() -> None:
    formats = parse_vsm_formats(["+VSM: 131,ULAW,8,0,(7200-11025),0,0", "garbage", "OK"])
    assert len(formats) == 1 and formats[0].supports_rate(8000)


def test_no_usable_format_is_an_error() -> None:
    with pytest.raises(VoiceFormatError):
        choose_format(parse_vsm_formats(['129,"ADPCM",4,0,(7200,8000),(0),(0)']))
    with pytest.raises(VoiceFormatError):
        choose_format(parse_vsm_formats(['133,"LINEAR",16,0,(7200),(0),(0)']))


@pytest.mark.parametrize("encoding", ["linear16", "ulaw", "alaw", "signed8", "unsigned8"])
def test_codec_round_trip_keeps_a_tone(encoding: str) -> None:
    codec = SampleCodec(encoding)  # type: ignore[arg-type]
    tone = np.round(8000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 8000)).astype("<i2")
    back = np.frombuffer(codec.decode(codec.encode(tone.tobytes())), "<i2")
    tolerance = {"linear16": 0, "ulaw": 300, "alaw": 300, "signed8": 256, "unsigned8": 256}
    assert len(back) == 160
    assert np.max(np.abs(back.astype(int) - tone.astype(int))) <= tolerance[encoding]


def test_linear16_decode_keeps_a_split_sample() -> None:
    codec = SampleCodec("linear16")
    assert codec.decode(b"\x01\x02\x03") == b"\x01\x02"
    assert codec.decode(b"\x04") == b"\x03\x04"


def test_framer_cuts_320_byte_frames() -> None:
    framer = AudioFramer()
    assert framer.push(b"\x00" * 300) == []
    frames = framer.push(b"\x01" * 400)
    assert [len(f) for f in frames] == [320, 320]


# --- caller ID report ------------------------------------------------------------------------


def test_formatted_report() -> None:
    event = caller_id_from_report(
        {"DATE": "0315", "TIME": "1430", "NMBR": "5551234", "NAME": "ACME CORP"},
        standard="bell202",
    )
    assert event == CallerIdReceived(
        number="5551234", name="ACME CORP", datetime="03151430", standard="bell202"
    )


def test_private_number() -> None:
    event = caller_id_from_report({"NMBR": "P", "NAME": "O"}, standard="bell202")
    assert event.number is None and event.name is None and event.absence_reason == "P"


def test_mesg_hex_is_decoded_as_mdmf() -> None:
    frame = encode_mdmf(number="0123456789", name="DR WHO", datetime="12251200")
    spaced = " ".join(f"{b:02X}" for b in frame)
    event = caller_id_from_report({"MESG": spaced}, standard="v23")
    assert (event.number, event.name, event.datetime) == ("0123456789", "DR WHO", "12251200")
    assert event.standard == "v23"


def test_mesg_that_is_not_hex_is_ignored() -> None:
    event = caller_id_from_report({"NMBR": "5551234", "MESG": "zz"}, standard="bell202")
    assert event.number == "5551234"


# --- events with a fake clock ----------------------------------------------------------------


def test_ring_cadence_and_caller_id_between_rings() -> None:
    core = ModemLineEvents(ring_burst_s=1.0, callerid_quiet_s=0.3)
    assert core.receive(ResponseLine("RING"), 0.0) == [RingStart()]
    assert core.next_deadline() == 1.0
    assert core.handle_timer(0.5) == []
    assert core.handle_timer(1.0) == [RingStop()]
    assert core.receive(ResponseLine("DATE = 0315"), 2.5) == []
    assert core.receive(ResponseLine("NMBR = 5551234"), 2.6) == []
    assert core.next_deadline() == pytest.approx(2.9)
    (cid,) = core.handle_timer(2.9)
    assert isinstance(cid, CallerIdReceived) and cid.number == "5551234"
    assert core.next_deadline() is None


def test_next_ring_flushes_the_report_and_caller_id_stops_ringing() -> None:
    core = ModemLineEvents(ring_burst_s=2.0)
    assert core.receive(ResponseLine("RING"), 0.0) == [RingStart()]
    assert core.receive(ResponseLine("NAME = ACME"), 0.5) == [RingStop()]
    out = core.receive(ResponseLine("RING"), 0.6)
    assert [type(o) for o in out] == [CallerIdReceived, RingStart]


def test_ring_during_a_burst_extends_it() -> None:
    core = ModemLineEvents(ring_burst_s=1.0)
    assert core.receive(StreamEvent("R"), 0.0) == [RingStart()]
    assert core.receive(StreamEvent("R"), 0.6) == []
    assert core.handle_timer(1.0) == []
    assert core.handle_timer(1.6) == [RingStop()]


def test_dle_events_map_to_line_events_and_signals() -> None:
    core = ModemLineEvents(loop_drop_report_s=0.4)
    assert core.receive(StreamEvent("l"), 0.0) == [LoopCurrentDrop(seconds=0.4)]
    assert core.receive(StreamEvent("L"), 0.0) == [PolarityReversal()]
    assert core.receive(StreamEvent("b"), 0.0) == [ModemSignal(kind="busy", code="b")]
    assert core.receive(StreamEvent("d"), 0.0) == [ModemSignal(kind="dialtone", code="d")]
    assert core.receive(StreamEvent("s"), 0.0) == [ModemSignal(kind="silence", code="s")]
    assert core.receive(StreamEvent("q"), 0.0) == [ModemSignal(kind="quiet", code="q")]
    assert core.receive(StreamEvent("7"), 0.0) == [ModemSignal(kind="dtmf", code="7", digit="7")]
    assert core.receive(StreamEvent("?"), 0.0) == [ModemSignal(kind="other", code="?")]
