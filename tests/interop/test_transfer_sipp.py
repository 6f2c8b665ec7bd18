"""SIPp as the transferor: attended and semi-attended transfer (REFER with Replaces), and an
INVITE with Replaces from a phone. The other parties are baresip peers, so the join is
checked by ear: the target hears the transferee's tone through the relay.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.sip.message import Request, Response
from tests.support.phone_peer import Office, PeerPhone, office
from tests.support.sipp import SippResult, free_port, run_sipp
from tests.support.tools import require_tool
from tests.support.transfer_drivers import baresip_trace

SWITCH_RTP = (47500, 47699)
TRANSFEREE_RTP = (47700, 47799)
TARGET_RTP = (47800, 47899)
TRANSFEREE_HZ, TARGET_HZ = 1000, 1500


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Office]:
    with office(tmp_path, rtp_ports=SWITCH_RTP, users=("201", "202", "203")) as switch:
        try:
            yield switch
        finally:
            (tmp_path / "switch.log").write_text("".join(switch.process.lines))


def transferor_csv(switch: Office, path: Path) -> Path:
    password = switch.passwords["201"]
    path.write_text(f"SEQUENTIAL\n202;201;[authentication username=201 password={password}];203;\n")
    return path


def run_transferor(switch: Office, scenario: str, workdir: Path) -> SippResult:
    sipp = require_tool("sipp", "sip-tester")
    csv = transferor_csv(switch, workdir / "transferor.csv")
    return run_sipp(
        sipp, scenario, switch.switch, calls=1, rate=1, workdir=workdir, timeout_s=40,
        extra=("-inf", str(csv), "-mp", str(free_port()), "-trace_msg"),
    )  # fmt: skip


def heard_transferee(target: PeerPhone, transferee: PeerPhone) -> None:
    target.wait_heard(4.0, timeout=30)
    target.command("hangup")
    target.wait_event("CALL_CLOSED", 15)
    transferee.wait_event("CALL_CLOSED", 15)
    hz, loud = target.heard()
    assert abs(hz - TRANSFEREE_HZ) <= 10 and loud >= 2.0, (hz, loud)


def test_sipp_attended_transfer_joins_the_transferee_and_the_target(
    lab: Office, tmp_path: Path
) -> None:
    transferee = PeerPhone(lab, tmp_path / "peer-202", "202", rtp_ports=TRANSFEREE_RTP,
                           hz=TRANSFEREE_HZ)  # fmt: skip
    target = PeerPhone(lab, tmp_path / "peer-203", "203", rtp_ports=TARGET_RTP, hz=TARGET_HZ)
    try:
        transferee.wait_registered()
        target.wait_registered()
        result = run_transferor(lab, "transfer_attended_transferor", tmp_path)
        assert result.successful == 1 and result.failed == 0, result.output[-3000:]
        lab.process.wait_for(re.compile(r"event=call_transferred .*joined=203"), 10)
        heard_transferee(target, transferee)
    finally:
        transferee.stop()
        target.stop()


def test_sipp_semi_attended_transfer_joins_when_the_target_answers(
    lab: Office, tmp_path: Path
) -> None:
    transferee = PeerPhone(lab, tmp_path / "peer-202", "202", rtp_ports=TRANSFEREE_RTP,
                           hz=TRANSFEREE_HZ)  # fmt: skip
    target = PeerPhone(lab, tmp_path / "peer-203", "203", rtp_ports=TARGET_RTP, hz=TARGET_HZ,
                       answermode="manual")  # fmt: skip
    results: list[SippResult] = []
    try:
        transferee.wait_registered()
        target.wait_registered()
        runner = threading.Thread(
            target=lambda: results.append(
                run_transferor(lab, "transfer_semi_attended_transferor", tmp_path)
            )
        )
        runner.start()
        target.wait_event("CALL_INCOMING", 20)
        # The REFER comes at the consultation's 180: the target still rings when it arrives.
        lab.process.wait_for(re.compile(r"event=transfer_start .*attended=1 ringing=1"), 20)
        target.command("accept")
        runner.join(60)
        assert results and results[0].successful == 1, results[0].output[-3000:] if results else ""
        lab.process.wait_for(re.compile(r"event=call_transferred .*joined=203"), 10)
        heard_transferee(target, transferee)
    finally:
        transferee.stop()
        target.stop()


def test_sipp_invite_with_replaces_takes_a_call_over(lab: Office, tmp_path: Path) -> None:
    """201 calls 202's desk phone (baresip); 202's second device (SIPp) sends INVITE with
    Replaces naming the switch's dialog with the desk phone: the desk phone is released, the
    caller stays, and SIPp's BYE at the end is the caller's end too."""
    sipp = require_tool("sipp", "sip-tester")
    caller = PeerPhone(lab, tmp_path / "peer-201", "201", rtp_ports=TRANSFEREE_RTP,
                       hz=TRANSFEREE_HZ)  # fmt: skip
    desk = PeerPhone(lab, tmp_path / "peer-202", "202", rtp_ports=TARGET_RTP, hz=TARGET_HZ)
    try:
        caller.wait_registered()
        desk.wait_registered()
        caller.command("dial", f"sip:202@127.0.0.1:{lab.process.port}")
        desk.wait_event("CALL_ESTABLISHED", 15)
        invite = next(
            t.message for t in baresip_trace(desk.log_path)
            if isinstance(t.message, Request) and t.message.method == "INVITE"
        )  # fmt: skip
        answer = next(
            t.message for t in baresip_trace(desk.log_path)
            if isinstance(t.message, Response) and t.message.status == 200
            and t.message.cseq.method == "INVITE"
        )  # fmt: skip
        password = lab.passwords["202"]
        csv = tmp_path / "replaces.csv"
        csv.write_text(
            "SEQUENTIAL\n"
            f"202;202;[authentication username=202 password={password}];{invite.call_id};"
            f"{invite.from_.tag};{answer.to.tag};\n"
        )
        result = run_sipp(
            sipp, "invite_replaces_uac", lab.switch, calls=1, rate=1, workdir=tmp_path,
            timeout_s=30, extra=("-inf", str(csv), "-mp", str(free_port()), "-d", "2000",
                                 "-trace_msg"),
        )  # fmt: skip
        assert result.successful == 1 and result.failed == 0, result.output[-3000:]
        lab.process.wait_for(re.compile(r"event=call_replaced .*by=202 other=201"), 10)
        desk.wait_event("CALL_CLOSED", 10)  # the replaced dialog got its BYE
        caller.wait_event("CALL_CLOSED", 10)  # SIPp's BYE ended the caller's call
    finally:
        caller.stop()
        desk.stop()
