"""The phone matrix, linphone: Debian 12's linphonec 5.1 as extension 201 on a switch left on
its defaults, with a baresip peer (202) on the other end of every call.

linphone registers (the switch logs it; MD5, the default offer), calls the peer, each hears the
other's tone through the relay (linphone 440 Hz, the peer 1000 Hz), linphone holds (the peer is
offered sendonly) and resumes (sendrecv, and linphone hears the peer again), sends DTMF the
RFC 4733 way (its default) that the peer decodes, and hangs up (the peer sees the BYE, the switch
logs the call's end). It also answers a call from the peer, and, with its extension set to
SHA-256 (alone or before MD5), answers the SHA-256 challenges. linphone needs no setting for the
switch beyond its account (proxy, identity, user name and password).

The peer's tone is checked before the hold: baresip's sndfile stops writing what it decodes at
the first re-INVITE, so after the resume only linphone's side can show the audio came back.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import pbx
from tests.support.linphone import (
    CLIENT_TONE_HZ,
    LinphonePhone,
    start_linphone,
)
from tests.support.phone_peer import (
    PEER_TONE_HZ,
    Office,
    PeerPhone,
    dominant_tone,
    office,
    wait_until,
)
from tests.support.phone_peer import start_peer as start_baresip_peer
from tests.support.phone_peer import wav_seconds as recorded_seconds

SWITCH_RTP = (33000, 33199)
LINPHONE_RTP = (42000, 42499)
PEER_RTP = (42500, 42999)
DIGITS = "1#5*"
LISTEN = 3.5
"""Seconds each recording must hold before the test goes on (2 s of tone are required: the rest
is margin for a loaded machine's jitter)."""


@pytest.fixture
def digest() -> str | None:
    """201's ``pbx ext set --digest`` choice; None leaves it on the default (a test changes it
    with ``@pytest.mark.parametrize("digest", [...])``)."""
    return None


@pytest.fixture
def lab(tmp_path: Path, digest: str | None) -> Iterator[tuple[Office, LinphonePhone, PeerPhone]]:
    """The switch on its defaults, the baresip peer (202) and linphone (201)."""
    with office(tmp_path, rtp_ports=SWITCH_RTP) as switch:
        if digest is not None:
            changed = pbx(switch.db, "ext", "set", "201", "--digest", digest)
            assert changed.returncode == 0, changed.stderr
        peer = start_baresip_peer(switch, tmp_path, "202", rtp_ports=PEER_RTP)
        try:
            peer.wait_registered()
            phone = start_linphone(switch, tmp_path, "201", rtp_ports=LINPHONE_RTP)
            try:
                yield switch, phone, peer
            finally:
                phone.stop()
        finally:
            peer.stop()
            (tmp_path / "switch.log").write_text("".join(switch.process.lines))  # to debug


def _peer_recording(peer: PeerPhone) -> Path | None:
    found = sorted(peer.recordings.glob("*-dec.wav"))
    return found[0] if found else None


def _both_listen(phone: LinphonePhone, peer: PeerPhone) -> None:
    """Until each side's recording of the call so far holds LISTEN seconds."""
    wait_until(lambda: recorded_seconds(phone.recording) >= LISTEN, 15, "linphone hears")
    wait_until(
        lambda: (p := _peer_recording(peer)) is not None and recorded_seconds(p) >= LISTEN,
        15,
        "the peer hears",
    )


def _heard(path: Path | None, hz: int, who: str) -> None:
    assert path is not None, f"{who} recorded nothing"
    peak, loud = dominant_tone(path)
    assert abs(peak - hz) <= 10, f"{who} heard {peak:.0f} Hz, not {hz} Hz"
    assert loud >= 2.0, f"{who} heard only {loud:.2f} s of tone"


def test_linphone_registers_calls_holds_sends_dtmf_and_hangs_up(
    lab: tuple[Office, LinphonePhone, PeerPhone],
) -> None:
    switch, phone, peer = lab
    switch.wait_registered("201")
    phone.wait_registered()  # the switch logs before it stores; it answers after
    assert switch.auth_algorithm("201") == "MD5"

    phone.call("202")
    peer.wait_event("CALL_ESTABLISHED", timeout=10)
    # Both recordings fill while the call is up, before the hold.
    _both_listen(phone, peer)

    phone.hold()
    wait_until(lambda: peer.remote_directions()[-1:] in (["sendonly"], ["inactive"]), 10,
               f"the peer is offered sendonly/inactive: {peer.remote_directions()}")  # fmt: skip
    resumed = phone.folder / "resumed.wav"
    phone.record_to(resumed)  # the stream resume opens records here: audio after the hold
    phone.resume()
    wait_until(lambda: peer.remote_directions()[-1:] == ["sendrecv"], 10,
               f"the peer is offered sendrecv again: {peer.remote_directions()}")  # fmt: skip
    wait_until(lambda: recorded_seconds(resumed) >= LISTEN, 15, "linphone hears after resume")

    phone.send_dtmf(DIGITS)
    assert peer.dtmf_digits(len(DIGITS), timeout=15) == DIGITS

    ended = phone.hang_up()
    assert "No error" in ended, ended
    peer.wait_event("CALL_CLOSED", timeout=10)
    switch.process.wait_for(re.compile(r"event=call_end .*reason='caller hung up'"), timeout=10)

    directions = peer.remote_directions()
    held = next(i for i, d in enumerate(directions) if d in ("sendonly", "inactive"))
    assert directions[0] == "sendrecv" and "sendrecv" in directions[held + 1 :], directions
    _heard(phone.recording, PEER_TONE_HZ, "linphone (before hold)")
    _heard(resumed, PEER_TONE_HZ, "linphone (after resume)")
    _heard(_peer_recording(peer), CLIENT_TONE_HZ, "the peer")
    # linphone's media came from loopback and its own RTP range.
    legs = re.findall(
        r"event=media_update .* leg=a remote=([\d.]+):(\d+) ", "".join(switch.process.lines)
    )
    assert legs, "the switch logged no media for linphone's leg"
    for host, port in legs:
        assert host == "127.0.0.1" and LINPHONE_RTP[0] <= int(port) <= LINPHONE_RTP[1], legs


def test_linphone_answers_a_call_from_the_peer_and_both_are_heard(
    lab: tuple[Office, LinphonePhone, PeerPhone],
) -> None:
    """The other direction: the switch's INVITE to linphone's registered Contact is answered."""
    switch, phone, peer = lab
    switch.wait_registered("201")
    phone.answer_automatically()

    peer.command("dial", f"sip:201@{switch.switch[0]}:{switch.switch[1]}")
    phone.wait_answered()
    peer.wait_event("CALL_ESTABLISHED", timeout=10)
    _both_listen(phone, peer)

    peer.command("hangup")
    phone.wait_ended()
    switch.process.wait_for(re.compile(r"event=call_end .*reason='caller hung up'"), timeout=10)
    peer.wait_event("CALL_CLOSED", timeout=10)
    _heard(phone.recording, PEER_TONE_HZ, "linphone")
    _heard(_peer_recording(peer), CLIENT_TONE_HZ, "the peer")


@pytest.mark.parametrize("digest", ["SHA-256", "SHA-256,MD5"])
def test_linphone_answers_sha256_when_its_extension_is_offered_sha256(
    lab: tuple[Office, LinphonePhone, PeerPhone], digest: str
) -> None:
    """``pbx ext set 201 --digest SHA-256`` (or ``SHA-256,MD5``): linphone answers the SHA-256
    challenge (RFC 8760) of its REGISTER and INVITE, and picks it when MD5 is offered too."""
    switch, phone, peer = lab
    switch.wait_registered("201")
    phone.wait_registered()  # the switch logs before it stores; it answers after
    assert switch.auth_algorithm("201") == "SHA-256"

    phone.call("202")
    peer.wait_event("CALL_ESTABLISHED", timeout=10)
    phone.hang_up()
    peer.wait_event("CALL_CLOSED", timeout=10)

    log = phone.log()
    challenges = re.findall(r"^(?:WWW|Proxy)-Authenticate: Digest .*$", log, re.MULTILINE)
    offered = set(re.findall(r"algorithm=([\w-]+)", "\n".join(challenges)))
    assert offered == set(digest.split(",")), challenges
    answers = re.findall(r"^(?:Proxy-)?Authorization: +Digest .*$", log, re.MULTILINE)
    assert {a.split(":")[0] for a in answers} == {"Authorization", "Proxy-Authorization"}, answers
    assert all("algorithm=SHA-256" in a for a in answers), answers
