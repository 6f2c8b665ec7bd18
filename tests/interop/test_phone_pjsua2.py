"""pjsua2 (PJSIP 2.15, the SIP stack inside many softphones) in the phone matrix (issue 11).

The switch runs on its defaults. A pjsua2 phone (its own process, tests/support/pjsua2_agent.py)
registers as 201 and talks with a baresip peer at 202: it calls the peer, both hear the other's
tone through the relay, it holds (``setHold``: a=sendonly) and resumes (``reinvite`` with the
unhold flag: a=sendrecv), sends RFC 4733 DTMF (``dialDtmf``) and hangs up; then the other way
round, the peer calls pjsua2 and pjsua2 answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import pbx
from tests.support.phone_peer import (
    PEER_TONE_HZ,
    Office,
    PeerPhone,
    dominant_tone,
    office,
    start_peer,
    tone_wav,
)
from tests.support.pjsua2_phone import Pjsua2Phone, require_pjsua2
from tests.support.sipp import free_port

SWITCH_RTP = (33400, 33599)
PJSUA2_RTP = (44000, 44499)
PEER_RTP = (44500, 44999)
PJSUA2_TONE_HZ = 440


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[Office]:
    require_pjsua2()
    with office(tmp_path, rtp_ports=SWITCH_RTP) as switch:
        yield switch


@pytest.fixture
def pjsua2(tmp_path: Path, switch: Office) -> Iterator[Pjsua2Phone]:
    phone = Pjsua2Phone(
        tmp_path / "pjsua2", sip_port=free_port(), rtp_ports=PJSUA2_RTP,
        mic_wav=tone_wav(tmp_path / "pjsua2-mic.wav", PJSUA2_TONE_HZ, 60),
    )  # fmt: skip
    try:
        yield phone
    finally:
        status = phone.stop()
    # A clean quit: pjsua2 hung up, unregistered and shut down without crashing.
    assert status == 0, phone.stderr()[-2000:]
    assert phone.events[-1]["event"] == "quit", phone.events[-3:]


@pytest.fixture
def peer(tmp_path: Path, switch: Office) -> Iterator[PeerPhone]:
    phone = start_peer(switch, tmp_path, "202", rtp_ports=PEER_RTP)
    try:
        phone.wait_registered()
        yield phone
    finally:
        phone.stop()


def register(pjsua2: Pjsua2Phone, switch: Office, **opts: object) -> None:
    event = pjsua2.register("201", switch.passwords["201"], switch.switch, **opts)
    assert event["event"] == "registered" and event["code"] == 200, event
    switch.wait_registered("201")


def assert_heard_each_other(pjsua2: Pjsua2Phone, peer: PeerPhone) -> None:
    peak, loud = peer.heard()
    assert abs(peak - PJSUA2_TONE_HZ) < 10 and loud >= 2.0, ("peer heard", peak, loud)
    peak, loud = dominant_tone(pjsua2.recording())
    assert abs(peak - PEER_TONE_HZ) < 10 and loud >= 2.0, ("pjsua2 heard", peak, loud)


def hold_and_resume(pjsua2: Pjsua2Phone, peer: PeerPhone) -> None:
    """pjsua2 holds (the peer gets a=sendonly or inactive) and resumes (a=sendrecv again)."""
    held = len(pjsua2.events)
    pjsua2.command("hold")
    pjsua2.media("local_hold", 10, after=held)
    resumed = len(pjsua2.events)
    pjsua2.command("unhold")
    pjsua2.media("active", 10, after=resumed)
    pjsua2.wait_audio(50, 10)  # the peer's audio flows again after the resume
    directions = peer.remote_directions()
    hold_at = next(i for i, d in enumerate(directions) if d in ("sendonly", "inactive"))
    assert directions[0] == "sendrecv" and "sendrecv" in directions[hold_at + 1 :], directions


def test_pjsua2_registers_on_the_defaults_with_md5(pjsua2: Pjsua2Phone, switch: Office) -> None:
    register(pjsua2, switch)
    assert switch.auth_algorithm("201") == "MD5"
    assert "User-Agent: pjsua2-test-agent" in pjsua2.log()


def test_pjsua2_with_a_wrong_password_is_refused_once(pjsua2: Pjsua2Phone, switch: Office) -> None:
    event = pjsua2.register("201", "not-the-password", switch.switch)
    assert event["event"] == "unregistered" and event["code"] == 403, event
    # One challenge, one answer, one refusal: pjsua2 does not try the same password again.
    assert len(re.findall(r"TX \d+ bytes Request msg REGISTER/", pjsua2.log())) == 2
    assert switch.auth_algorithm("201", wait=False) is None


@pytest.mark.parametrize("offer", ["SHA-256", "SHA-256,MD5"])
def test_pjsua2_answers_the_sha256_challenge(
    pjsua2: Pjsua2Phone, switch: Office, offer: str
) -> None:
    changed = pbx(switch.db, "ext", "set", "201", "--digest", offer)
    assert changed.returncode == 0, changed.stderr
    register(pjsua2, switch)
    assert switch.auth_algorithm("201") == "SHA-256"
    assert re.search(r"^Authorization: Digest .*algorithm=SHA-256", pjsua2.log(), re.MULTILINE)
    # A call is challenged the same way (407): to a number nobody has, so no peer is needed.
    pjsua2.command("call", uri=f"sip:299@127.0.0.1:{switch.process.port}")
    closed = pjsua2.wait_event("call_closed", 10)
    assert closed["code"] == 404, closed
    assert re.search(r"^Proxy-Authorization: Digest .*algorithm=SHA-256", pjsua2.log(), re.M)


def test_pjsua2_calls_holds_resumes_sends_dtmf_and_hangs_up(
    pjsua2: Pjsua2Phone, peer: PeerPhone, switch: Office
) -> None:
    register(pjsua2, switch)
    pjsua2.command("call", uri=f"sip:202@127.0.0.1:{switch.process.port}")
    pjsua2.call_state("CONFIRMED", 15)
    peer.wait_event("CALL_ESTABLISHED", 15)
    media = pjsua2.media("active", 10)
    # pjsua2 offers speex, iLBC, GSM first; the switch keeps only what it relays (G.711, G.722)
    # and its relay, not the peer, is pjsua2's media address.
    assert media["codec"] == "PCMU", media
    assert SWITCH_RTP[0] <= int(media["remote"].rsplit(":", 1)[1]) <= SWITCH_RTP[1], media
    pjsua2.wait_audio(150, 15)  # three seconds of the peer's tone reached pjsua2

    hold_and_resume(pjsua2, peer)

    pjsua2.command("dtmf", digits="1#5*")
    assert peer.dtmf_digits(4, 10) == "1#5*"
    pjsua2.command("dtmf", digits="9", method="info")  # SIP INFO, relayed as it came
    assert peer.dtmf_digits(5, 10) == "1#5*9"
    peer.command("sndcode", "73")  # and the other way: the peer's payload type 101 becomes 121
    assert pjsua2.dtmf_digits(2, 10) == "73"

    pjsua2.command("hangup")
    pjsua2.wait_event("call_closed", 10)
    peer.wait_event("CALL_CLOSED", 10)
    switch.process.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
    assert_heard_each_other(pjsua2, peer)


def test_pjsua2_answers_a_call_from_baresip(
    pjsua2: Pjsua2Phone, peer: PeerPhone, switch: Office
) -> None:
    register(pjsua2, switch, auto_answer=True)
    peer.command("dial", f"sip:201@127.0.0.1:{switch.process.port}")
    pjsua2.wait_event("incoming", 15)
    pjsua2.call_state("CONFIRMED", 15)
    peer.wait_event("CALL_ESTABLISHED", 15)
    pjsua2.wait_audio(150, 15)
    hold_and_resume(pjsua2, peer)  # the callee's re-INVITEs cross to the caller's leg
    peer.command("hangup")
    pjsua2.wait_event("call_closed", 10)
    peer.wait_event("CALL_CLOSED", 10)
    switch.process.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
    assert_heard_each_other(pjsua2, peer)
