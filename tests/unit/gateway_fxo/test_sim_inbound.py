"""Inbound calls on the simulated line: ring cadences, caller ID audio, answering, giving up."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from gateway_fxo.backends.sim import Phase, SimulatedLineError
from gateway_fxo.dsp.callerid import CallerId, CallerIdReceiver
from gateway_fxo.dsp.levels import FRAME_SAMPLES, SAMPLE_RATE, level_dbm0, to_pcm16
from gateway_fxo.line import FRAME_SECONDS, CallerIdReceived, RingStart, RingStop

from .test_sim_harness import Harness, peak_hz

CADENCES = {
    "US": (2.0, 4.0),
    "UK": (0.4, 0.2, 0.4, 2.0),
    "FR": (1.5, 3.5),
    "DE": (1.0, 4.0),
}


def decode(h: Harness) -> list[CallerId]:
    receiver = CallerIdReceiver()
    return receiver.push(h.audio()) + receiver.finish()


@pytest.mark.parametrize("country", list(CADENCES))
def test_ring_cadence_per_country(country: str) -> None:
    h = Harness(country)
    h.advance(0.1)
    h.line.place_inbound_call(rings=3)
    cadence = CADENCES[country]
    period = sum(cadence)
    h.advance(3 * period + 2.0)
    starts, stops = h.event_times(RingStart), h.event_times(RingStop)
    expected_starts, expected_stops = [], []
    for cycle in range(3):
        t = 0.1 + cycle * period
        for k in range(0, len(cadence), 2):
            expected_starts.append(t)
            expected_stops.append(t + cadence[k])
            t += cadence[k] + cadence[k + 1]
    assert len(starts) == len(expected_starts) and len(stops) == len(expected_stops)
    for got, want in zip(starts + stops, expected_starts + expected_stops, strict=True):
        assert abs(got - want) <= FRAME_SECONDS
    assert h.frames == []  # no caller ID asked for: nothing heard on hook


@pytest.mark.parametrize(
    ("country", "standard", "caller_id_format", "name"),
    [
        ("US", "bell202", "mdmf", "ACME CORP"),
        ("US", "bell202", "sdmf", None),
        ("UK", "v23", "mdmf", "ACME CORP"),
        ("DE", "v23", "sdmf", None),
    ],
)
def test_fsk_caller_id_between_ring_1_and_ring_2(
    country: str, standard: str, caller_id_format: str, name: str | None
) -> None:
    h = Harness(country)
    h.line.place_inbound_call(
        "5551234",
        "ACME CORP",
        standard=standard,
        caller_id_format=caller_id_format,
        datetime="03151430",
    )
    h.advance(sum(CADENCES[country]) + 0.5)
    [found] = decode(h)
    assert (found.standard, found.format) == (standard, caller_id_format)
    assert (found.number, found.name, found.datetime) == ("5551234", name, "03151430")
    assert found.checksum_ok
    # Frames came only during the burst, all between the end of ring 1 and the start of ring 2.
    first_ring_end = h.event_times(RingStop)[len(CADENCES[country]) // 2 - 1]
    second_ring = h.event_times(RingStart)[len(CADENCES[country]) // 2]
    times = [t for t, _ in h.frames]
    assert first_ring_end + 0.5 - 1e-9 <= times[0] and times[-1] + 0.2 < second_ring
    assert np.allclose(np.diff(times), FRAME_SECONDS)  # one unbroken burst
    assert not any(isinstance(e, CallerIdReceived) for _, e in h.events)


def test_dtmf_clip_before_the_first_ring() -> None:
    h = Harness("DE")
    h.line.place_inbound_call("5551234", "ACME CORP", standard="dtmf")
    h.advance(3.0)
    [found] = decode(h)
    assert (found.standard, found.number, found.name) == ("dtmf", "5551234", None)
    first_ring = h.event_times(RingStart)[0]
    assert h.frames[-1][0] + FRAME_SECONDS <= first_ring - 0.2


def test_withheld_number_and_no_caller_id() -> None:
    h = Harness()
    h.line.place_inbound_call(absence_reason="P", datetime="01010000")
    h.advance(6.5)
    [found] = decode(h)
    assert (found.number, found.absence_reason) == (None, "P")
    h.line.far_end_hangup()
    plain = Harness()
    plain.line.place_inbound_call()
    plain.advance(6.5)
    assert plain.frames == []


def test_decoded_caller_id_event_only_when_asked_for() -> None:
    h = Harness(decode_caller_id=True)
    h.line.place_inbound_call("5551234", "ACME CORP", datetime="03151430")
    h.advance(6.5)
    [(t, event)] = [(t, e) for t, e in h.events if isinstance(e, CallerIdReceived)]
    assert event == CallerIdReceived(
        number="5551234", name="ACME CORP", standard="bell202", datetime="03151430"
    )
    assert t == pytest.approx(h.frames[-1][0])  # when the last frame of the burst was heard
    assert len(decode(h)) == 1  # the audio is there as well


def test_datetime_defaults_to_the_wall_clock() -> None:
    import datetime as dt

    h = Harness(wall_clock=lambda: dt.datetime(2024, 12, 24, 18, 5))
    h.line.place_inbound_call("5551234", "ACME CORP")
    h.advance(6.5)
    assert decode(h)[0].datetime == "12241805"


def test_answering_stops_the_ringing_and_the_far_party_talks() -> None:
    h = Harness()
    h.line.place_inbound_call("5551234", "ACME CORP", datetime="03151430")
    h.advance(6.5)  # ring 1, caller ID, half a second of ring 2
    h.off_hook()
    answered = h.line.now
    assert h.events[-1] == (answered, RingStop())  # ring trip
    assert h.line.state().in_call and h.line.state().direction == "inbound"
    h.advance(10.0)
    assert h.event_times(RingStart) == [0.0, 6.0]
    audio = h.audio(answered)
    assert audio.size == 500 * FRAME_SAMPLES  # a frame every 20 ms while off hook
    assert peak_hz(audio) == pytest.approx(1000.0, abs=2.0)
    assert level_dbm0(audio) == pytest.approx(-15.0, abs=1.2)  # with the level variation
    h.on_hook()
    count = len(h.frames)
    h.advance(1.0)
    assert len(h.frames) == count and h.line.state().phase == Phase.IDLE


def test_answering_during_the_caller_id_cuts_it_short() -> None:
    h = Harness()
    h.line.place_inbound_call("5551234", "ACME CORP", datetime="03151430")
    h.advance(2.7)
    h.off_hook()
    h.advance(1.0)
    assert decode(h) == []
    assert peak_hz(h.audio(2.8)) == pytest.approx(1000.0, abs=2.0)


def test_far_party_from_a_wav_file(tmp_path: Path) -> None:
    path = tmp_path / "hello.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        samples = 8000.0 * np.sin(2 * np.pi * 600.0 * np.arange(16000) / 16000)
        wav.writeframes(to_pcm16(samples).tobytes())
    h = Harness(far_audio=path)
    h.line.place_inbound_call()
    h.advance(0.5)
    h.off_hook()
    h.advance(2.0)  # the one-second recording, looped
    audio = h.audio(0.6)
    assert peak_hz(audio) == pytest.approx(600.0, abs=2.0)  # resampled from 16 kHz
    assert level_dbm0(audio) == pytest.approx(level_dbm0(samples), abs=1.5)


def test_the_caller_gives_up_after_n_rings() -> None:
    h = Harness("US", give_up_after_rings=3)
    h.line.place_inbound_call("5551234", "ACME CORP", datetime="03151430")
    h.advance(30.0)
    assert len(h.event_times(RingStart)) == 3 and len(h.event_times(RingStop)) == 3
    state = h.line.state()
    assert (state.phase, state.ringing, state.rings) == ("idle", False, 3)
    h.off_hook()  # too late: the exchange gives dial tone
    assert h.line.state().phase == Phase.DIAL_TONE


def test_uk_caller_gives_up_after_its_double_rings() -> None:
    h = Harness("UK")
    h.line.place_inbound_call(rings=2)
    h.advance(10.0)
    assert len(h.event_times(RingStart)) == 4  # two double rings


def test_the_caller_hangs_up_while_ringing() -> None:
    h = Harness()
    h.line.place_inbound_call()
    h.advance(1.0)
    h.line.far_end_hangup()
    assert h.events[-1] == (1.0, RingStop())
    h.advance(10.0)
    assert len(h.event_times(RingStart)) == 1 and h.line.state().phase == Phase.IDLE


def test_calls_the_line_cannot_take() -> None:
    h = Harness()
    h.off_hook()
    with pytest.raises(SimulatedLineError, match="off hook"):
        h.line.place_inbound_call("5551234", "ACME CORP")
    h.on_hook()
    h.line.place_inbound_call()
    with pytest.raises(SimulatedLineError, match="already ringing"):
        h.line.place_inbound_call()
    with pytest.raises(ValueError, match="at least one ring"):
        Harness().line.place_inbound_call(rings=0)
    with pytest.raises(ValueError, match="standard"):
        Harness().line.place_inbound_call("1", standard="v21")
    with pytest.raises(ValueError, match="SDMF"):
        Harness().line.place_inbound_call(name="NO NUMBER", caller_id_format="sdmf")
    with pytest.raises(ValueError, match="no simulated exchange"):
        Harness("XX")


def test_frames_on_hook_only_during_caller_id() -> None:
    h = Harness()
    h.line.place_inbound_call("5551234", "ACME CORP", datetime="03151430", rings=2)
    h.advance(15.0)
    burst = [f for _, f in h.frames]
    assert 20 < len(burst) < 60
    assert SAMPLE_RATE * 0.4 < sum(f.size for f in burst) < SAMPLE_RATE * 1.2
