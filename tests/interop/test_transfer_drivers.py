"""The transfer drivers on the real phones: each phone's own transfer command sends REFER.

The switch runs on its defaults; the phone (extension 201) calls a baresip peer (202) and
transfers the call with its own command. What is checked is the phone's half only: an
in-dialog REFER (the call's Call-ID and both tags) whose Refer-To names the target, and for
linphone's attended transfer an embedded Replaces naming the consultation call's dialog as
the switch holds it (RFC 3891 §3: its to-tag is the switch's tag). The switch's answer is not
checked: until the call core knows REFER it answers 481, after that 202.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.sip.dialog import DialogId
from pbx.sip.message import Request
from pbx.sip.uri import SipUri
from tests.support.linphone import start_linphone
from tests.support.phone_peer import Office, PeerPhone, office, start_peer
from tests.support.transfer_drivers import (
    ReferSent,
    TracedMessage,
    baresip_address,
    baresip_blind_transfer,
    baresip_trace,
    linphone_attended_transfer,
    linphone_blind_transfer,
    linphone_trace,
)

SWITCH_RTP = (44000, 44099)
PEER_RTP = (44100, 44199)
SECOND_PEER_RTP = (44200, 44299)
PHONE_RTP = (44300, 44399)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[Office, PeerPhone]]:
    """The switch with 201 (the phone under test), 202 (a baresip peer) and 203."""
    with office(tmp_path, rtp_ports=SWITCH_RTP, users=("201", "202", "203")) as switch:
        peer = start_peer(switch, tmp_path, "202", rtp_ports=PEER_RTP)
        try:
            peer.wait_registered()
            yield switch, peer
        finally:
            peer.stop()
            (tmp_path / "switch.log").write_text("".join(switch.process.lines))  # to debug


def invite_dialog(trace: list[TracedMessage], own: str, callee: str) -> DialogId:
    """The switch's view of the dialog of the phone's answered INVITE to ``callee``:
    (Call-ID, the switch's To tag, the phone's From tag)."""
    for traced in trace:
        message = traced.message
        if (
            traced.destination == own
            and not isinstance(message, Request)
            and message.status == 200
            and message.cseq.method == "INVITE"
            and isinstance(message.to.uri, SipUri)
            and message.to.uri.user == callee
        ):
            assert message.to.tag is not None and message.from_.tag is not None
            return DialogId(message.call_id, message.to.tag, message.from_.tag)
    raise AssertionError(f"no answered INVITE to {callee} in the trace")


def assert_in_dialog(refer: ReferSent, dialog: DialogId) -> None:
    request = refer.request
    assert request.call_id == dialog.call_id
    assert (request.to.tag, request.from_.tag) == (dialog.local_tag, dialog.remote_tag)


def test_baresip_transfer_command_sends_an_in_dialog_refer(
    lab: tuple[Office, PeerPhone], tmp_path: Path
) -> None:
    switch, peer = lab
    phone = PeerPhone(switch, tmp_path / "phone", "201", rtp_ports=PHONE_RTP, hz=440)
    try:
        phone.wait_registered()
        phone.command("dial", f"sip:202@127.0.0.1:{switch.process.port}")
        phone.wait_event("CALL_ESTABLISHED", 15)
        peer.wait_event("CALL_ESTABLISHED", 15)

        refer = baresip_blind_transfer(phone, "203")
    finally:
        phone.stop()
    own = baresip_address(phone)
    assert_in_dialog(refer, invite_dialog(baresip_trace(phone.log_path), own, "202"))
    target = refer.refer_to.target
    assert isinstance(target, SipUri)
    assert (target.user, target.host, target.port) == ("203", "127.0.0.1", switch.process.port)
    assert refer.refer_to.replaces is None


def test_linphone_transfer_command_sends_an_in_dialog_refer(
    lab: tuple[Office, PeerPhone], tmp_path: Path
) -> None:
    switch, _peer = lab
    phone = start_linphone(switch, tmp_path, "201", rtp_ports=PHONE_RTP)
    try:
        phone.wait_registered()
        call = phone.call("202")
        refer = linphone_blind_transfer(phone, call, "sip:203@127.0.0.1")
    finally:
        phone.stop()
    assert_in_dialog(refer, invite_dialog(linphone_trace(phone.log_path), "linphone", "202"))
    target = refer.refer_to.target
    assert isinstance(target, SipUri) and (target.user, target.host) == ("203", "127.0.0.1")
    assert refer.referred_by is not None
    assert str(refer.referred_by.address.uri) == "sip:201@127.0.0.1"


def test_linphone_attended_transfer_names_the_consultation_dialog(
    lab: tuple[Office, PeerPhone], tmp_path: Path
) -> None:
    switch, _peer = lab
    second = start_peer(switch, tmp_path, "203", rtp_ports=SECOND_PEER_RTP)
    phone = start_linphone(switch, tmp_path, "201", rtp_ports=PHONE_RTP)
    try:
        second.wait_registered()
        phone.wait_registered()
        first_call = phone.call("202")
        phone.hold()  # linphonec: "Terminate or hold on the current call first."
        consultation = phone.call("203")
        refer = linphone_attended_transfer(phone, first_call, consultation)
    finally:
        phone.stop()
        second.stop()
    trace = linphone_trace(phone.log_path)
    assert_in_dialog(refer, invite_dialog(trace, "linphone", "202"))
    target = refer.refer_to.target
    assert isinstance(target, SipUri) and target.user == "203"
    replaces = refer.refer_to.replaces
    assert replaces is not None
    # RFC 3891 §3: the switch finds the consultation call as its own dialog with the phone.
    assert replaces.matches(invite_dialog(trace, "linphone", "203"))
