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

from tests.support.phone_peer import Office, PeerPhone, office
from tests.support.sipp import SippResult, free_port, run_sipp
from tests.support.tools import require_tool

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
    path.write_text(
        f"SEQUENTIAL\n202;201;[authentication username=201 password={password}];203;\n"
    )
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
