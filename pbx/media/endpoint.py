"""The media relay's asyncio edge: UDP sockets for each call, wired to its :class:`RelaySession`.

Each call gets four sockets (RTP and RTCP for legs "a" and "b") from the configured port range.
A datagram is forwarded inside ``datagram_received``: read the clock, call the session's relay
function for that socket, ``sendto`` on the other leg's socket. No queue, no task, no object
per packet, so the relay adds a few microseconds and nothing waits behind anything else.

The B2BUA drives it::

    relay = MediaRelay("0.0.0.0", (10000, 10999), advertise_host="192.168.1.2")
    handle = await relay.open_session(call_id)
    host, port = handle.local_address("a")    # into the SDP answer to the caller
    handle.update("a", ("10.0.0.5", 4000), 0, "PCMU", 101)   # from the caller's offer
    ...
    await handle.close()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, cast

from pbx.media.ports import PortAllocator, PortsExhausted
from pbx.media.session import (
    LATCH_SILENCE,
    LEGS,
    Address,
    Leg,
    RelayFunction,
    RelaySession,
)

log = logging.getLogger("pbx.media")

SOCKET_BUFFER = 1 << 20
"""Bytes asked for each socket's send and receive buffers (the kernel caps it at
net.core.rmem_max / wmem_max): a stall of the event loop queues packets instead of losing them."""
DSCP_EF = 46 << 2
"""RFC 4594 §4.2: telephony is Expedited Forwarding, so office switches can prioritise it."""
CLOSE_TIMEOUT = 2.0
"""Seconds to wait for the loop to let go of a closed socket before releasing its port anyway."""


class _RelayProtocol(asyncio.DatagramProtocol):
    """One socket of one call. ``send`` is the other leg's transport's ``sendto``."""

    __slots__ = ("clock", "closed", "relay", "send", "transport")

    def __init__(self, relay: RelayFunction, clock: Callable[[], float]) -> None:
        self.relay = relay
        self.clock = clock
        self.send: Callable[[bytes | bytearray, Address], None] = _discard
        self.transport: asyncio.DatagramTransport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        # The hot path: one call into the session, one sendto.
        result = self.relay(data, addr, self.clock())
        if result is not None:
            self.send(result[0], result[1])

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a phone that hung up or moved: the next packet tries again.
        log.debug("event=media_socket_error error=%s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class _RelayProtocol6(_RelayProtocol):
    """IPv6 sources come as (host, port, flowinfo, scope_id); the session keys on (host, port)."""

    __slots__ = ()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        result = self.relay(data, (addr[0], addr[1]), self.clock())
        if result is not None:
            self.send(result[0], result[1])


def _discard(data: bytes | bytearray, destination: Address) -> None:
    """Where packets go before the session's sockets are all wired (none can be relayed yet)."""


