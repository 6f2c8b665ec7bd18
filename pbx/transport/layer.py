"""The transport layer: the only owner of SIP sockets (UDP and TCP; TLS later).

It reads bytes, stamps them with the clock, parses them, and hands each
message with its flow to one handler; it sends what the handler asks for.
Everything SIP-specific that can be decided without sockets lives in
``pbx.sip`` and ``response_routing``; this module is the thin asyncio edge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from pbx.sip.errors import SipParseError
from pbx.sip.framing import PONG, KeepAlivePing, StreamFramer
from pbx.sip.message import MAX_MESSAGE_SIZE, Message, parse_message
from pbx.transport.flow import Address, Destination, Flow

log = logging.getLogger("pbx.transport")

MessageHandler = Callable[[Message, Flow], None]
"""Called with every well-formed message and the flow it came on."""

ErrorHandler = Callable[[SipParseError, Flow], None]
"""Called when bytes from a flow did not parse (the handler may answer 400)."""


@dataclass(slots=True, kw_only=True)
class TransportLimits:
    """Bounds that keep a flood or a slow peer from eating the appliance's memory."""

    max_message_size: int = MAX_MESSAGE_SIZE
    max_connections: int = 1024
    idle_timeout: float = 600.0
    """Seconds a TCP connection may stay silent before we close it (RFC 5626 pings reset it)."""
    write_buffer_limit: int = 256 * 1024
    connect_timeout: float = 5.0
    """Seconds to wait for an outbound TCP connection (a transport error after that, §18.4)."""


@dataclass(slots=True)
class TransportStats:
    received: int = 0
    sent: int = 0
    malformed: int = 0
    dropped: int = 0
    connections: int = 0
    internal_errors: int = 0
    by_transport: dict[str, int] = field(default_factory=dict)


class _UdpProtocol(asyncio.DatagramProtocol):
    __slots__ = ("_layer", "_local", "_transport")

    def __init__(self, layer: TransportLayer) -> None:
        self._layer = layer
        self._local: Address = ("", 0)
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        sockname = transport.get_extra_info("sockname")
        self._local = (sockname[0], sockname[1])

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        accept = self._layer.accept_source
        if accept is not None and not accept(addr[0]):
            self._layer.stats.dropped += 1
            return  # a banned source: dropped before parsing, and silently
        remote = (addr[0], addr[1])
        self._layer._datagram(data, Flow(transport="UDP", local=self._local, remote=remote))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like: nothing to do for a stateless edge.
        log.debug("event=udp_error error=%s", exc)


class _StreamProtocol(asyncio.Protocol):
    """One TCP connection: frames messages and answers keep-alive pings."""

    def __init__(self, layer: TransportLayer, transport_name: str) -> None:
        self._layer = layer
        self._name = transport_name
        self._framer = StreamFramer(max_message_size=layer.limits.max_message_size)
        self._transport: asyncio.Transport | None = None
        self._flow: Flow | None = None
        self._idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self._flow = Flow(transport=self._name, local=(sock[0], sock[1]), remote=(peer[0], peer[1]))
        accept = self._layer.accept_source
        if accept is not None and not accept(peer[0]):
            self._layer.stats.dropped += 1
            self._transport.abort()
            return
        if not self._layer._register_connection(self._flow, self):
            self._transport.abort()
            return
        self._transport.set_write_buffer_limits(high=self._layer.limits.write_buffer_limit)
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
        loop = asyncio.get_running_loop()
        self._idle = loop.call_later(self._layer.limits.idle_timeout, self._on_idle)

    def _on_idle(self) -> None:
        log.info("event=tcp_idle_close peer=%s:%s", *self.remote)
        if self._transport is not None:
            self._transport.close()

    @property
    def remote(self) -> Address:
        return self._flow.remote if self._flow else ("", 0)

    def data_received(self, data: bytes) -> None:
        assert self._flow is not None and self._transport is not None
        accept = self._layer.accept_source
        if accept is not None and not accept(self._flow.remote[0]):
            self._layer.stats.dropped += 1
            self._transport.abort()  # banned while connected
            return
        self._arm_idle()
        try:
            items = self._framer.feed(data)
        except SipParseError as exc:
            # The next message boundary is unknown: the connection is unusable.
            self._layer._stream_error(exc, self._flow)
            self._transport.close()
            return
        for item in items:
            if isinstance(item, KeepAlivePing):
                self._transport.write(PONG)
            else:
                self._layer._stream_message(item, self._flow)

    def send(self, data: bytes) -> bool:
        if self._transport is None or self._transport.is_closing():
            return False
        if self._transport.get_write_buffer_size() > self._layer.limits.write_buffer_limit:
            log.warning("event=tcp_write_overflow peer=%s:%s", *self.remote)
            self._transport.abort()
            return False
        self._transport.write(data)
        return True

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle is not None:
            self._idle.cancel()
        if self._flow is not None:
            self._layer._unregister_connection(self._flow, self)


