"""Transfer with the phone line: an outside caller moved to another extension, and the
transferor's outbound permission on an outside-number target (issue 12, item 7).

Real processes on loopback: the switch on its defaults, the line gateway on the simulated
exchange (its far party plays LINE_HZ), baresip peers as extensions 201 (the transferor,
playing 440 Hz) and 202 (playing 1500 Hz, recording). The line rings 201 only
(``inbound_target``). What the transferor was told is read from its own SIP trace (the REFER's
answer, the NOTIFY sipfrags) and its ctrl_tcp events.
"""

from __future__ import annotations

import re
import threading
import time
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from gateway_fxo.sim_control import SimControlClient
from pbx.sip.message import Request
from pbx.store.database import open_database
from pbx.store.settings import set_setting
from tests.support.cli import pbx
from tests.support.gateway_process import GatewayProcess
from tests.support.phone_peer import (
    Office,
    PeerPhone,
    dominant_tone,
    office,
    recorded_seconds,
)
from tests.support.sipp import SippResult, run_sipp
from tests.support.tools import require_tool
from tests.support.transfer_drivers import (
    ReferSent,
    baresip_address,
    baresip_blind_transfer,
    baresip_trace,
    responses_to,
)

pytestmark = [pytest.mark.interop, pytest.mark.timeout(120)]

SWITCH_RTP = (48400, 48599)
TRANSFEROR_RTP = (48600, 48699)
TARGET_RTP = (48700, 48779)
SIPP_MEDIA_PORT = 48790  # SIPp's own media socket (it sends no RTP here)
LINE_HZ = 1000  # the simulated exchange's far party (gateway_fxo.backends.sim)
TRANSFEROR_HZ, TARGET_HZ = 440, 1500


@dataclass(frozen=True, slots=True)
class Lab:
    office: Office
    gateway: GatewayProcess
    line: SimControlClient
    tmp_path: Path

    def phone(self, user: str, *, hz: int, rtp: tuple[int, int], answermode: str = "auto"
              ) -> PeerPhone:  # fmt: skip
        phone = PeerPhone(self.office, self.tmp_path / f"phone-{user}", user, rtp_ports=rtp,
                          hz=hz, answermode=answermode, volume=0.1)  # fmt: skip
        phone.wait_registered()
        return phone

    def ring_from_the_line(self, phone: PeerPhone, *, calls: int = 1) -> None:
        """The exchange rings the line; the gateway answers it once 201 has answered (its
        ``calls``-th call)."""
        self.line.place_inbound_call("5551234", "ACME CORP")
        phone.wait_count("CALL_ESTABLISHED", calls, 30)
        until(lambda: self.line.state()["in_call"], 10, "the gateway to answer the line")


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll the simulator's state or a phone's files until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with office(tmp_path, rtp_ports=SWITCH_RTP, users=("201", "202")) as switch:
        handle = open_database(switch.db)
        set_setting(handle, "inbound_target", "201")  # the line rings 201 only
        handle.close()
        try:
            with GatewayProcess(switch.db, switch.process.port) as gateway:
                assert gateway.output is not None
                with SimControlClient("127.0.0.1", gateway.control_port) as line:
                    yield Lab(switch, gateway, line, tmp_path)
        finally:
            (tmp_path / "switch.log").write_text("".join(switch.process.lines))


def refer_statuses(phone: PeerPhone, refer: ReferSent) -> list[int]:
    phone.log()
    return responses_to(baresip_trace(phone.log_path), refer.request)


def notify_sipfrags(phone: PeerPhone) -> list[str]:
    """The status lines of the refer NOTIFYs the phone received, in order."""
    phone.log()
    own = baresip_address(phone)
    return [
        traced.message.body.decode(errors="replace").strip()
        for traced in baresip_trace(phone.log_path)
        if traced.destination == own
        and isinstance(traced.message, Request)
        and traced.message.method == "NOTIFY"
    ]


def test_an_outside_caller_is_transferred_to_another_extension(lab: Lab) -> None:
    transferor = lab.phone("201", hz=TRANSFEROR_HZ, rtp=TRANSFEROR_RTP)
    target = lab.phone("202", hz=TARGET_HZ, rtp=TARGET_RTP)
    try:
        lab.ring_from_the_line(transferor)
        refer = baresip_blind_transfer(transferor, "202")
        until(lambda: 202 in refer_statuses(transferor, refer), 10, "202 Accepted")
        target.wait_event("CALL_ESTABLISHED", 20)
        lab.office.process.wait_for(re.compile(r"event=call_transferred .*joined=202"), 20)
        transferor.wait_event("CALL_CLOSED", 15)  # the transferor is released
        assert lab.line.state()["in_call"]  # the outside caller is still on the line
        target.wait_heard(4.0, timeout=30)
        lab.line.far_end_hangup()  # the outside party hangs up: the target's call ends
        target.wait_event("CALL_CLOSED", 15)
        until(lambda: not lab.line.state()["off_hook"], 10, "the line to go on hook")
        hz, loud = target.heard()
        assert abs(hz - LINE_HZ) <= 10 and loud >= 2.0, (hz, loud)
        assert any(frag.startswith("SIP/2.0 200") for frag in notify_sipfrags(transferor))
    finally:
        transferor.stop()
        target.stop()