class RelayHandle:
    """One call's media: its four sockets and its :class:`RelaySession`."""

    def __init__(
        self,
        relay: MediaRelay,
        call_id: str,
        session: RelaySession,
        ports: dict[Leg, int],
        protocols: list[_RelayProtocol],
    ) -> None:
        self.call_id = call_id
        self.session = session
        self._relay = relay
        self._ports = ports
        self._protocols = protocols
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def local_address(self, leg: Leg) -> Address:
        """(host, RTP port) to put in the SDP for ``leg``'s phone (RTCP is the port + 1)."""
        if leg not in self._ports:
            raise ValueError(f"a call has legs 'a' and 'b', not {leg!r}")
        return (self._relay.advertise_host, self._ports[leg])

    def update(
        self,
        leg: Leg,
        remote: Address | None,
        audio_pt: int,
        encoding: str,
        dtmf_pt: int | None,
        *,
        rtcp_remote: Address | None = None,
    ) -> None:
        """What the SDP says about ``leg``'s phone: see :meth:`RelaySession.update`."""
        self.session.update(leg, remote, audio_pt, encoding, dtmf_pt, rtcp_remote=rtcp_remote)
        log.info(
            "event=media_update call_id=%s leg=%s remote=%s pt=%d encoding=%s dtmf_pt=%s",
            self.call_id,
            leg,
            _address_text(remote),
            audio_pt,
            encoding,
            dtmf_pt,
        )

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per leg ("a", "b"): the counters and addresses of :class:`LegStats` as a dict."""
        return {leg: asdict(value) for leg, value in self.session.stats().items()}

    async def close(self) -> None:
        """Close the four sockets and give their ports back (once they are really closed)."""
        if self._closed:
            return
        self._closed = True
        for protocol in self._protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        waiting = [p.closed for p in self._protocols if p.transport is not None]
        if waiting:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*waiting), CLOSE_TIMEOUT)
        self._relay._forget(self)
        # A closed handle may stay referenced a while (the call layer keeps an ended call
        # through its transactions' 32 s window): let the sockets' protocols, transports and
        # futures go now rather than with the handle (issue 12, ~2 KB a call).
        self._protocols = []
        stats = self.session.stats()
        log.info(
            "event=media_close call_id=%s a_in=%d a_out=%d a_dropped=%d a_latched=%s "
            "b_in=%d b_out=%d b_dropped=%d b_latched=%s",
            self.call_id,
            stats["a"].packets_in,
            stats["a"].packets_out,
            stats["a"].dropped,
            _address_text(stats["a"].latched),
            stats["b"].packets_in,
            stats["b"].packets_out,
            stats["b"].dropped,
            _address_text(stats["b"].latched),
        )

    @property
    def ports(self) -> dict[Leg, int]:
        """The RTP port of each leg (RTCP is one higher)."""
        return dict(self._ports)


class MediaRelay:
    """Opens relayed media sessions on ``bind_host`` with RTP ports from ``port_range``
    (inclusive; even RTP ports, RTCP one above). ``advertise_host`` is the address phones
    should send to (the SDP c= line) when ``bind_host`` is a wildcard or behind a NAT."""

    def __init__(
        self,
        bind_host: str,
        port_range: tuple[int, int],
        advertise_host: str | None = None,
        *,
        latch_silence: float = LATCH_SILENCE,
        socket_buffer: int = SOCKET_BUFFER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bind_host = bind_host
        self.advertise_host = advertise_host or bind_host
        self._ports = PortAllocator(*port_range)
        self._family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
        self._latch_silence = latch_silence
        self._socket_buffer = socket_buffer
        self._clock = clock
        self._sessions: dict[str, RelayHandle] = {}
        self._closed = False

    @property
    def sessions_open(self) -> int:
        return len(self._sessions)

    @property
    def ports_in_use(self) -> int:
        """RTP/RTCP port pairs held by open sessions."""
        return self._ports.in_use

    async def open_session(self, call_id: str) -> RelayHandle:
        """Bind the four sockets of a new call. Raises :class:`PortsExhausted` when the range
        has no free pair left, ``ValueError`` when ``call_id`` already has a session."""
        if self._closed:
            raise RuntimeError("the media relay is closed")
        if call_id in self._sessions:
            raise ValueError(f"call {call_id!r} already has a media session")
        bound: list[tuple[int, socket.socket, socket.socket]] = []
        try:
            for _ in LEGS:
                bound.append(self._bind_pair())
        except BaseException:
            for port, rtp, rtcp in bound:
                rtp.close()
                rtcp.close()
                self._ports.release(port)
            raise
        (a_port, a_rtp, a_rtcp), (b_port, b_rtp, b_rtcp) = bound
        session = RelaySession(a_port=a_port, b_port=b_port, latch_silence=self._latch_silence)
        factory = _RelayProtocol6 if self._family == socket.AF_INET6 else _RelayProtocol
        plan: list[tuple[socket.socket, Leg, bool]] = [
            (a_rtp, "a", False),
            (a_rtcp, "a", True),
            (b_rtp, "b", False),
            (b_rtcp, "b", True),
        ]
        protocols = [
            factory(session.relay_function(leg, rtcp=rtcp), self._clock) for _, leg, rtcp in plan
        ]
        handle = RelayHandle(self, call_id, session, {"a": a_port, "b": b_port}, protocols)
        self._sessions[call_id] = handle
        loop = asyncio.get_running_loop()
        try:
            for (sock, _, _), protocol in zip(plan, protocols, strict=True):
                await loop.create_datagram_endpoint(_returning(protocol), sock=sock)
        except BaseException:
            for (sock, _, _), protocol in zip(plan, protocols, strict=True):
                if protocol.transport is None:
                    sock.close()
            await handle.close()
            raise
        # Wire each socket to the socket it forwards out of: RTP a <-> RTP b, RTCP a <-> RTCP b.
        a_rtp_p, a_rtcp_p, b_rtp_p, b_rtcp_p = protocols
        for inbound, outbound in ((a_rtp_p, b_rtp_p), (a_rtcp_p, b_rtcp_p)):
            assert inbound.transport is not None and outbound.transport is not None
            inbound.send = outbound.transport.sendto
            outbound.send = inbound.transport.sendto
        log.info(
            "event=media_open call_id=%s a_port=%d b_port=%d open=%d",
            call_id,
            a_port,
            b_port,
            len(self._sessions),
        )
        return handle

    async def close(self) -> None:
        """Close every session; the relay opens no new ones after this."""
        self._closed = True
        await asyncio.gather(*(h.close() for h in list(self._sessions.values())))

    def _bind_pair(self) -> tuple[int, socket.socket, socket.socket]:
        """An RTP/RTCP socket pair on the next free even port; ports the OS says are taken
        (by another program) are given back and the next pair is tried."""
        for _ in range(self._ports.capacity):
            port = self._ports.allocate()
            try:
                rtp = self._socket(port)
            except OSError:
                self._ports.release(port)
                continue
            try:
                rtcp = self._socket(port + 1)
            except OSError:
                rtp.close()
                self._ports.release(port)
                continue
            return port, rtp, rtcp
        raise PortsExhausted(f"no free RTP/RTCP pair in {self._ports.low}-{self._ports.high}")

    def _socket(self, port: int) -> socket.socket:
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self._socket_buffer)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self._socket_buffer)
            with contextlib.suppress(OSError):  # not every platform lets us mark packets
                if self._family == socket.AF_INET:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, DSCP_EF)
                else:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, DSCP_EF)
            sock.setblocking(False)
            sock.bind((self.bind_host, port))
        except BaseException:
            sock.close()
            raise
        return sock

    def _forget(self, handle: RelayHandle) -> None:
        if self._sessions.get(handle.call_id) is handle:
            del self._sessions[handle.call_id]
        for port in handle.ports.values():
            self._ports.release(port)


def _address_text(address: Address | None) -> str:
    return "-" if address is None else f"{address[0]}:{address[1]}"


def _returning(protocol: _RelayProtocol) -> Callable[[], _RelayProtocol]:
    return lambda: protocol


__all__ = ["MediaRelay", "PortsExhausted", "RelayHandle"]
