"""Caller ID the way a BT line sends it (SIN 227, EN 300 659-1 6.1 "prior to ringing"): polarity
reversal, DT-AS, V.23 FSK, then the double ring; the polarity is restored when the call ends."""

from __future__ import annotations

import numpy as np
import pytest

from gateway_fxo.backends.sim import Phase
from gateway_fxo.dsp.callerid import CallerId, CallerIdReceiver
from gateway_fxo.dsp.dtas import DtasAlert, DtasDetector
from gateway_fxo.dsp.levels import SAMPLE_RATE
from gateway_fxo.line import (
    FRAME_BYTES,
    FRAME_SECONDS,
    CallerIdReceived,
    LineEvent,
    LoopCurrentDrop,
    PolarityReversal,
    RingStart,
    RingStop,
)
from gateway_fxo.sim_control import SimControlServer

from .test_sim_harness import Harness

UK_CADENCE = (0.4, 0.2, 0.4, 2.0)


def heard_alerts(h: Harness) -> list[DtasAlert]:
    detector = DtasDetector()
    return detector.push(h.audio()) + detector.finish()


def decode(h: Harness) -> list[CallerId]:
    receiver = CallerIdReceiver()
    return receiver.push(h.audio()) + receiver.finish()


def kinds(h: Harness) -> list[str]:
    return [type(event).__name__ for _, event in h.events]


def uk_call(**options: object) -> Harness:
    h = Harness("UK", **options)
    h.advance(0.5)
    h.line.place_inbound_call("01234567890", "ACME CORP", datetime="03151430", rings=2)
    return h


def test_uk_calls_reverse_the_line_then_alert_then_send_fsk_then_ring() -> None:
    h = uk_call()
    h.advance(4.0)
    [reversal] = h.event_times(PolarityReversal)
    ring = h.event_times(RingStart)[0]
    assert reversal == pytest.approx(0.5)
    assert kinds(h)[:3] == ["PolarityReversal", "RingStart", "RingStop"]
    # Audio on hook: one unbroken stretch from the DT-AS to the end of the FSK, all before ring 1.
    times = [t for t, _ in h.frames]
    assert np.allclose(np.diff(times), FRAME_SECONDS)
    first, last_end = times[0], times[-1] + FRAME_SECONDS
    assert first - reversal >= 0.1 - 1e-9  # >= 100 ms after the reversal
    assert ring - last_end >= 0.2 - 1e-9  # ringing >= 200 ms after the FSK
    # The alert opens the audio: 100 ms of 2130 + 2750 Hz.
    [alert] = heard_alerts(h)
    assert alert.start_s == pytest.approx(0.0, abs=0.006)
    assert alert.duration_s == pytest.approx(0.1, abs=0.01)
    # Then 45-500 ms of quiet line (the terminal's wetting pulse), then the V.23 burst.
    audio = h.audio()
    after = alert.end + 80  # 10 ms on: past the alert's last samples
    fsk_start = after + int(np.argmax(np.abs(audio[after:]) > 1000.0))
    assert 0.045 <= (fsk_start - alert.end) / SAMPLE_RATE <= 0.5
    [found] = decode(h)
    assert (found.standard, found.format) == ("v23", "mdmf")
    assert (found.number, found.name, found.datetime) == ("01234567890", "ACME CORP", "03151430")
    assert found.checksum_ok and found.start > alert.end
    assert not any(isinstance(e, CallerIdReceived) for _, e in h.events)


def test_the_uk_double_ring_follows_on_its_cadence() -> None:
    h = uk_call()
    h.advance(10.0)
    starts, stops = h.event_times(RingStart), h.event_times(RingStop)
    assert len(starts) == len(stops) == 4  # two double rings, then the caller gives up
    t = starts[0]
    expected_starts, expected_stops = [], []
    for _ in range(2):
        for k in (0, 2):
            expected_starts.append(t)
            expected_stops.append(t + UK_CADENCE[k])
            t += UK_CADENCE[k] + UK_CADENCE[k + 1]
    assert starts == pytest.approx(expected_starts, abs=1e-9)
    assert stops == pytest.approx(expected_stops, abs=1e-9)
    # Nothing heard between the rings: the caller ID came before them.
    assert all(t < starts[0] for t, _ in h.frames)
    # The caller gave up when a third double ring was due: the line's polarity is restored.
    assert kinds(h)[-2:] == ["RingStop", "PolarityReversal"]
    assert h.event_times(PolarityReversal)[-1] == pytest.approx(starts[0] + 2 * sum(UK_CADENCE))
    assert h.line.state().phase == Phase.IDLE


