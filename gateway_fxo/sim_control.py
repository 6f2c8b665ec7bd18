"""Driving the simulated line from outside the gateway process: newline-delimited JSON over TCP.

A request is one JSON object on one line, `{"op": "place_inbound_call", "number": "5551234",
"name": "ACME CORP"}`; the answer is one line, `{"ok": true, ...}` or `{"ok": false, "error":
"..."}`. The server listens on the loopback interface only and has no authentication: it exists
for tests and the demo, on a box whose line is simulated anyway.

Ops: place_inbound_call (number, name, standard: bell202 / v23 / v23-dtas / dtmf, caller_id_format,
rings, absence_reason, datetime), far_end_answer, far_end_hangup (signal: a name or a list),
far_end_busy (congestion), dialled_digits, state, line_voltage_lost, line_voltage_restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import Callable
from types import TracebackType
from typing import Any

from gateway_fxo.backends.sim import SimulatedLine, SimulatedLineError
from gateway_fxo.line import LineCard

MAX_REQUEST_BYTES = 16 * 1024  # one request line; longer ones close the connection
LOOPBACK_NAMES = ("localhost",)

Reply = dict[str, Any]


class SimControlError(Exception):
    """The simulator refused a request (the server's error text), or the connection failed."""


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _optional_str(params: dict[str, Any], key: str) -> str | None:
    value = params.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _optional_int(params: dict[str, Any], key: str) -> int | None:
    value = params.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{key} must be an integer")
    return value


class SimControlServer:
    """The control socket of one simulated line. `handle()` is the whole protocol, without I/O."""

    def __init__(self, line: SimulatedLine, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if not _is_loopback(host):
            raise ValueError("the simulator's control server listens on loopback only")
        self.line = line
        self.host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._closing: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._ops: dict[str, Callable[[dict[str, Any]], Reply]] = {
            "place_inbound_call": self._place_inbound_call,
            "far_end_answer": self._far_end_answer,
            "far_end_hangup": self._far_end_hangup,
            "far_end_busy": self._far_end_busy,
            "dialled_digits": self._dialled_digits,
            "state": self._state,
            "line_voltage_lost": self._line_voltage_lost,
            "line_voltage_restored": self._line_voltage_restored,
        }

    @property
    def port(self) -> int:
        """The port listened on (the one chosen by the system when asked for port 0)."""
        return self._port

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening sockets (empty before `start()` and after `close()`)."""
        if self._server is None:
            return ()
        return tuple(self._server.sockets)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self._port, limit=MAX_REQUEST_BYTES
        )
        self._port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop listening and end every connection (like asyncio.Server.close)."""
        if self._server is not None:
            self._server.close()
            self._closing, self._server = self._server, None
        for task in self._connections:
            task.cancel()

    async def wait_closed(self) -> None:
        for task in list(self._connections):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._closing is not None:
            await self._closing.wait_closed()
            self._closing = None

    async def __aenter__(self) -> SimControlServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
        await self.wait_closed()

    def handle(self, request: object) -> Reply:
        """One decoded request to its reply."""
        if not isinstance(request, dict):
            return {"ok": False, "error": "a request is a JSON object"}
        op = request.get("op")
        handler = self._ops.get(op) if isinstance(op, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown op {op!r} (have {', '.join(self._ops)})"}
        try:
            return {"ok": True, **handler(request)}
        except (SimulatedLineError, ValueError) as error:  # CallerIdError is a ValueError
            return {"ok": False, "error": str(error)}

    def handle_line(self, line: bytes) -> bytes:
        """One request line to one reply line."""
        try:
            request = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            reply: Reply = {"ok": False, "error": f"not JSON: {error}"}
        else:
            reply = self.handle(request)
        return json.dumps(reply).encode() + b"\n"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError:
                    return  # the client closed
                except asyncio.LimitOverrunError:
                    writer.write(b'{"ok": false, "error": "request too long"}\n')
                    return
                if line.strip():
                    writer.write(self.handle_line(line))
                    await writer.drain()
        except ConnectionError:
            return
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    # --- ops ----------------------------------------------------------------------------------

    def _place_inbound_call(self, params: dict[str, Any]) -> Reply:
        self.line.place_inbound_call(
            _optional_str(params, "number"),
            _optional_str(params, "name"),
            standard=_optional_str(params, "standard"),
            caller_id_format=_optional_str(params, "caller_id_format") or "mdmf",
            rings=_optional_int(params, "rings"),
            absence_reason=_optional_str(params, "absence_reason"),
            datetime=_optional_str(params, "datetime"),
        )
        return {}

    def _far_end_answer(self, params: dict[str, Any]) -> Reply:
        self.line.far_end_answer()
        return {}

    def _far_end_hangup(self, params: dict[str, Any]) -> Reply:
        signal = params.get("signal")
        names = signal if isinstance(signal, list) else [signal]
        if not all(s is None or isinstance(s, str) for s in names):
            raise ValueError("signal must be a string or a list of strings")
        self.line.far_end_hangup(signal)
        return {}

    def _far_end_busy(self, params: dict[str, Any]) -> Reply:
        self.line.far_end_busy(congestion=params.get("congestion") is True)
        return {}

    def _dialled_digits(self, params: dict[str, Any]) -> Reply:
        return {"digits": self.line.dialled_digits()}

    def _state(self, params: dict[str, Any]) -> Reply:
        return {"state": self.line.state().as_json()}

    def _line_voltage_lost(self, params: dict[str, Any]) -> Reply:
        self.line.line_voltage_lost()
        return {}

    def _line_voltage_restored(self, params: dict[str, Any]) -> Reply:
        self.line.line_voltage_restored()
        return {}


async def start_control_server(
    line: LineCard, host: str = "127.0.0.1", port: int = 0
) -> SimControlServer:
    """A started control server for `line`, which must be a SimulatedLine (the composition root
    holds it as a LineCard); port 0: any free port, see `.port`."""
    if not isinstance(line, SimulatedLine):
        raise TypeError(f"only a simulated line has a control server, not {type(line).__name__}")
    server = SimControlServer(line, host=host, port=port)
    await server.start()
    return server


class SimControlClient:
    """A blocking client for the control server (tests run it in their own thread or process).
    One connection, opened on first use; `close()` or a `with` block ends it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 5.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._socket: socket.socket | None = None
        self._buffer = b""

    def __enter__(self) -> SimControlClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._buffer = b""

    def request(self, op: str, **params: Any) -> Reply:
        """Send one op; the reply's fields, or SimControlError with the server's reason."""
        if self._socket is None:
            self._socket = socket.create_connection((self.host, self.port), timeout=self.timeout)
        body = {key: value for key, value in params.items() if value is not None}
        self._socket.sendall(json.dumps({"op": op, **body}).encode() + b"\n")
        reply = json.loads(self._read_line())
        if not isinstance(reply, dict):
            raise SimControlError("the server's reply is not a JSON object")
        if not reply.get("ok"):
            raise SimControlError(str(reply.get("error", "refused")))
        return reply

    def _read_line(self) -> bytes:
        assert self._socket is not None
        while b"\n" not in self._buffer:
            if len(self._buffer) > MAX_REQUEST_BYTES * 4:
                raise SimControlError("reply too long")
            chunk = self._socket.recv(4096)
            if not chunk:
                self.close()
                raise SimControlError("the server closed the connection")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line

    def place_inbound_call(
        self,
        number: str | None = None,
        name: str | None = None,
        *,
        standard: str | None = None,
        caller_id_format: str | None = None,
        rings: int | None = None,
        absence_reason: str | None = None,
        datetime: str | None = None,
    ) -> None:
        self.request(
            "place_inbound_call",
            number=number,
            name=name,
            standard=standard,
            caller_id_format=caller_id_format,
            rings=rings,
            absence_reason=absence_reason,
            datetime=datetime,
        )

    def far_end_answer(self) -> None:
        self.request("far_end_answer")

    def far_end_hangup(self, signal: str | list[str] | None = None) -> None:
        self.request("far_end_hangup", signal=signal)

    def far_end_busy(self, *, congestion: bool = False) -> None:
        self.request("far_end_busy", congestion=congestion or None)

    def dialled_digits(self) -> str:
        return str(self.request("dialled_digits")["digits"])

    def state(self) -> dict[str, Any]:
        state = self.request("state")["state"]
        if not isinstance(state, dict):
            raise SimControlError("state is not an object")
        return state

    def line_voltage_lost(self) -> None:
        self.request("line_voltage_lost")

    def line_voltage_restored(self) -> None:
        self.request("line_voltage_restored")
