"""A tone as an RTP capture SIPp can play (``<exec play_pcap_audio=.../>``).

SIPp's own captures carry speech-like audio and DTMF; a matrix test needs a tone it can look
for in the other phone's recording, so it writes one: G.711 u-law RTP in a classic pcap file
(Ethernet, IPv4, UDP headers around each packet; SIPp sends only the RTP and keeps the timing).
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

from pbx.media.g711 import ulaw_encode
from pbx.media.rtp import RtpPacket

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # linktype Ethernet


def _frame(rtp: bytes, sport: int = 40000, dport: int = 40002) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(rtp), 0) + rtp
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
        bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]),
    )  # fmt: skip
    ethernet = b"\x00" * 12 + b"\x08\x00"
    return ethernet + ip + udp


def write_tone_pcap(path: Path, hz: float, seconds: float, *, amplitude: int = 12000) -> Path:
    """``seconds`` of a sine at ``hz`` as 20 ms PCMU packets (payload type 0), 50 a second."""
    out = bytearray(_PCAP_HEADER)
    for n in range(int(seconds * 50)):
        samples = [
            int(amplitude * math.sin(2 * math.pi * hz * (n * 160 + i) / 8000)) for i in range(160)
        ]
        packet = RtpPacket(
            payload_type=0, sequence_number=n & 0xFFFF, timestamp=n * 160, ssrc=0x5151AB01,
            marker=n == 0, payload=ulaw_encode(samples),
        )  # fmt: skip
        frame = _frame(bytes(packet))
        sent = n * 0.02
        out += struct.pack("<IIII", int(sent), int((sent % 1) * 1e6), len(frame), len(frame))
        out += frame
    path.write_bytes(bytes(out))
    return path
