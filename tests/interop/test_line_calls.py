"""Calls between a real softphone (baresip) and the phone line (the simulated exchange).

The switch, the line gateway on the simulator and baresip run as real processes on loopback.
Inbound: the exchange rings with caller ID "5551234 / ACME CORP"; the phone rings showing that
number and name, answers, hears the far party's 1000 Hz, the far end hangs up, the phone gets
BYE. Outbound: the phone dials 9 5550100; the exchange hears exactly 5550100 in the DTMF the
gateway played; the far party answers and the phone hears it; the phone hangs up and the line
goes on hook.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_fxo.sim_control import SimControlClient
from pbx.store.database import open_database
from tests.interop.test_baresip_calls import heard, tone
from tests.support.baresip import BaresipPhone
from tests.support.cli import pbx
from tests.support.gateway_process import GatewayProcess
from tests.support.sipp import free_port
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]


def until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll the simulator's state (over its control socket) until ``check`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def office(tmp_path: Path) -> Iterator[tuple[SwitchProcess, GatewayProcess, BaresipPhone, Path]]:
    baresip = require_tool("baresip", "baresip")
    sox = require_tool("sox", "sox")
    db = tmp_path / "switchboard.db"
    assert pbx(db, "ext", "add", "201", "--password", "reception-pass-201").returncode == 0
    with (
        SwitchProcess(tmp_path, "--rtp-ports", "36000-36099") as switch,
        GatewayProcess(db, switch.port) as gateway,
    ):
        folder = tmp_path / "phone"
        folder.mkdir()
        phone = BaresipPhone(
            baresip, folder, user="201", password="reception-pass-201",
            switch=("127.0.0.1", switch.port), sip_port=free_port(), ctrl_port=free_port(),
            rtp_ports=(41600, 41699),
            # Quiet, so the line's echo of it stays below the far party: both talk all the
            # time here, which is double talk for the echo canceller (it rightly stops adapting;
            # its echo reduction is measured in bench/, with one talker).
            source_wav=tone(folder / "mic.wav", sox, 440, 30.0, volume=0.1),
        )  # fmt: skip
        try:
            registered = re.compile("event=registered aor=201 ")
            if not any(registered.search(line) for line in switch.lines):
                switch.wait_for(registered, timeout=15)
            yield switch, gateway, phone, db
        finally:
            phone.stop()


def test_an_inbound_line_call_rings_the_phone_with_caller_id(
    office: tuple[SwitchProcess, GatewayProcess, BaresipPhone, Path],
) -> None:
    switch, gateway, phone, db = office
    control = SimControlClient("127.0.0.1", gateway.control_port)
    control.place_inbound_call("5551234", "ACME CORP")
    phone.wait_event("CALL_ESTABLISHED", 30)  # auto-answer once it rings
    until(lambda: control.state()["in_call"], 10, "the gateway to answer the line")
    # Let the far party talk for a few seconds of real audio, then hang up on the line side.
    established = time.monotonic()
    until(lambda: time.monotonic() - established > 4, 6, "four seconds of talk")
    control.far_end_hangup()
    phone.wait_event("CALL_CLOSED", 15)
    until(lambda: not control.state()["off_hook"], 10, "the line to go on hook")
    switch.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
    trace = phone.log()
    assert re.search(r'From: "ACME CORP" <sip:5551234@', trace), trace[-3000:]
    peak, loud = heard(phone.recordings)
    assert abs(peak - 1000) < 15 and loud >= 2.0, (peak, loud)  # the far party's voice
    end = next(line for line in switch.lines if "event=call_end" in line)
    counts = [int(n) for n in re.findall(r"'packets_in': (\d+)", end)]
    assert len(counts) == 2 and min(counts) > 100, end  # both directions through the relay
    [row] = (
        open_database(db)
        .execute("SELECT caller, callee, answered_at IS NOT NULL FROM call_records")
        .fetchall()
    )
    assert row == ("5551234", "201", 1)
    inbound = gateway.output.wait_for(re.compile(r"event=inbound_call .*call_id=\S+"), timeout=5)
    leg = inbound.split("call_id=")[1].split()[0]
    assert any(f"event=call_end call_id={leg} " in line for line in switch.lines), leg


def test_the_phone_dials_out_on_the_line(
    office: tuple[SwitchProcess, GatewayProcess, BaresipPhone, Path],
) -> None:
    switch, gateway, phone, db = office
    control = SimControlClient("127.0.0.1", gateway.control_port)
    phone.command("dial", f"sip:95550100@127.0.0.1:{switch.port}")
    until(lambda: len(control.dialled_digits()) >= 7, 20, "the gateway to dial")
    assert control.dialled_digits() == "5550100"
    control.far_end_answer()
    phone.wait_event("CALL_ESTABLISHED", 15)
    until(lambda: control.state()["phase"] == "connected", 10, "the far party to answer")
    established = time.monotonic()
    until(lambda: time.monotonic() - established > 4, 6, "four seconds of talk")
    phone.command("hangup")
    phone.wait_event("CALL_CLOSED", 10)
    until(lambda: not control.state()["off_hook"], 10, "the line to go on hook")
    peak, loud = heard(phone.recordings)
    assert abs(peak - 1000) < 15 and loud >= 2.0, (peak, loud)
    [row] = (
        open_database(db).execute("SELECT caller, callee, end_reason FROM call_records").fetchall()
    )
    assert row == ("201", "5550100", "caller hung up")
    # One grep for the gateway's Call-ID finds the switch's lines of the same call (README).
    dialling = gateway.output.wait_for(re.compile(r"event=dialling .*call_id=\S+"), timeout=5)
    leg = dialling.split("call_id=")[1].split()[0]
    end = switch.wait_for(re.compile(rf"event=call_end .*b_call_id={re.escape(leg)} "), timeout=10)
    assert "answered=True" in end
