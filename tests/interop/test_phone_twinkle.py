"""Twinkle (twinkle-console 1.10) in the phone matrix: a real phone on a switch on its defaults.

Twinkle registers (answering the default MD5 challenge), calls a baresip peer through the
switch, and the two hear each other (twinkle plays 440 Hz, the peer 1000 Hz; twinkle's speaker
is recorded through an ALSA file PCM), twinkle holds and retrieves the call, sends DTMF (RFC
4733 events: it offers telephone-event and sends events when the answer has it) and hangs up.
In the other direction the peer calls twinkle, which answers.

Two profile settings, for the test tone only: twinkle runs Speex's preprocessor on its microphone
whatever the codec. Its noise reduction (speex_dsp_nrd) takes a steady tone for noise and fades
it out within a second, and its voice activity detection (speex_dsp_vad) then calls it silence
and stops sending RTP (measured: ~85 of ~250 packets in 5 s reached the switch). The test turns
both off; speech passes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.phone_peer import (
    PEER_TONE_HZ,
    Office,
    PeerPhone,
    dominant_tone,
    office,
    start_peer,
    tone_wav,
    wait_until,
)
from tests.support.sipp import free_port
from tests.support.tools import require_tool
from tests.support.twinkle import (
    CALL_ENDED,
    DTMF_SUPPORTED,
    ESTABLISHED,
    FAR_END_ANSWERED,
    REINVITE_OK,
    TwinklePhone,
    read_mono_wav,
)

SWITCH_RTP = (33200, 33399)
TWINKLE_RTP = (43000, 43499)
PEER_RTP = (43500, 43999)
TWINKLE_TONE_HZ = 440
TONE_SAFE = {"speex_dsp_nrd": "no", "speex_dsp_vad": "no"}
CALL_END = re.compile(r"event=call_end .*answered=True")


@dataclass
class Matrix:
    office: Office
    peer: PeerPhone
    twinkle: TwinklePhone


@pytest.fixture
def matrix(tmp_path: Path) -> Iterator[Matrix]:
    twinkle_console = require_tool("twinkle-console", "twinkle-console")
    with office(tmp_path, rtp_ports=SWITCH_RTP) as switch:
        peer = start_peer(switch, tmp_path, "202", rtp_ports=PEER_RTP)
        try:
            mic = read_mono_wav(tone_wav(tmp_path / "twinkle-mic.wav", TWINKLE_TONE_HZ, 5))
            twinkle = TwinklePhone(
                twinkle_console, tmp_path / "twinkle", user="201",
                password=switch.passwords["201"], switch=switch.switch, sip_port=free_port(),
                rtp_ports=TWINKLE_RTP, microphone=mic, profile=TONE_SAFE,
            )  # fmt: skip
            try:
                yield Matrix(switch, peer, twinkle)
            finally:
                twinkle.stop()
        finally:
            peer.stop()


_STATUS_RE = re.compile(r"\[(\d+):(\d\d):(\d\d)\] audio=\d+/(\d+) \(bit/s\)")


def peer_receiving_seconds(log: str) -> float:
    """Call time over which baresip's own statistics (its "[0:00:12] audio=TX/RX (bit/s)"
    status) last showed RTP arriving without a break, in ``log``.

    After a hold the peer's recording cannot show what it hears: baresip 1.0 resets its decoder
    on an SDP that is not sendrecv (src/audio.c audio_decoder_set) and flushes the decode
    filters, and aufilt_setup does not add them back while the encode side still has its own,
    so sndfile's *-dec.wav stops growing for the rest of the call."""
    run: list[int] = []
    for hours, minutes, seconds, rx in _STATUS_RE.findall(log):
        if int(rx) > 0:
            run.append(int(hours) * 3600 + int(minutes) * 60 + int(seconds))
        else:
            run = []
    return float(run[-1] - run[0]) if run else 0.0


def twinkle_recorded_seconds(twinkle: TwinklePhone, opening: int) -> float:
    openings = twinkle.recordings()
    return twinkle.recorded_seconds(openings[opening]) if len(openings) > opening else 0.0