def test_a_transfer_out_on_the_line_needs_outbound_permission(lab: Lab) -> None:
    assert pbx(lab.office.db, "ext", "set", "201", "--no-outbound").returncode == 0
    transferor = lab.phone("201", hz=TRANSFEROR_HZ, rtp=TRANSFEROR_RTP)
    try:
        lab.ring_from_the_line(transferor)
        refer = baresip_blind_transfer(transferor, "95550100")
        failed = transferor.wait_event("TRANSFER_FAILED", 10)
        assert str(failed.get("param", "")).startswith("403"), failed
        assert refer_statuses(transferor, refer) == [403]
        assert lab.line.dialled_digits() == ""  # nothing went out
        # baresip 1.0 hangs up by itself on a failed transfer (BYE, no CALL_CLOSED event);
        # the switch kept the call until then.
        until(lambda: bye_senders(transferor, refer), 10, "201's BYE")
        assert bye_senders(transferor, refer) == ["201"]
        end = lab.office.process.wait_for(call_end_of(lab.gateway), 10)
        assert "transfer" not in end.split("reason=")[1].split()[0], end
        until(lambda: not lab.line.state()["off_hook"], 10, "the line to go on hook")
        # Allowed out (changed on the running switch), the outside caller still cannot be
        # sent out: the one analog line is taken by this very call.
        assert pbx(lab.office.db, "ext", "set", "201", "--outbound").returncode == 0
        lab.ring_from_the_line(transferor, calls=2)
        again = baresip_blind_transfer(transferor, "95550100")
        [_, busy] = transferor.wait_count("TRANSFER_FAILED", 2, 10)
        assert str(busy.get("param", "")).startswith("486"), busy
        assert refer_statuses(transferor, again) == [486]
        assert lab.line.dialled_digits() == ""
    finally:
        transferor.stop()


def test_an_internal_call_is_transferred_out_on_the_line(lab: Lab) -> None:
    transferor = lab.phone("201", hz=TRANSFEROR_HZ, rtp=TRANSFEROR_RTP)
    transferee = lab.phone("202", hz=TARGET_HZ, rtp=TARGET_RTP)
    try:
        transferor.command("dial", f"sip:202@127.0.0.1:{lab.office.process.port}")
        transferor.wait_event("CALL_ESTABLISHED", 15)
        transferee.wait_event("CALL_ESTABLISHED", 15)
        refer = baresip_blind_transfer(transferor, "95550100")
        until(lambda: 202 in refer_statuses(transferor, refer), 10, "202 Accepted")
        until(lambda: len(lab.line.dialled_digits()) >= 7, 20, "the gateway to dial")
        assert lab.line.dialled_digits() == "5550100"
        lab.line.far_end_answer()
        lab.office.process.wait_for(re.compile(r"event=call_transferred .*joined=5550100"), 20)
        transferor.wait_event("CALL_CLOSED", 15)
        start = recorded_seconds(transferee.recordings)
        transferee.wait_heard(start + 4.0, timeout=30)
        transferee.command("hangup")
        transferee.wait_event("CALL_CLOSED", 15)
        until(lambda: not lab.line.state()["off_hook"], 10, "the line to go on hook")
        [recording] = sorted(transferee.recordings.glob("*-dec.wav"))
        hz, loud = dominant_tail(recording, start)
        assert abs(hz - LINE_HZ) <= 10 and loud >= 2.0, (hz, loud)
    finally:
        transferor.stop()
        transferee.stop()