def test_uk_default_and_explicit_standard_are_the_same_burst() -> None:
    default = uk_call()
    explicit = Harness("UK")
    explicit.advance(0.5)
    explicit.line.place_inbound_call(
        "01234567890", "ACME CORP", datetime="03151430", rings=2, standard="v23-dtas"
    )
    default.advance(2.0)
    explicit.advance(2.0)
    assert np.array_equal(default.audio(), explicit.audio())
    assert default.events == explicit.events


@pytest.mark.parametrize("country", ["US", "FR", "DE"])
def test_other_countries_keep_fsk_after_the_first_ring(country: str) -> None:
    h = Harness(country)
    h.line.place_inbound_call("5551234", "ACME CORP", datetime="03151430", rings=1)
    h.advance(8.0)
    assert h.event_times(PolarityReversal) == []
    assert heard_alerts(h) == []
    assert h.frames[0][0] > h.event_times(RingStop)[0]
    assert len(decode(h)) == 1


def test_v23_dtas_elsewhere_and_with_sdmf_or_a_withheld_number() -> None:
    h = Harness("DE")
    h.line.place_inbound_call("5551234", standard="v23-dtas", caller_id_format="sdmf")
    h.advance(2.0)
    assert kinds(h)[0] == "PolarityReversal"
    [found] = decode(h)
    assert (found.standard, found.format, found.number) == ("v23", "sdmf", "5551234")
    withheld = Harness("UK")
    withheld.line.place_inbound_call(absence_reason="P", datetime="01010000")
    withheld.advance(2.0)
    [found] = decode(withheld)
    assert (found.number, found.absence_reason) == (None, "P")
    assert len(heard_alerts(withheld)) == 1


def test_a_uk_call_without_caller_id_just_rings() -> None:
    h = Harness("UK")
    h.line.place_inbound_call(rings=1)
    h.advance(4.0)
    assert h.frames == [] and h.event_times(PolarityReversal) == []
    assert h.event_times(RingStart)[0] == 0.0


def test_decoded_caller_id_event_comes_before_the_first_ring() -> None:
    h = uk_call(decode_caller_id=True)
    h.advance(3.0)
    [(t, event)] = [(t, e) for t, e in h.events if isinstance(e, CallerIdReceived)]
    assert event == CallerIdReceived(
        number="01234567890", name="ACME CORP", standard="v23", datetime="03151430"
    )
    assert t == pytest.approx(h.frames[-1][0]) and t < h.event_times(RingStart)[0]


def test_polarity_restored_when_the_far_end_hangs_up() -> None:
    h = uk_call()
    h.advance(3.0)
    h.off_hook()
    h.advance(1.0)
    assert len(h.event_times(PolarityReversal)) == 1  # still reversed during the call
    hangup = h.line.now
    h.line.far_end_hangup()  # UK default: loop-current drop
    h.advance(1.0)
    assert h.event_times(PolarityReversal)[1:] == [hangup]
    assert kinds(h)[-2:] == ["PolarityReversal", "LoopCurrentDrop"]
    h.on_hook()
    assert len(h.event_times(PolarityReversal)) == 2  # restored once, not again


def test_a_polarity_hang_up_signal_is_the_restoring_reversal() -> None:
    h = uk_call()
    h.advance(3.0)
    h.off_hook()
    h.line.far_end_hangup("polarity")
    assert len(h.event_times(PolarityReversal)) == 2


def test_polarity_restored_when_the_gateway_hangs_up_or_the_caller_gives_up() -> None:
    h = uk_call()
    h.advance(3.0)
    h.off_hook()
    h.advance(1.0)
    h.on_hook()
    assert h.events[-1] == (h.line.now, PolarityReversal())
    early = uk_call()
    early.advance(0.1)
    early.line.far_end_hangup()  # before the alert: no ring ever started
    assert kinds(early) == ["PolarityReversal", "PolarityReversal"]
    early.advance(3.0)
    assert early.frames == [] and early.event_times(RingStart) == []


def test_answering_during_the_alert_cuts_the_caller_id_short() -> None:
    h = uk_call()
    h.advance(0.4)  # reversal at 0.5, alert at 0.7: answer just after it starts
    answered = h.line.now
    h.off_hook()
    h.advance(1.0)
    assert decode(h) == []
    assert h.event_times(RingStart) == []
    assert h.line.state().in_call and h.line.state().direction == "inbound"
    assert h.frames[0][0] < answered  # the alert had begun