def assert_heard(found: tuple[float, float], hz: int, who: str) -> None:
    peak, loud = found
    assert abs(peak - hz) <= 10, f"{who} heard {peak:.0f} Hz, expected {hz}"
    assert loud >= 2.0, f"{who} heard the tone for {loud:.2f}s only"


def test_twinkle_registers_calls_holds_sends_dtmf_and_hangs_up(matrix: Matrix) -> None:
    switch, peer, twinkle = matrix.office, matrix.peer, matrix.twinkle
    twinkle.wait_registered()
    switch.wait_registered("201")
    assert switch.auth_algorithm("201") == "MD5"
    peer.wait_registered()

    twinkle.command("call 202")
    twinkle.wait_for(FAR_END_ANSWERED, timeout=15)
    twinkle.wait_for(DTMF_SUPPORTED, timeout=5)  # the answer kept telephone-event
    peer.wait_event("CALL_ESTABLISHED", timeout=10)
    wait_until(lambda: twinkle_recorded_seconds(twinkle, 0) >= 3, 15, "twinkle hears the peer")
    peer.wait_heard(3.0)

    mark = twinkle.mark()
    twinkle.command("hold")
    twinkle.wait_for(REINVITE_OK, timeout=10, after=mark)
    peer.wait_held()

    mark = twinkle.mark()
    twinkle.command("retrieve")
    twinkle.wait_for(REINVITE_OK, timeout=10, after=mark)
    peer.wait_resumed()
    resumed_at = len(peer.log())
    wait_until(lambda: twinkle_recorded_seconds(twinkle, 1) >= 2.5, 15, "twinkle hears again")
    wait_until(lambda: peer_receiving_seconds(peer.log()[resumed_at:]) >= 2, 15, "peer gets RTP")

    twinkle.command("dtmf 1#5*")
    assert peer.dtmf_digits(4, timeout=10) == "1#5*"

    mark = twinkle.mark()
    twinkle.command("bye")
    twinkle.wait_for(CALL_ENDED, timeout=10, after=mark)
    peer.wait_event("CALL_CLOSED", timeout=10)
    switch.process.wait_for(CALL_END, timeout=10)

    peer.stop()  # baresip completes its recording's WAV header when it lets go of the call
    assert_heard(peer.heard(), TWINKLE_TONE_HZ, "the peer")
    before_hold, after_retrieve = twinkle.recordings()[:2]
    assert_heard(dominant_tone(twinkle.recording_wav(before_hold)), PEER_TONE_HZ, "twinkle")
    assert_heard(dominant_tone(twinkle.recording_wav(after_retrieve)), PEER_TONE_HZ, "twinkle")


def test_twinkle_answers_a_call_from_the_peer(matrix: Matrix) -> None:
    switch, peer, twinkle = matrix.office, matrix.peer, matrix.twinkle
    twinkle.wait_registered()
    switch.wait_registered("201")
    peer.wait_registered()

    peer.command("dial", f"sip:201@{switch.switch[0]}:{switch.switch[1]}")
    twinkle.wait_for(re.compile(r"Line \d+: incoming call"), timeout=15)
    twinkle.command("answer")
    twinkle.wait_for(ESTABLISHED, timeout=10)
    peer.wait_event("CALL_ESTABLISHED", timeout=10)
    wait_until(lambda: twinkle_recorded_seconds(twinkle, 0) >= 2.5, 15, "twinkle hears the peer")
    peer.wait_heard(2.5)

    peer.command("hangup")
    twinkle.wait_for(re.compile(r"Line \d+: far end ended call"), timeout=10)
    switch.process.wait_for(CALL_END, timeout=10)
    peer.stop()
    assert_heard(peer.heard(), TWINKLE_TONE_HZ, "the peer")
    assert_heard(dominant_tone(twinkle.recording_wav(twinkle.recordings()[0])), PEER_TONE_HZ,
                 "twinkle")  # fmt: skip
