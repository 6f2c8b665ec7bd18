"""Real phones press transfer: baresip and linphonec send REFER with their own commands, and
the transferee is heard at the target (a tone through the relay after the join).

The switch runs on its defaults. 201 is the transferor, 202 the transferee (a baresip peer
playing 1000 Hz), 203 the target (a baresip peer playing 1500 Hz, recording).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.linphone import start_linphone
from tests.support.phone_peer import Office, PeerPhone, office
from tests.support.transfer_drivers import (
    baresip_blind_transfer,
    linphone_attended_transfer,
    linphone_blind_transfer,
)

SWITCH_RTP = (47000, 47199)
TRANSFEREE_RTP = (47200, 47299)
TARGET_RTP = (47300, 47399)
PHONE_RTP = (47400, 47499)
TRANSFEREE_HZ, TARGET_HZ = 1000, 1500


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Office, PeerPhone, PeerPhone]]:
    with office(tmp_path, rtp_ports=SWITCH_RTP, users=("201", "202", "203")) as switch:
        transferee = PeerPhone(
            switch, tmp_path / "peer-202", "202", rtp_ports=TRANSFEREE_RTP, hz=TRANSFEREE_HZ
        )
        target = PeerPhone(switch, tmp_path / "peer-203", "203", rtp_ports=TARGET_RTP,
                           hz=TARGET_HZ)  # fmt: skip
        try:
            transferee.wait_registered()
            target.wait_registered()
            yield switch, transferee, target
        finally:
            transferee.stop()
            target.stop()
            (tmp_path / "switch.log").write_text("".join(switch.process.lines))


def assert_joined(switch: Office, transferee: PeerPhone, target: PeerPhone) -> None:
    """The target answered, the switch joined the two, and the target hears the transferee
    (its tone, loud for seconds: the transferee's call went on through the join)."""
    target.wait_event("CALL_ESTABLISHED", 20)
    switch.process.wait_for(re.compile(r"event=call_transferred .*joined=203"), 20)
    target.wait_heard(4.0, timeout=30)
    target.command("hangup")  # the recording is complete once the call is over
    target.wait_event("CALL_CLOSED", 15)
    transferee.wait_event("CALL_CLOSED", 15)  # and the transferee is released with it
    hz, loud = target.heard()
    assert abs(hz - TRANSFEREE_HZ) <= 10 and loud >= 2.0, (hz, loud)


def test_baresip_blind_transfer(lab: tuple[Office, PeerPhone, PeerPhone], tmp_path: Path) -> None:
    switch, transferee, target = lab
    phone = PeerPhone(switch, tmp_path / "phone", "201", rtp_ports=PHONE_RTP, hz=440)
    try:
        phone.wait_registered()
        phone.command("dial", f"sip:202@127.0.0.1:{switch.process.port}")
        phone.wait_event("CALL_ESTABLISHED", 15)
        transferee.wait_event("CALL_ESTABLISHED", 15)
        baresip_blind_transfer(phone, "203")
        assert_joined(switch, transferee, target)
        phone.wait_event("CALL_CLOSED", 15)  # the transferor is released
    finally:
        phone.stop()


def test_linphone_blind_transfer(lab: tuple[Office, PeerPhone, PeerPhone], tmp_path: Path) -> None:
    switch, transferee, target = lab
    phone = start_linphone(switch, tmp_path, "201", rtp_ports=PHONE_RTP)
    try:
        phone.wait_registered()
        call = phone.call("202")
        transferee.wait_event("CALL_ESTABLISHED", 15)
        linphone_blind_transfer(phone, call, "sip:203@127.0.0.1")
        assert_joined(switch, transferee, target)
    finally:
        phone.stop()


def test_linphone_attended_transfer(
    lab: tuple[Office, PeerPhone, PeerPhone], tmp_path: Path
) -> None:
    switch, transferee, target = lab
    phone = start_linphone(switch, tmp_path, "201", rtp_ports=PHONE_RTP)
    try:
        phone.wait_registered()
        first = phone.call("202")
        transferee.wait_event("CALL_ESTABLISHED", 15)
        phone.hold()
        consultation = phone.call("203")
        target.wait_event("CALL_ESTABLISHED", 15)
        linphone_attended_transfer(phone, first, consultation)
        assert_joined(switch, transferee, target)
    finally:
        phone.stop()