class TransportLayer:
    """Listens on UDP and TCP, delivers parsed messages, and sends messages.

    ``on_message`` and ``on_error`` are set by the composition root; they are
    plain callbacks so the layer above stays free of asyncio.
    """

    def __init__(
        self,
        *,
        on_message: MessageHandler,
        on_error: ErrorHandler,
        limits: TransportLimits | None = None,
        accept_source: Callable[[str], bool] | None = None,
    ) -> None:
        self.on_message = on_message
        self.accept_source = accept_source
        """Asked with the peer's address before anything from it is read (bans)."""
        self.on_error = on_error
        self.limits = limits or TransportLimits()
        self.stats = TransportStats()
        self._udp: dict[str, asyncio.DatagramTransport] = {}
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: dict[tuple[str, Address], _StreamProtocol] = {}
        self._local: dict[str, Address] = {}
        self._pending: set[asyncio.Task[None]] = set()

    # -- listening ------------------------------------------------------------
    async def listen_udp(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, port), family=family
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # A burst of requests (a registration storm) should queue, not drop.
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):  # kernel limits vary
                    sock.setsockopt(socket.SOL_SOCKET, option, 4 * 1024 * 1024)
        name = transport.get_extra_info("sockname")
        self._udp["UDP"] = transport
        self._local["UDP"] = (name[0], name[1])
        return self._local["UDP"]

    async def listen_tcp(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: _StreamProtocol(self, "TCP"), host=host, port=port, reuse_address=True
        )
        self._servers.append(server)
        name = server.sockets[0].getsockname()
        self._local["TCP"] = (name[0], name[1])
        return self._local["TCP"]

    async def _connect_and_send(self, destination: Destination, data: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _StreamProtocol(self, "TCP"), destination.host, destination.port
                ),
                timeout=self.limits.connect_timeout,
            )
        except (TimeoutError, OSError) as exc:
            self.stats.dropped += 1
            log.info(
                "event=connect_failed dest=%s:%s error=%r", destination.host, destination.port, exc
            )
            return
        if protocol.send(data):
            self.stats.sent += 1

    def local_address(self, transport: str) -> Address | None:
        return self._local.get(transport)

    async def close(self) -> None:
        for udp in self._udp.values():
            udp.close()
        for server in self._servers:
            server.close()
        for task in list(self._pending):
            task.cancel()
        for conn in list(self._connections.values()):
            conn.close()
        for server in self._servers:
            await server.wait_closed()
        self._udp.clear()
        self._servers.clear()

    # -- receiving ------------------------------------------------------------
    def _datagram(self, data: bytes, flow: Flow) -> None:
        self.stats.received += 1
        if len(data) <= 4 and not data.strip(b"\r\n\x00 "):
            return  # a NAT keep-alive: CRLF, or the 4-byte zero ping some phones send
        self._deliver(data, flow, stream=False)

    def _stream_message(self, data: bytes, flow: Flow) -> None:
        self.stats.received += 1
        self._deliver(data, flow, stream=True)

    def _deliver(self, data: bytes, flow: Flow, *, stream: bool) -> None:
        try:
            message = parse_message(data, stream=stream)
        except SipParseError as exc:
            self.stats.malformed += 1
            self._guarded(self.on_error, exc, flow)
            return
        self._guarded(self.on_message, message, flow)

    def _guarded(self, handler: Callable[[Any, Flow], None], item: Any, flow: Flow) -> None:
        """Run a handler so that a bug in one message's handling cannot stop the edge.

        Input never raises past the layers (they answer 400 or drop); anything
        that does is our bug, logged loudly with its traceback and counted.
        """
        try:
            handler(item, flow)
        except Exception:
            self.stats.internal_errors += 1
            log.exception("event=internal_error peer=%s:%s", *flow.remote)

    def _stream_error(self, exc: SipParseError, flow: Flow) -> None:
        self.stats.malformed += 1
        log.info("event=stream_unframeable peer=%s:%s reason=%r", *flow.remote, exc.reason)

    def _register_connection(self, flow: Flow, conn: _StreamProtocol) -> bool:
        if len(self._connections) >= self.limits.max_connections:
            log.warning("event=tcp_refused reason=too_many_connections peer=%s:%s", *flow.remote)
            return False
        self._connections[(flow.transport, flow.remote)] = conn
        self.stats.connections = len(self._connections)
        return True

    def _unregister_connection(self, flow: Flow, conn: _StreamProtocol) -> None:
        key = (flow.transport, flow.remote)
        if self._connections.get(key) is conn:
            del self._connections[key]
        self.stats.connections = len(self._connections)

    # -- sending --------------------------------------------------------------
    def send(
        self, message: Message, destination: Destination, *, data: bytes | None = None
    ) -> bool:
        """Send ``message``; False when it could not be sent (a transport error, §18.4).

        ``data``, when given, is the message's bytes already made (a transaction's
        ``SendMessage.data``: what it kept to resend), sent as they are.
        Over TCP a response reuses the connection to the destination when one
        is open (§18.2.2). Opening new outbound connections comes with the
        client transactions of a later layer.
        """
        if data is None:
            data = bytes(message)
        transport = destination.transport
        if transport == "UDP":
            udp = self._udp.get("UDP")
            if udp is None:
                return False
            if len(data) > self.limits.max_message_size:
                log.warning("event=send_too_large size=%d", len(data))
                return False
            try:
                udp.sendto(data, destination.address)
            except OSError as exc:  # pragma: no cover - e.g. unreachable network
                log.info("event=send_failed dest=%s error=%s", destination, exc)
                return False
            self.stats.sent += 1
            return True
        conn = self._connections.get((transport, destination.address))
        if conn is None:
            if transport != "TCP":
                self.stats.dropped += 1
                return False
            # §18.2.2: the connection the request came on is gone, so open a new one
            # to the address the Via names; the message goes out once it is up.
            task = asyncio.get_running_loop().create_task(self._connect_and_send(destination, data))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return True
        ok = conn.send(data)
        if ok:
            self.stats.sent += 1
        return ok
