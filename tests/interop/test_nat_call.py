"""A callee behind a NAT: its Contact and SDP name a private address it does not send from.

The phone registers from 127.0.0.1 with Contact sip:203@10.99.0.5:5060 and answers with
SDP c=10.99.0.5 m=audio 4000, but its signalling and RTP come from other loopback ports,
as they would through a NAT. The switch must reach it at the received address (RFC 3581)
and latch the media onto where the RTP really comes from (symmetric RTP). The caller is a
real softphone (baresip) playing 440 Hz; the NAT phone plays 1000 Hz; both must hear.
"""

from __future__ import annotations

import math
import re
import select
import socket
import struct
import time
import wave
from pathlib import Path

import numpy as np

from pbx.media.g711 import ulaw_decode, ulaw_encode
from pbx.sip.message import Request, make_response
from pbx.store.database import open_database
from tests.interop.test_baresip_calls import tone
from tests.support.baresip import BaresipPhone
from tests.support.cli import pbx
from tests.support.sip_phone import SipPhone
from tests.support.sipp import free_port
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool

PRIVATE = "10.99.0.5"


class NatPhone(SipPhone):
    """A SipPhone whose Contact names a private address."""

    def register_request(self, *, expires: int = 300, authorization: str | None = None) -> bytes:
        data = super().register_request(expires=expires, authorization=authorization)
        return data.replace(
            f"Contact: <sip:{self.number}@{self.host}:{self.port}>".encode(),
            f"Contact: <sip:{self.number}@{PRIVATE}:5060>".encode(),
        )


def rtp(seq: int, payload: bytes) -> bytes:
    return struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x5EED) + payload


def test_a_phone_behind_nat_is_reached_and_its_media_latched(tmp_path: Path) -> None:
    baresip = require_tool("baresip", "baresip")
    sox = require_tool("sox", "sox")
    db = tmp_path / "switchboard.db"
    assert pbx(db, "ext", "add", "201", "--password", "caller-password-201").returncode == 0
    assert pbx(db, "ext", "add", "203", "--password", "natted-password-203").returncode == 0
    with SwitchProcess(tmp_path, "--rtp-ports", "33000-33099") as process:
        nat = NatPhone("203", "natted-password-203", ("127.0.0.1", process.port))
        media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        media.bind(("127.0.0.1", 0))
        media_local_port = media.getsockname()[1]
        folder = tmp_path / "caller"
        folder.mkdir()
        caller = BaresipPhone(
            baresip, folder, user="201", password="caller-password-201",
            switch=("127.0.0.1", process.port), sip_port=free_port(), ctrl_port=free_port(),
            rtp_ports=(41400, 41499), source_wav=tone(folder / "mic.wav", sox, 440, 6.0),
        )  # fmt: skip
        try:
            assert nat.register().status == 200
            [row] = [r for r in _status(db) if r[0] == "203"]
            assert row[1] == f"sip:203@{PRIVATE}:5060" and row[2] == nat.port  # received port
            process.wait_for(re.compile("event=registered aor=201 "), timeout=15)
            caller.command("dial", f"sip:203@127.0.0.1:{process.port}")
            invite = nat.receive(10)
            assert isinstance(invite, Request) and invite.method == "INVITE"
            relay_port = int(re.search(rb"m=audio (\d+)", invite.body).group(1))  # type: ignore[union-attr]
            answer = (
                f"v=0\r\no=- 1 1 IN IP4 {PRIVATE}\r\ns=-\r\nc=IN IP4 {PRIVATE}\r\nt=0 0\r\n"
                "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            ).encode()
            ok = make_response(
                invite, 200, to_tag="nat203",
                headers=[("Contact", f"<sip:203@{PRIVATE}:5060>"),
                         ("Content-Type", "application/sdp")],
                body=answer,
            )  # fmt: skip
            nat.sock.sendto(bytes(ok), ("127.0.0.1", process.port))
            caller.wait_event("CALL_ESTABLISHED", 10)
            # RTP from a port the SDP never named: 3 s of 1000 Hz, reading what comes back.
            received = bytearray()
            media.setblocking(False)
            start = time.monotonic()
            for seq in range(150):
                samples = [
                    int(12000 * math.sin(2 * math.pi * 1000 * (seq * 160 + i) / 8000))
                    for i in range(160)
                ]
                media.sendto(rtp(seq, ulaw_encode(samples)), ("127.0.0.1", relay_port))
                deadline = start + (seq + 1) * 0.02
                while True:  # paced at 20 ms, draining what the relay sends meanwhile
                    try:
                        data = media.recv(2048)
                        received += data[12:]
                    except BlockingIOError:
                        if time.monotonic() >= deadline:
                            break
                        select_wait(media, deadline - time.monotonic())
            caller.command("hangup")
            bye = nat.receive(10)
            while isinstance(bye, Request) and bye.method == "ACK":
                bye = nat.receive(10)  # the ACK for our 200 came through the NAT too
            assert isinstance(bye, Request) and bye.method == "BYE"
            nat.sock.sendto(bytes(make_response(bye, 200)), ("127.0.0.1", process.port))
            caller.wait_event("CALL_CLOSED", 10)
            process.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
        finally:
            caller.stop()
            nat.close()
            media.close()
    # The NAT phone heard the caller's 440 Hz through the latched address.
    audio = np.array(ulaw_decode(bytes(received)), dtype=float)
    assert len(audio) >= 8000 * 2
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert abs(np.fft.rfftfreq(len(audio), 1 / 8000)[int(spectrum.argmax())] - 440) < 10
    # The caller heard the NAT phone's 1000 Hz.
    [recording] = sorted(caller.recordings.glob("*-dec.wav"))
    with wave.open(str(recording)) as w:
        heard = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(float)
    spectrum = np.abs(np.fft.rfft(heard * np.hanning(len(heard))))
    assert abs(np.fft.rfftfreq(len(heard), 1 / 8000)[int(spectrum.argmax())] - 1000) < 10
    end = next(line for line in process.lines if "event=call_end" in line)
    assert media_port(end) == media_local_port  # latched onto where the RTP came from


def media_port(line: str) -> int:
    """The leg-b latched port in the call_end relay statistics."""
    match = re.search(r"'b': \{[^}]*'latched': \('127\.0\.0\.1', (\d+)\)", line)
    assert match, line
    return int(match.group(1))


def select_wait(sock: socket.socket, seconds: float) -> None:
    select.select([sock], [], [], max(0.0, seconds))


def _status(db: Path) -> list[tuple[str, str, int]]:
    return (
        open_database(db)
        .execute("SELECT aor, contact, received_port FROM registrations")
        .fetchall()
    )
