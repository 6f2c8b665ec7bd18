"""The ``modem`` line card: a V.253 voice modem (USR5637, Conexant class) on a serial port.

The asyncio edge around ``modem_protocol``: it opens the port with pyserial (RTS/CTS flow
control), reads and writes its file descriptor from the event loop (``add_reader`` /
``add_writer``, never blocking), runs the AT commands one at a time, and feeds what the modem
sends to the pure receiver and event core, arming one timer for the core's next deadline.

Init, re-run whenever the device comes back: ATZ, ATE0, AT+IFC=2,2 (RTS/CTS both ways),
AT+FCLASS=8 (voice), AT+VCID=1 (formatted caller ID report), AT+VSM=? and AT+VSM=<cml>,8000
(16-bit linear, else u-law, A-law, 8-bit linear), AT+VTR=? (full duplex?), AT+VLS=0 (on hook).
Off hook is AT+VLS=1 then AT+VTR (voice duplex: audio both ways). A modem without +VTR gets
AT+VRX: the gateway hears the line but cannot talk on it (half duplex; a warning is logged
and ``send_audio`` drops frames) - usable for monitoring and caller ID only.

Caller ID comes from the modem's formatted report (DATE/TIME/NMBR/NAME, MESG decoded with
``gateway_fxo.dsp.callerid``). A modem that cannot decode the line's standard sends no report;
the gateway then decodes FSK from the audio it receives off hook.

When the USB device disappears (a read or write fails, or the port reports end of file), the
card logs it, reports LineCardLost (the agent ends any call and takes no new ones), retries
opening the same path with a bounded backoff, re-runs init, and then reports LineCardRestored
so the agent knows the line is usable again. A call in progress at that moment is lost: the
card comes back on hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

import serial

from gateway_fxo.backends.modem_protocol import (
    ABORT_RECEIVE,
    END_DUPLEX,
    AudioFramer,
    ModemItem,
    ModemLineEvents,
    ModemOutput,
    ModemReceiver,
    ModemSignal,
    ResponseLine,
    SampleCodec,
    StreamData,
    StreamEnd,
    StreamEvent,
    VoiceFormat,
    VoiceFormatError,
    choose_format,
    is_final_result,
    is_unsolicited,
    parse_vsm_formats,
    select_format_command,
    shield,
)
from gateway_fxo.line import (
    FRAME_BYTES,
    FRAME_SECONDS,
    AudioHandler,
    EventHandler,
    LineCardError,
    LineCardLost,
    LineCardRestored,
    LineEvent,
)

logger = logging.getLogger(__name__)

SignalHandler = Callable[[ModemSignal], None]


class ModemError(LineCardError):
    """The modem is absent, silent, or refused something we cannot do without."""


class ModemCommandError(ModemError):
    def __init__(self, command: str, result: str, lines: list[str]) -> None:
        super().__init__(f"{command} answered {result}")
        self.command = command
        self.result = result
        self.lines = lines


@dataclass(frozen=True, slots=True, kw_only=True)
class ModemSettings:
    """Where the modem is and how patient to be with it (the agent fills this from settings)."""

    device: str
    """A path that stays the same across re-plugging, e.g. /dev/serial/by-id/usb-..."""
    baudrate: int = 115200
    command_timeout_s: float = 3.0
    reset_timeout_s: float = 6.0
    retry_initial_s: float = 0.5
    retry_max_s: float = 5.0
    full_duplex: bool | None = None
    """None: use +VTR when AT+VTR=? says OK; False forces +VRX; True forces +VTR."""
    ring_burst_s: float = 1.0
    callerid_quiet_s: float = 0.3
    loop_drop_report_s: float = 0.5
    callerid_standard: str = "bell202"
    max_tx_buffer_s: float = 0.2
    """Audio not yet written (the modem held CTS off) beyond this is dropped, not queued."""


SerialFactory = Callable[[ModemSettings], serial.Serial]


def open_serial(settings: ModemSettings) -> serial.Serial:
    """The port, non-blocking, 8N1 with RTS/CTS, and ours alone (flock)."""
    return serial.Serial(
        settings.device,
        baudrate=settings.baudrate,
        rtscts=True,
        timeout=0,
        write_timeout=0,
        exclusive=True,
    )


@dataclass(slots=True)
class _PendingCommand:
    command: str
    result: asyncio.Future[str]
    lines: list[str]


def _ignore(_: object) -> None:
    pass


class ModemLineCard:
    """A LineCard on a V.253 voice modem."""

    def __init__(
        self, settings: ModemSettings, *, serial_factory: SerialFactory = open_serial
    ) -> None:
        self.on_event: EventHandler = _ignore
        self.on_audio: AudioHandler = _ignore
        self.on_signal: SignalHandler = _ignore
        """Busy, dial tone, DTMF... as the modem reports them (optional; the DSP hears them too)."""
        self._settings = settings
        self._serial_factory = serial_factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: serial.Serial | None = None
        self._fd: int | None = None
        self._receiver = ModemReceiver()
        self._events = self._new_event_core()
        self._codec: SampleCodec | None = None
        self._framer = AudioFramer()
        self._format: VoiceFormat | None = None
        self._full_duplex = False
        self._off_hook = False
        self._streaming = False
        self._stopping_stream = False
        self._restart_after_result = False
        self._tx = bytearray()
        self._writer_armed = False
        self._pending: _PendingCommand | None = None
        self._command_lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._reconnect_task: asyncio.Task[None] | None = None
        self._restart_task: asyncio.Task[None] | None = None
        self._closing = False
        self._running = False  # open() succeeded: a lost device is then retried
        self._dropped_tx_frames = 0

    # --- what the agent sees -------------------------------------------------------------------

    @property
    def is_off_hook(self) -> bool:
        return self._off_hook

    @property
    def connected(self) -> bool:
        return self._port is not None

    @property
    def sample_format(self) -> VoiceFormat | None:
        return self._format

    @property
    def full_duplex(self) -> bool:
        return self._full_duplex

    @property
    def port(self) -> serial.Serial | None:
        return self._port

    async def open(self) -> None:
        """Open the port and initialize the modem; ModemError if either fails."""
        self._loop = asyncio.get_running_loop()
        self._closing = False
        await self._connect()
        self._running = True

    async def close(self) -> None:
        self._closing = True
        self._running = False
        for task in (self._reconnect_task, self._restart_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, ModemError):
                    await task
        if self._port is not None:
            try:
                await self.on_hook()
            except ModemError as exc:
                logger.info("event=modem_close_on_hook_failed error=%r", str(exc))
        self._detach()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def off_hook(self) -> None:
        if self._off_hook:
            return
        await self._command("AT+VLS=1")
        self._off_hook = True
        await self._start_stream()

    async def on_hook(self) -> None:
        if not self._off_hook:
            return
        self._off_hook = False
        await self._stop_stream()
        await self._command("AT+VLS=0")

    async def hook_flash(self, seconds: float = 0.6) -> None:
        """On hook for ``seconds``, then back off hook with audio running again."""
        if not self._off_hook:
            logger.info("event=modem_hook_flash_ignored reason=on_hook")
            return
        await self._stop_stream()
        await self._command("AT+VLS=0")
        await asyncio.sleep(seconds)
        await self._command("AT+VLS=1")
        await self._start_stream()

    def send_audio(self, frame: bytes) -> None:
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes, not {len(frame)}")
        if not self._streaming or self._codec is None or self._stopping_stream:
            return
        if not self._full_duplex:
            self._count_dropped("half_duplex")
            return
        data = shield(self._codec.encode(frame))
        limit = self._settings.max_tx_buffer_s / FRAME_SECONDS * len(data)
        if len(self._tx) > limit:
            self._count_dropped("flow_control")
            return
        self._write(data)

    # --- connecting and init -------------------------------------------------------------------

    def _new_event_core(self) -> ModemLineEvents:
        s = self._settings
        return ModemLineEvents(
            ring_burst_s=s.ring_burst_s,
            callerid_quiet_s=s.callerid_quiet_s,
            loop_drop_report_s=s.loop_drop_report_s,
            callerid_standard=s.callerid_standard,
        )

    async def _connect(self) -> None:
        try:
            port = self._serial_factory(self._settings)
        except (serial.SerialException, OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ModemError(f"cannot open {self._settings.device}: {reason}") from exc
        loop = self._require_loop()
        self._port = port
        self._fd = port.fileno()
        self._receiver = ModemReceiver()
        self._events = self._new_event_core()
        self._tx.clear()
        loop.add_reader(self._fd, self._on_readable)
        try:
            await self._initialize()
        except ModemError:
            self._detach()
            raise

    async def _initialize(self) -> None:
        s = self._settings
        await self._command("ATZ", timeout=s.reset_timeout_s)
        await self._command("ATE0")
        if not await self._optional("AT+IFC=2,2"):
            logger.warning("event=modem_no_ifc device=%s flow_control=serial_port_only", s.device)
        await self._command("AT+FCLASS=8")
        if not await self._optional("AT+VCID=1"):
            logger.warning(
                "event=modem_no_caller_id device=%s fallback=fsk_from_audio_off_hook", s.device
            )
        formats = parse_vsm_formats(await self._command("AT+VSM=?"))
        try:
            chosen = choose_format(formats)
        except VoiceFormatError as exc:
            raise ModemError(str(exc)) from exc
        await self._command(select_format_command(chosen))
        self._format = chosen
        self._codec = SampleCodec(chosen.encoding or "linear16")
        if s.full_duplex is None:
            self._full_duplex = await self._optional("AT+VTR=?")
        else:
            self._full_duplex = s.full_duplex
        if not self._full_duplex:
            logger.warning(
                "event=modem_half_duplex device=%s effect=line_audio_received_only", s.device
            )
        await self._command("AT+VLS=0")
        self._off_hook = False
        logger.info(
            "event=modem_ready device=%s format=%r cml=%d duplex=%s",
            s.device,
            chosen.name,
            chosen.cml,
            "full" if self._full_duplex else "half",
        )

    async def _optional(self, command: str) -> bool:
        try:
            await self._command(command)
        except ModemCommandError:
            return False
        return True

    # --- commands ------------------------------------------------------------------------------

    async def _command(
        self,
        command: str,
        *,
        timeout: float | None = None,
        expect_stream: bool = False,
        raw: bytes | None = None,
    ) -> list[str]:
        """Send a command (or raw shielded bytes) and wait for its final result code."""
        async with self._command_lock:
            if self._port is None:
                raise ModemError(f"{command}: modem not connected")
            loop = self._require_loop()
            pending = _PendingCommand(command, loop.create_future(), [])
            self._pending = pending
            if expect_stream:
                self._receiver.expect_stream()
            try:
                self._write(raw if raw is not None else command.encode("ascii") + b"\r")
                wait = self._settings.command_timeout_s if timeout is None else timeout
                try:
                    result = await asyncio.wait_for(pending.result, wait)
                except TimeoutError:
                    self._receiver.cancel_expect_stream()
                    raise ModemError(f"{command}: no answer in {wait:g} s") from None
            finally:
                self._pending = None
            if result == "ERROR" or result.startswith("+CME ERROR") or result.startswith("NO "):
                self._receiver.cancel_expect_stream()
                raise ModemCommandError(command, result, pending.lines)
            logger.debug("event=modem_command command=%s result=%s", command, result)
            return pending.lines

    async def _start_stream(self) -> None:
        command = "AT+VTR" if self._full_duplex else "AT+VRX"
        self._framer.clear()
        if self._format is not None:
            self._codec = SampleCodec(self._format.encoding or "linear16")
        await self._command(command, expect_stream=True)
        self._streaming = True

    async def _stop_stream(self) -> None:
        if not self._streaming:
            return
        self._stopping_stream = True
        try:
            end = END_DUPLEX if self._full_duplex else ABORT_RECEIVE
            await self._command("<DLE>end", raw=end)
        finally:
            self._stopping_stream = False
            self._streaming = False

    # --- the event loop side -------------------------------------------------------------------

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise ModemError("open() first")
        return self._loop

    def _on_readable(self) -> None:
        if self._fd is None:
            return
        try:
            data = os.read(self._fd, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            self._lost(str(exc))
            return
        if not data:
            self._lost("end of file")
            return
        now = self._require_loop().time()
        for item in self._receiver.feed(data):
            self._dispatch(item, now)
        self._arm_timer()

    def _dispatch(self, item: ModemItem, now: float) -> None:
        if isinstance(item, StreamData):
            if self._codec is None:
                return
            for frame in self._framer.push(self._codec.decode(item.data)):
                if self._off_hook and self._streaming:
                    self.on_audio(frame)
        elif isinstance(item, StreamEvent):
            self._emit(self._events.receive(item, now))
        elif isinstance(item, StreamEnd):
            self._on_stream_end()
        else:
            self._on_line(item, now)

    def _on_line(self, item: ResponseLine, now: float) -> None:
        text = item.text
        pending = self._pending
        if pending is not None and not is_unsolicited(text):
            if text.upper() == pending.command.upper():
                return  # echo (before ATE0 took effect)
            if is_final_result(text):
                if not pending.result.done():
                    pending.result.set_result(text)
            else:
                pending.lines.append(text)
            return
        if is_final_result(text):
            if self._restart_after_result:  # the OK after a stream the modem ended
                self._restart_after_result = False
                if self._off_hook and not self._closing:
                    self._restart_task = self._require_loop().create_task(self._restart_stream())
                return
            logger.debug("event=modem_stray_result text=%r", text)
            return
        self._emit(self._events.receive(item, now))

    def _on_stream_end(self) -> None:
        if self._stopping_stream or not self._streaming:
            return
        self._streaming = False
        logger.warning("event=modem_stream_ended_by_modem off_hook=%s", self._off_hook)
        self._restart_after_result = True  # restart once its final result code is in

    async def _restart_stream(self) -> None:
        try:
            if self._off_hook and not self._streaming:
                await self._start_stream()
        except ModemError as exc:
            logger.warning("event=modem_stream_restart_failed error=%r", str(exc))

    def _emit(self, outputs: list[ModemOutput]) -> None:
        for output in outputs:
            if isinstance(output, ModemSignal):
                logger.debug("event=modem_signal kind=%s code=%r", output.kind, output.code)
                self.on_signal(output)
            else:
                event: LineEvent = output
                logger.info("event=line_event kind=%s", type(event).__name__)
                self.on_event(event)

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self._events.next_deadline()
        if deadline is not None:
            self._timer = self._require_loop().call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._emit(self._events.handle_timer(self._require_loop().time()))
        self._arm_timer()

    def _write(self, data: bytes) -> None:
        self._tx += data
        self._flush()

    def _flush(self) -> None:
        fd = self._fd
        if fd is None:
            return
        while self._tx:
            try:
                written = os.write(fd, self._tx)
            except BlockingIOError:
                break
            except OSError as exc:
                self._lost(str(exc))
                return
            del self._tx[:written]
        loop = self._require_loop()
        if self._tx and not self._writer_armed:
            loop.add_writer(fd, self._flush)
            self._writer_armed = True
        elif not self._tx and self._writer_armed:
            loop.remove_writer(fd)
            self._writer_armed = False

    def _count_dropped(self, reason: str) -> None:
        self._dropped_tx_frames += 1
        if self._dropped_tx_frames in (1, 10, 100) or self._dropped_tx_frames % 1000 == 0:
            logger.warning(
                "event=modem_tx_dropped reason=%s frames=%d", reason, self._dropped_tx_frames
            )

    # --- losing the device and getting it back -------------------------------------------------

    def _detach(self) -> None:
        loop, fd, port = self._loop, self._fd, self._port
        if loop is not None and fd is not None:
            loop.remove_reader(fd)
            if self._writer_armed:
                loop.remove_writer(fd)
        self._writer_armed = False
        self._fd = None
        self._port = None
        self._tx.clear()
        self._streaming = False
        self._restart_after_result = False
        self._off_hook = False
        if port is not None:
            with contextlib.suppress(serial.SerialException, OSError):
                port.close()

    def _lost(self, reason: str) -> None:
        if self._port is None:
            return
        logger.warning(
            "event=modem_lost device=%s error=%r action=retrying_every_%gs_to_%gs",
            self._settings.device,
            reason,
            self._settings.retry_initial_s,
            self._settings.retry_max_s,
        )
        self._detach()
        pending = self._pending
        if pending is not None and not pending.result.done():
            pending.result.set_exception(ModemError(f"{pending.command}: device lost ({reason})"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._events = self._new_event_core()
        reconnecting = self._reconnect_task is not None and not self._reconnect_task.done()
        if self._running and not self._closing and not reconnecting:
            self._reconnect_task = self._require_loop().create_task(self._reconnect())
            # Once per loss (not again for a re-init that fails), after the card went on hook.
            self.on_event(LineCardLost(reason=reason))

    async def _reconnect(self) -> None:
        s = self._settings
        delay = s.retry_initial_s
        attempt = 0
        while not self._closing:
            await asyncio.sleep(delay)
            attempt += 1
            try:
                await self._connect()
            except ModemError as exc:
                logger.info(
                    "event=modem_retry device=%s attempt=%d error=%r next_in_s=%g",
                    s.device,
                    attempt,
                    str(exc),
                    min(delay * 2, s.retry_max_s),
                )
                delay = min(delay * 2, s.retry_max_s)
                continue
            logger.warning("event=modem_back device=%s attempts=%d", s.device, attempt)
            self.on_event(LineCardRestored())
            return
