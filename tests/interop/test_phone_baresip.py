"""The phone matrix: baresip 1.0 (Debian's softphone) on the switch's defaults.

It registers, calls the baresip peer, both hear the other's tone through the relay, it holds and
resumes, sends DTMF (RFC 4733) and hangs up; nothing in the switch is set for it.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.phone_peer import (
    PEER_TONE_HZ,
    PeerPhone,
    dominant_tone,
    office,
    recorded_seconds,
    start_peer,
    wait_until,
)

CLIENT_TONE_HZ = 440


def test_baresip_registers_calls_is_heard_holds_resumes_sends_dtmf_and_hangs_up(
    tmp_path: Path,
) -> None:
    with office(tmp_path, rtp_ports=(34000, 34099)) as pbx:
        peer = start_peer(pbx, tmp_path, "202", rtp_ports=(45000, 45099))
        client = PeerPhone(pbx, tmp_path / "client", "201", rtp_ports=(45100, 45199),
                           hz=CLIENT_TONE_HZ)  # fmt: skip
        try:
            peer.wait_registered()
            client.wait_registered()
            assert pbx.auth_algorithm("201") == "MD5"  # what the default offers
            client.command("dial", f"sip:202@127.0.0.1:{pbx.process.port}")
            client.wait_event("CALL_ESTABLISHED", 15)
            peer.wait_event("CALL_ESTABLISHED", 15)
            peer.wait_heard(3.0)
            wait_until(lambda: recorded_seconds(client.recordings) >= 3.0, 20, "client audio")

            client.command("hold")
            peer.wait_held()
            client.command("resume")
            peer.wait_resumed()

            for digit in "1#5*":
                client.command("sndcode", digit)
            assert peer.dtmf_digits(4, 15) == "1#5*"

            client.command("hangup")
            peer.wait_event("CALL_CLOSED", 15)
            pbx.process.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
        finally:
            client.stop()
            peer.stop()
    peak, loud = peer.heard()
    assert abs(peak - CLIENT_TONE_HZ) < 10 and loud >= 2.0, (peak, loud)
    [recording] = sorted(client.recordings.glob("*-dec.wav"))
    peak, loud = dominant_tone(recording)
    assert abs(peak - PEER_TONE_HZ) < 10 and loud >= 2.0, (peak, loud)