def test_a_refused_transfer_leaves_the_outside_caller_with_the_transferor(lab: Lab) -> None:
    transferor = lab.phone("201", hz=TRANSFEROR_HZ, rtp=TRANSFEROR_RTP)
    target = lab.phone("202", hz=TARGET_HZ, rtp=TARGET_RTP, answermode="manual")
    try:
        lab.ring_from_the_line(transferor)
        refer = baresip_blind_transfer(transferor, "202")
        until(lambda: 202 in refer_statuses(transferor, refer), 10, "202 Accepted")
        target.wait_event("CALL_INCOMING", 15)
        target.command("hangup")  # 202 rejects the call (486)
        lab.office.process.wait_for(re.compile(r"event=transfer_failed .*status=486"), 15)
        failed = transferor.wait_event("TRANSFER_FAILED", 10)
        assert str(failed.get("param", "")).startswith("486"), failed
        frags = notify_sipfrags(transferor)
        assert [f.split()[1] for f in frags] == ["100", "180", "486"], frags
        # The switch did not end the call: it was still up when the transferor (baresip 1.0
        # hangs up by itself on a failed transfer) sent BYE, and that BYE reached the line.
        until(lambda: bye_senders(transferor, refer), 10, "201's BYE")
        assert bye_senders(transferor, refer) == ["201"]
        end = lab.office.process.wait_for(call_end_of(lab.gateway, "transferred=1"), 10)
        assert "reason='hung up'" in end, end
        until(lambda: not lab.line.state()["off_hook"], 10, "the line to go on hook")
    finally:
        transferor.stop()
        target.stop()


def test_an_outside_call_is_transferred_attended_to_another_extension(lab: Lab) -> None:
    """SIPp (201) calls out on the line, consults 202 and REFERs with Replaces: the gateway's
    leg is moved onto the consultation's relay (a re-INVITE with a new address), and 202 hears
    the far party."""
    sipp = require_tool("sipp", "sip-tester")
    target = lab.phone("202", hz=TARGET_HZ, rtp=TARGET_RTP)
    csv = lab.tmp_path / "transferor.csv"
    password = lab.office.passwords["201"]
    csv.write_text(
        f"SEQUENTIAL\n95550100;201;[authentication username=201 password={password}];202;\n"
    )
    results: list[SippResult] = []
    runner = threading.Thread(target=lambda: results.append(run_sipp(
        sipp, "transfer_attended_transferor", lab.office.switch, calls=1, rate=1,
        workdir=lab.tmp_path, timeout_s=40,
        extra=("-inf", str(csv), "-mp", str(SIPP_MEDIA_PORT), "-trace_msg"),
    )))  # fmt: skip
    try:
        runner.start()
        until(lambda: len(lab.line.dialled_digits()) >= 7, 20, "the gateway to dial")
        assert lab.line.dialled_digits() == "5550100"
        lab.line.far_end_answer()
        target.wait_event("CALL_ESTABLISHED", 20)  # the consultation
        runner.join(60)
        assert results and results[0].successful == 1, results[0].output[-3000:] if results else ""
        lab.office.process.wait_for(re.compile(r"event=call_transferred .*joined=202"), 10)
        start = recorded_seconds(target.recordings)
        target.wait_heard(start + 4.0, timeout=30)
        target.command("hangup")
        target.wait_event("CALL_CLOSED", 15)
        until(lambda: not lab.line.state()["off_hook"], 10, "the line to go on hook")
        [recording] = sorted(target.recordings.glob("*-dec.wav"))
        hz, loud = dominant_tail(recording, start)
        assert abs(hz - LINE_HZ) <= 10 and loud >= 2.0, (hz, loud)
    finally:
        runner.join(60)
        target.stop()


def bye_senders(phone: PeerPhone, refer: ReferSent) -> list[str]:
    """Who sent each BYE in the REFER's dialog, as seen by the phone ("201" or "switch")."""
    phone.log()
    own = baresip_address(phone)
    return [
        phone.user if traced.source == own else "switch"
        for traced in baresip_trace(phone.log_path)
        if isinstance(traced.message, Request)
        and traced.message.method == "BYE"
        and traced.message.call_id == refer.request.call_id
    ]


def call_end_of(gateway: GatewayProcess, having: str = "") -> re.Pattern[str]:
    """The switch's call_end line (``having`` in it) of the gateway's newest inbound call."""
    assert gateway.output is not None
    inbound = [line for line in gateway.output.lines if "event=inbound_call" in line]
    if not inbound:
        inbound = [gateway.output.wait_for(re.compile(r"event=inbound_call .*call_id=\S+"), 5)]
    leg = inbound[-1].split("call_id=")[1].split()[0]
    return re.compile(rf"event=call_end call_id={re.escape(leg)} .*{re.escape(having)}")


def dominant_tail(path: Path, after: float) -> tuple[float, float]:
    """dominant_tone of the part of a WAV recorded after ``after`` seconds."""
    tail = path.with_name(path.stem + "-tail.wav")
    with wave.open(str(path)) as source:
        rate = source.getframerate()
        source.setpos(min(source.getnframes(), int(after * rate)))
        frames = source.readframes(source.getnframes())
        with wave.open(str(tail), "wb") as out:
            out.setparams(source.getparams())
            out.writeframes(frames)
    return dominant_tone(tail)
