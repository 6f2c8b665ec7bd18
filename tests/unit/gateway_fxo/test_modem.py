"""The modem line card against a fake V.253 modem on a pseudo-terminal (real pyserial, real pty).

Every wait is bounded; the fake and the card are closed in ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gateway_fxo.backends.modem import ModemError, ModemLineCard, ModemSettings
from gateway_fxo.backends.modem_protocol import ModemSignal
from gateway_fxo.line import (
    FRAME_BYTES,
    CallerIdReceived,
    LineCardLost,
    LineCardRestored,
    LineEvent,
    LoopCurrentDrop,
    PolarityReversal,
    RingStart,
    RingStop,
)
from tests.support.fake_modem import VSM_ULAW_ONLY, FakeModem

INIT = [
    "ATZ",
    "ATE0",
    "AT+IFC=2,2",
    "AT+FCLASS=8",
    "AT+VCID=1",
    "AT+VSM=?",
    "AT+VSM=133,8000",
    "AT+VTR=?",
    "AT+VLS=0",
]


class Recorder:
    """What the card reports, with bounded waits."""

    def __init__(self, card: ModemLineCard) -> None:
        self.events: list[LineEvent] = []
        self.signals: list[ModemSignal] = []
        self.frames: list[bytes] = []
        self._changed = asyncio.Event()
        card.on_event = self._add(self.events)
        card.on_signal = self._add(self.signals)
        card.on_audio = self._add(self.frames)

    def _add(self, into: list[Any]) -> Callable[[Any], None]:
        def add(item: object) -> None:
            into.append(item)
            self._changed.set()

        return add

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wake on each report, and every 10 ms for predicates on other state."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            if loop.time() > deadline:
                raise AssertionError(f"not true within {timeout} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.01)


def settings(path: Path, **overrides: object) -> ModemSettings:
    values: dict[str, object] = {
        "device": str(path),
        "command_timeout_s": 2.0,
        "retry_initial_s": 0.05,
        "retry_max_s": 0.2,
        "ring_burst_s": 0.2,
        "callerid_quiet_s": 0.1,
    }
    values.update(overrides)
    return ModemSettings(**values)  # type: ignore[arg-type]


Scenario = Callable[[FakeModem, ModemLineCard, Recorder], Awaitable[None]]


def run(tmp_path: Path, scenario: Scenario, **fake_options: object) -> None:
    path = tmp_path / "ttyModem"

    async def main(modem: FakeModem) -> None:
        card = ModemLineCard(settings(path))
        recorder = Recorder(card)
        try:
            await card.open()
            await scenario(modem, card, recorder)
        finally:
            await card.close()

    with FakeModem(path, **fake_options) as modem:  # type: ignore[arg-type]
        asyncio.run(asyncio.wait_for(main(modem), 20))


def peak_hz(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, "<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * 8000 / len(samples))


def test_init_sequence_is_exact(tmp_path: Path) -> None:
    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        assert modem.commands == INIT
        assert card.sample_format is not None and card.sample_format.encoding == "linear16"
        assert card.full_duplex
        assert card.port is not None and card.port.rtscts
        assert not card.is_off_hook

    run(tmp_path, scenario)


def test_ring_and_caller_id_report(tmp_path: Path) -> None:
    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        modem.ring()
        await rec.until(lambda: RingStop() in rec.events)
        modem.send_caller_id(["DATE = 0315", "TIME = 1430", "NMBR = 5551234", "NAME = ACME CORP"])
        await rec.until(lambda: any(isinstance(e, CallerIdReceived) for e in rec.events))
        modem.ring()
        await rec.until(lambda: rec.events.count(RingStart()) == 2)
        assert rec.events[:4] == [
            RingStart(),
            RingStop(),
            CallerIdReceived(number="5551234", name="ACME CORP", datetime="03151430"),
            RingStart(),
        ]

    run(tmp_path, scenario)


def test_audio_both_ways_full_duplex(tmp_path: Path) -> None:
    # Every byte value, 0x10 included, in what the gateway sends.
    ramp = bytes(range(256)) + bytes(range(64))
    sent = [ramp, bytes([0x10]) * FRAME_BYTES, ramp[::-1]]

    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        await card.off_hook()
        assert card.is_off_hook
        assert modem.commands[-2:] == ["AT+VLS=1", "AT+VTR"]
        await rec.until(lambda: len(rec.frames) >= 10)
        assert all(len(f) == FRAME_BYTES for f in rec.frames)
        assert peak_hz(b"".join(rec.frames[2:10])) == pytest.approx(1000, abs=10)
        for frame in sent:
            card.send_audio(frame)
        total = sum(len(f) for f in sent)
        assert await asyncio.to_thread(modem.wait_for, lambda m: len(m._raw_received) >= total)
        assert modem.raw_received() == b"".join(sent)
        await card.on_hook()
        assert modem.dte_codes == ["^"]
        assert modem.commands[-1] == "AT+VLS=0"
        count = len(rec.frames)
        await asyncio.sleep(0.1)
        assert len(rec.frames) == count  # no audio on hook

    run(tmp_path, scenario)


def test_ulaw_modem_audio_is_converted(tmp_path: Path) -> None:
    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        assert card.sample_format is not None and card.sample_format.encoding == "ulaw"
        assert "AT+VSM=131,8000" in modem.commands
        await card.off_hook()
        await rec.until(lambda: len(rec.frames) >= 8)
        assert peak_hz(b"".join(rec.frames[:8])) == pytest.approx(1000, abs=10)
        tone = np.round(6000 * np.sin(2 * np.pi * 440 * np.arange(1600) / 8000)).astype("<i2")
        for i in range(10):
            card.send_audio(tone[i * 160 : (i + 1) * 160].tobytes())
        assert await asyncio.to_thread(modem.wait_for, lambda m: len(m._raw_received) >= 1600)
        heard = modem.received_audio()
        assert peak_hz(heard) == pytest.approx(440, abs=10)
        error = np.frombuffer(heard, "<i2").astype(int) - tone.astype(int)
        assert np.max(np.abs(error)) < 300  # u-law quantization only

    run(tmp_path, scenario, vsm_lines=VSM_ULAW_ONLY)


def test_half_duplex_modem_receives_only(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "gateway_fxo.backends.modem")

    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        assert not card.full_duplex
        assert "event=modem_half_duplex" in caplog.text
        await card.off_hook()
        assert modem.commands[-1] == "AT+VRX"
        await rec.until(lambda: len(rec.frames) >= 4)
        card.send_audio(b"\x01" * FRAME_BYTES)
        await card.on_hook()
        assert modem.dte_codes == ["!"]
        assert modem.raw_received() == b""

    run(tmp_path, scenario, full_duplex=False)


def test_modem_without_caller_id_still_works(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "gateway_fxo.backends.modem")

    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        assert "event=modem_no_caller_id" in caplog.text
        assert modem.commands[-1] == "AT+VLS=0"

    run(tmp_path, scenario, caller_id=False)


def test_dle_events_while_off_hook(tmp_path: Path) -> None:
    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        await card.off_hook()
        for code in "b5dLl":
            modem.send_event(code)
        await rec.until(lambda: LoopCurrentDrop(seconds=0.5) in rec.events)
        assert PolarityReversal() in rec.events
        assert [s.kind for s in rec.signals] == ["busy", "dtmf", "dialtone"]
        assert rec.signals[1].digit == "5"
        frames = len(rec.frames)
        await rec.until(lambda: len(rec.frames) > frames + 3)  # the stream goes on

    run(tmp_path, scenario)


def test_stream_ended_by_the_modem_is_restarted(tmp_path: Path) -> None:
    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        await card.off_hook()
        await rec.until(lambda: len(rec.frames) >= 2)
        modem.end_stream()
        await rec.until(lambda: modem.commands.count("AT+VTR") == 2)
        frames = len(rec.frames)
        await rec.until(lambda: len(rec.frames) > frames + 3)
        card.send_audio(b"\x10" * FRAME_BYTES)
        assert await asyncio.to_thread(
            modem.wait_for, lambda m: len(m._raw_received) >= FRAME_BYTES
        )
        await card.on_hook()
        assert modem.commands[-1] == "AT+VLS=0"

    run(tmp_path, scenario)


def test_hook_flash_goes_on_hook_and_back(tmp_path: Path) -> None:
    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        await card.off_hook()
        await card.hook_flash(0.05)
        assert modem.commands[-5:] == ["AT+VLS=1", "AT+VTR", "AT+VLS=0", "AT+VLS=1", "AT+VTR"]
        assert card.is_off_hook
        frames = len(rec.frames)
        await rec.until(lambda: len(rec.frames) > frames + 2)

    run(tmp_path, scenario)


def test_unplug_retry_replug_reinit(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway_fxo.backends.modem")

    async def scenario(modem: FakeModem, card: ModemLineCard, rec: Recorder) -> None:
        at_loss: list[tuple[bool, bool]] = []
        record = card.on_event

        def on_event(event: LineEvent) -> None:
            if isinstance(event, LineCardLost):
                at_loss.append((card.connected, card.is_off_hook))
            record(event)

        card.on_event = on_event
        await card.off_hook()
        await rec.until(lambda: len(rec.frames) >= 2)
        await asyncio.to_thread(modem.unplug)
        await rec.until(lambda: any(isinstance(e, LineCardLost) for e in rec.events))
        [lost] = [e for e in rec.events if isinstance(e, LineCardLost)]
        assert lost.reason  # what the OS said, for the agent's log
        assert "event=modem_lost" in caplog.text
        assert at_loss == [(False, False)]  # let go of the port and on hook when reported
        with pytest.raises(ModemError):
            await card.off_hook()
        await rec.until(lambda: caplog.text.count("event=modem_retry") >= 2)
        await rec.until(lambda: caplog.text.count("event=modem_retry") >= 2)
        before = len(modem.commands)
        await asyncio.to_thread(modem.replug)
        await rec.until(lambda: LineCardRestored() in rec.events)
        # One loss, one recovery, however many retries failed in between.
        assert [type(e) for e in rec.events] == [LineCardLost, LineCardRestored]
        assert modem.commands[before:] == INIT  # a fresh modem: the whole init again
        assert modem.commands.count("AT+VCID=1") == 2
        assert card.connected and not card.is_off_hook
        await card.off_hook()
        frames = len(rec.frames)
        await rec.until(lambda: len(rec.frames) > frames + 2)

    run(tmp_path, scenario)


def test_open_fails_clearly_when_there_is_no_device(tmp_path: Path) -> None:
    async def main() -> None:
        card = ModemLineCard(settings(tmp_path / "absent"))
        try:
            with pytest.raises(ModemError, match="cannot open"):
                await card.open()
        finally:
            await card.close()

    asyncio.run(asyncio.wait_for(main(), 10))


def test_send_audio_checks_the_frame_size(tmp_path: Path) -> None:
    card = ModemLineCard(settings(tmp_path / "x"))
    with pytest.raises(ValueError):
        card.send_audio(b"\x00" * 10)
