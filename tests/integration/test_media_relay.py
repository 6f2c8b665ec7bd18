"""A real MediaRelay on 127.0.0.1 between two UDP sockets playing phones: A talks PCMU, B
negotiated PCMA. Tones go through both ways and keep their frequency, digits keep their
meaning under the far leg's payload type, RTCP passes unchanged, a phone that sends from
another port than its SDP says is latched, and closing gives every port back. No sleeps: every
wait is on a queue with a timeout."""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
from collections.abc import Callable
from typing import Any

import numpy as np

from pbx.media import g711
from pbx.media.endpoint import MediaRelay
from pbx.media.rfc4733 import TelephoneEvent
from pbx.media.rtp import RtpPacket

WAIT = 5.0
PACKETS = 50  # one second of audio: 8000 samples, FFT bins of 1 Hz
SAMPLES = 160


def free_range(pairs: int) -> tuple[int, int]:
    """A run of ``2 * pairs`` ports that are free right now, starting at an even port."""
    for base in range(42000, 50000, 200):
        with contextlib.ExitStack() as stack:
            try:
                for port in range(base, base + 2 * pairs):
                    sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                    sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return base, base + 2 * pairs - 1
    raise RuntimeError("no free port range on this machine")


class Phone(asyncio.DatagramProtocol):
    """One UDP socket of a phone; what it receives waits in a queue."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.put_nowait((data, (addr[0], addr[1])))

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def send(self, data: bytes, destination: tuple[str, int]) -> None:
        assert self.transport is not None
        self.transport.sendto(data, destination)

    async def next(self) -> tuple[bytes, tuple[str, int]]:
        return await asyncio.wait_for(self.received.get(), WAIT)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def phone() -> Phone:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
    return protocol


def tone(frequency: float, amplitude: float = 8000.0) -> list[int]:
    return [
        round(amplitude * math.sin(2 * math.pi * frequency * n / 8000))
        for n in range(PACKETS * SAMPLES)
    ]


def rtp_stream(payloads: list[bytes], pt: int, ssrc: int) -> list[bytes]:
    return [
        bytes(
            RtpPacket(
                payload_type=pt,
                sequence_number=1000 + i,
                timestamp=(1 << 31) + SAMPLES * i,
                ssrc=ssrc,
                marker=i == 0,
                payload=payload,
            )
        )
        for i, payload in enumerate(payloads)
    ]


def peak_frequency(samples: list[int]) -> float:
    spectrum = np.abs(np.fft.rfft(np.asarray(samples, dtype=float) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


async def receive_audio(
    listener: Phone, count: int, decode: Callable[[bytes], Any]
) -> tuple[list[RtpPacket], list[int]]:
    packets = [RtpPacket.parse((await listener.next())[0]) for _ in range(count)]
    packets.sort(key=lambda p: p.sequence_number)  # loopback keeps order; be safe anyway
    samples = [int(s) for p in packets for s in decode(p.payload)]
    return packets, samples


def test_pcmu_phone_talks_to_pcma_phone_both_ways() -> None:
    low, high = free_range(4)

    async def scenario() -> None:
        relay = MediaRelay("127.0.0.1", (low, high))
        a, b, a_rtcp, b_rtcp = [await phone() for _ in range(4)]
        try:
            handle = await relay.open_session("integration-call-1")
            host, a_port = handle.local_address("a")
            _, b_port = handle.local_address("b")
            assert host == "127.0.0.1" and a_port % 2 == 0 and low <= a_port < high
            handle.update("a", a.address, 0, "PCMU", 101, rtcp_remote=a_rtcp.address)
            handle.update("b", b.address, 8, "PCMA", 96, rtcp_remote=b_rtcp.address)

            # A -> B: a 1 kHz tone in u-law arrives in A-law with B's payload type.
            ulaw = g711.ulaw_encode(tone(1000.0))
            sent = rtp_stream([ulaw[i : i + SAMPLES] for i in range(0, len(ulaw), SAMPLES)], 0, 7)
            for data in sent:
                a.send(data, (host, a_port))
            packets, samples = await receive_audio(b, PACKETS, g711.alaw_decode)
            assert {p.payload_type for p in packets} == {8}
            assert [p.sequence_number for p in packets] == list(range(1000, 1000 + PACKETS))
            assert {p.ssrc for p in packets} == {7} and packets[0].marker
            assert abs(peak_frequency(samples) - 1000.0) <= 1.0
            level = math.sqrt(sum(s * s for s in samples) / len(samples))
            assert abs(level - 8000 / math.sqrt(2)) < 100  # the level survives transcoding

            # B -> A: a 440 Hz tone in A-law arrives in u-law, PT 0.
            alaw = g711.alaw_encode(tone(440.0))
            for data in rtp_stream(
                [alaw[i : i + SAMPLES] for i in range(0, len(alaw), SAMPLES)], 8, 9
            ):
                b.send(data, (host, b_port))
            packets, samples = await receive_audio(a, PACKETS, g711.ulaw_decode)
            assert {p.payload_type for p in packets} == {0}
            assert abs(peak_frequency(samples) - 440.0) <= 1.0

            # A digit: PT 101 on A's side, 96 on B's, the event itself untouched.
            digit = bytes(TelephoneEvent(event=5, end=True, volume=10, duration=800))
            a.send(rtp_stream([digit], 101, 7)[0], (host, a_port))
            event = RtpPacket.parse((await b.next())[0])
            assert event.payload_type == 96
            assert TelephoneEvent.parse(event.payload).digit == "5"

            # RTCP from A's RTCP socket reaches B's a=rtcp address unchanged.
            report = bytes.fromhex("80c9000100000007")
            a_rtcp.send(report, (host, a_port + 1))
            data, source = await b_rtcp.next()
            assert data == report and source == (host, b_port + 1)

            stats = handle.stats()
            assert stats["a"]["packets_in"] == PACKETS + 1
            assert stats["b"]["packets_out"] == PACKETS + 1
            assert stats["a"]["transcoded"] == PACKETS
            assert stats["b"]["packets_in"] == stats["a"]["packets_out"] == PACKETS
            assert stats["b"]["transcoded"] == PACKETS
            assert stats["a"]["bytes_in"] == sum(map(len, sent)) + 16
            assert stats["a"]["dropped"] == stats["b"]["dropped"] == 0
            assert stats["a"]["latched"] == a.address and stats["b"]["latched"] == b.address
            assert stats["a"]["rtcp_in"] == 1 and stats["b"]["rtcp_out"] == 1
            ports = handle.ports
            await handle.close()
            assert relay.sessions_open == 0 and relay.ports_in_use == 0
        finally:
            for each in (a, b, a_rtcp, b_rtcp):
                each.close()
            await relay.close()
        # Every port of the call can be bound again.
        for port in ports.values():
            for each_port in (port, port + 1):
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                    sock.bind(("127.0.0.1", each_port))

    asyncio.run(scenario())


def test_phone_sending_from_elsewhere_than_its_sdp_is_latched() -> None:
    low, high = free_range(2)

    async def scenario() -> None:
        relay = MediaRelay("127.0.0.1", (low, high))
        a, b = await phone(), await phone()
        try:
            handle = await relay.open_session("integration-call-2")
            host, a_port = handle.local_address("a")
            _, b_port = handle.local_address("b")
            handle.update("a", a.address, 0, "PCMU", None)
            # B's SDP names a port nobody listens on (what a NAT does to a private address).
            handle.update("b", ("127.0.0.1", 9), 0, "PCMU", None)
            packet = rtp_stream([bytes(SAMPLES)], 0, 11)[0]
            b.send(packet, (host, b_port))  # B's first packet latches B's real address
            assert (await a.next())[0] == packet
            a.send(packet, (host, a_port))
            data, source = await b.next()
            assert data == packet and source == (host, b_port)  # symmetric: from B's port
            assert handle.stats()["b"]["latched"] == b.address
            assert handle.stats()["b"]["remote"] == ("127.0.0.1", 9)
        finally:
            a.close()
            b.close()
            await relay.close()

    asyncio.run(scenario())
