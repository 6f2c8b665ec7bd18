"""The relay's asyncio edge on loopback, in process (asyncio.run, no sleeps): ports taken by
other programs are skipped, a full range says so and keeps nothing, closing gives ports back."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
from collections.abc import Iterator

import pytest

from pbx.media.endpoint import MediaRelay, PortsExhausted, _RelayProtocol
from pbx.media.rtp import RtpPacket


def free_range(pairs: int) -> tuple[int, int]:
    """A run of ``2 * pairs`` ports that are free right now, starting at an even port."""
    for base in range(21000, 29000, 200):
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + 2 * pairs):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base, base + 2 * pairs - 1
    raise RuntimeError("no free port range on this machine")


@contextlib.contextmanager
def udp(port: int = 0) -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        yield sock


def test_busy_ports_are_skipped() -> None:
    low, high = free_range(4)

    async def scenario() -> tuple[dict[str, int], str]:
        relay = MediaRelay("127.0.0.1", (low, high), advertise_host="192.0.2.10")
        try:
            handle = await relay.open_session("call-1")
            return dict(handle.ports), handle.local_address("b")[0]
        finally:
            await relay.close()

    with udp(low + 1):  # another program holds the first pair's RTCP port
        ports, host = asyncio.run(scenario())
    assert ports == {"a": low + 2, "b": low + 4}
    assert host == "192.0.2.10"


def test_a_full_range_raises_and_keeps_nothing() -> None:
    low, high = free_range(3)

    async def scenario() -> None:
        relay = MediaRelay("127.0.0.1", (low, high))
        try:
            await relay.open_session("call-1")  # two of the three pairs
            with pytest.raises(PortsExhausted, match=f"{low}-{high}"):
                await relay.open_session("call-2")
            assert relay.ports_in_use == 2 and relay.sessions_open == 1
            with pytest.raises(ValueError, match="already has a media session"):
                await relay.open_session("call-1")
        finally:
            await relay.close()
        assert relay.ports_in_use == 0 and relay.sessions_open == 0
        with pytest.raises(RuntimeError, match="closed"):
            await relay.open_session("call-3")

    asyncio.run(scenario())


def test_close_releases_the_ports_and_is_idempotent() -> None:
    low, high = free_range(2)

    async def scenario() -> dict[str, int]:
        relay = MediaRelay("127.0.0.1", (low, high))
        handle = await relay.open_session("call-1")
        ports = dict(handle.ports)
        await handle.close()
        await handle.close()
        assert handle.closed and relay.sessions_open == 0
        # The closed handle (still referenced here) holds none of its sockets' protocols.
        gc.collect()
        assert not [o for o in gc.get_objects() if isinstance(o, _RelayProtocol)]
        again = await relay.open_session("call-2")  # the same ports can be bound again
        assert sorted(again.ports.values()) == sorted(ports.values())
        await relay.close()
        return ports

    ports = asyncio.run(scenario())
    for port in ports.values():
        for each in (port, port + 1):
            with udp(each):
                pass


def test_ipv6_sources_are_keyed_by_host_and_port() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback")
    low, high = free_range(2)

    async def scenario() -> tuple[bytes, object]:
        loop = asyncio.get_running_loop()
        relay = MediaRelay("::1", (low, high))
        with (
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as b,
        ):
            a.bind(("::1", 0))
            b.bind(("::1", 0))
            b.setblocking(False)
            try:
                handle = await relay.open_session("call-6")
                handle.update("a", a.getsockname()[:2], 0, "PCMU", None)
                handle.update("b", b.getsockname()[:2], 0, "PCMU", None)
                data = bytes(RtpPacket(payload_type=0, sequence_number=1, timestamp=0, ssrc=1))
                a.sendto(data, handle.local_address("a"))
                received = await asyncio.wait_for(loop.sock_recv(b, 2048), 5)
                return received, handle.stats()["a"]["latched"]
            finally:
                await relay.close()

    received, latched = asyncio.run(scenario())
    assert RtpPacket.parse(received).ssrc == 1
    assert isinstance(latched, tuple) and len(latched) == 2