def test_line_voltage_lost_forgets_the_reversal() -> None:
    h = uk_call()
    h.advance(0.2)
    h.line.line_voltage_lost()
    h.line.line_voltage_restored()
    h.off_hook()
    h.on_hook()
    assert len(h.event_times(PolarityReversal)) == 1


def test_the_control_server_places_a_uk_call() -> None:
    h = Harness("UK")
    server = SimControlServer(h.line)
    reply = server.handle(
        {"op": "place_inbound_call", "number": "01234567890", "standard": "v23-dtas"}
    )
    assert reply == {"ok": True}
    h.advance(2.0)
    assert kinds(h)[0] == "PolarityReversal" and len(heard_alerts(h)) == 1
    assert decode(h)[0].number == "01234567890"
    other = SimControlServer(Harness("UK").line)
    refused = other.handle({"op": "place_inbound_call", "number": "1", "standard": "v23-x"})
    assert refused["ok"] is False and "v23-dtas" in refused["error"]


class GatewayListener:
    """What the gateway's agent does with a line on hook (`agent._on_line_audio` and its
    `RingStart` count): every 20 ms frame heard while on hook and in no call goes to one
    CallerIdReceiver, frame by frame as int16 samples; the caller is known when ring N comes."""

    def __init__(self, h: Harness, answer_after_rings: int) -> None:
        self.h = h
        self.receiver = CallerIdReceiver()
        self.caller: CallerIdReceived | None = None
        self.rings = 0
        self.answer_after_rings = answer_after_rings
        self.caller_at_answer: CallerIdReceived | None = None
        h.line.on_audio = self.on_audio
        h.line.on_event = self.on_event

    def on_audio(self, frame: bytes) -> None:
        assert len(frame) == FRAME_BYTES
        if self.h.line.is_off_hook:
            return
        samples = np.frombuffer(frame, dtype=np.int16)
        for found in self.receiver.push(samples):
            self.caller = CallerIdReceived(
                number=found.number, name=found.name, standard=found.standard
            )

    def on_event(self, event: LineEvent) -> None:
        self.h.events.append((self.h.line.now, event))
        if isinstance(event, RingStart):
            self.rings += 1
            if self.rings == self.answer_after_rings:
                self.caller_at_answer = self.caller


@pytest.mark.parametrize("answer_after_rings", [1, 2])
def test_the_gateway_knows_a_uk_caller_when_it_answers(answer_after_rings: int) -> None:
    h = Harness("UK", noise_dbm0=-60.0, level_variation_db=2.0, seed=11)
    gateway = GatewayListener(h, answer_after_rings)
    h.line.place_inbound_call("01234567890", "ACME CORP")
    h.advance(3.0)
    assert gateway.caller_at_answer == CallerIdReceived(
        number="01234567890", name="ACME CORP", standard="v23"
    )
    # The reversal before it is only an on-hook event (the agent acts on one only in a call).
    assert isinstance(h.events[0][1], PolarityReversal)


def test_the_gateway_hears_no_caller_if_it_listens_only_between_rings() -> None:
    """Why the agent must listen before the first ring too: a UK burst comes before it."""
    h = Harness("UK")
    receiver = CallerIdReceiver()
    rang = False

    def on_event(event: LineEvent) -> None:
        nonlocal rang
        rang = rang or isinstance(event, RingStart)

    def on_audio(frame: bytes) -> None:
        if rang:
            receiver.push(np.frombuffer(frame, dtype=np.int16))

    h.line.on_event = on_event
    h.line.on_audio = on_audio
    h.line.place_inbound_call("01234567890", "ACME CORP", rings=2)
    h.advance(10.0)
    assert receiver.finish() == [] and rang


def test_loop_drop_still_reported_after_restoring() -> None:
    h = uk_call()
    h.advance(3.0)
    h.off_hook()
    h.line.far_end_hangup(["loop_drop", "polarity"], loop_drop_seconds=0.4)
    h.advance(1.0)
    assert len(h.event_times(PolarityReversal)) == 2
    [(_, drop)] = [(t, e) for t, e in h.events if isinstance(e, LoopCurrentDrop)]
    assert drop == LoopCurrentDrop(seconds=0.4)
