"""The gateway's RTP leg to the switch: line frames out as PCMU packets, packets in as frames.

The echo canceller sits here: what the line hears back of what we played (the hybrid's echo)
is removed from the line's audio before it goes to the switch.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from gateway_fxo.dsp.echo_canceller import EchoCanceller
from gateway_fxo.line import FRAME_SAMPLES
from pbx.media.g711 import ulaw_decode, ulaw_encode
from pbx.media.rtp import RtpError, RtpPacket

PCMU = 0


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, on_packet: Callable[[bytes, Any], None]) -> None:
        self.on_packet = on_packet
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.on_packet(data, addr)


class RtpLeg:
    """One call's RTP socket. ``to_line`` gets each decoded 20 ms frame for the line."""

    def __init__(self, host: str, to_line: Callable[[bytes], None], *, echo_cancel: bool = True):
        self.host = host
        self.to_line = to_line
        self.remote: tuple[str, int] | None = None
        self._protocol: _Protocol | None = None
        self._seq = secrets.randbelow(1 << 16)
        self._timestamp = secrets.randbelow(1 << 32)
        self._ssrc = secrets.randbelow(1 << 32)
        self._canceller = EchoCanceller() if echo_cancel else None
        # What went to the line, frame by frame: the line plays one frame per 20 ms tick, so
        # the oldest one not yet matched is what the hybrid is echoing now (the canceller's
        # reference must follow the played signal sample for sample, or it cannot converge).
        self._played: deque[np.ndarray[Any, Any]] = deque(maxlen=16)
        self._silence = np.zeros(FRAME_SAMPLES)
        self.packets_in = 0
        self.packets_out = 0

    async def open(self) -> int:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _Protocol(self._received), local_addr=(self.host, 0)
        )
        self._protocol = protocol
        return int(transport.get_extra_info("sockname")[1])

    def close(self) -> None:
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()

    def _received(self, data: bytes, addr: Any) -> None:
        try:
            packet = RtpPacket.parse(data)
        except RtpError:
            return
        if packet.payload_type != PCMU or len(packet.payload) != FRAME_SAMPLES:
            return  # telephone-event and odd sizes: the line gets audio only
        self.packets_in += 1
        samples = ulaw_decode(packet.payload)
        frame = np.asarray(samples, dtype=np.int16)
        self._played.append(frame.astype(np.float64))
        self.to_line(frame.tobytes())

    def from_line(self, frame: bytes) -> np.ndarray[Any, Any] | None:
        """A frame heard on the line: echo removed, sent to the switch; returns what was sent
        (the line's own sound without our echo), or None when nothing was."""
        if self.remote is None or self._protocol is None or self._protocol.transport is None:
            return None
        near = np.frombuffer(frame, dtype=np.int16).astype(np.float64)
        if self._canceller is not None:
            far = self._played.popleft() if self._played else self._silence
            near = self._canceller.process(far, near)
        clipped = np.clip(np.round(near), -32768, 32767).astype(np.int16)
        payload = ulaw_encode(int(v) for v in clipped)
        packet = RtpPacket(
            payload_type=PCMU,
            sequence_number=self._seq,
            timestamp=self._timestamp,
            ssrc=self._ssrc,
            payload=payload,
        )
        self._seq = (self._seq + 1) & 0xFFFF
        self._timestamp = (self._timestamp + FRAME_SAMPLES) & 0xFFFFFFFF
        self._protocol.transport.sendto(bytes(packet), self.remote)
        self.packets_out += 1
        return clipped
