"""``pbx line ring | status | hangup`` for real: the switch, the line gateway on the simulated
line and a Python phone as the inbound target (extension 201), all real processes on loopback.

The newcomer's demo: `pbx line ring --from 5551234 --name ACME` rings the line, the gateway
offers the call to the office and the phone gets an INVITE from "ACME" <sip:5551234@...>;
`pbx line status` says the line rings and who calls; `pbx line hangup` makes the caller give
up, the phone gets CANCEL once the gateway notices the rings have stopped, and the line is
idle. Nothing is given a control port: `pbx line` finds the gateway from the database path.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.sip.message import Request, make_response
from pbx.store.database import open_database
from pbx.store.settings import set_setting
from tests.support.cli import pbx
from tests.support.gateway_process import GatewayProcess
from tests.support.processes import stop
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess

pytestmark = pytest.mark.timeout(180)

PASSWORD = "reception-pass-201"


def next_request(phone: SipPhone, method: str, timeout: float) -> Request:
    """The next request of ``method`` the phone gets (OPTIONS answered, retransmissions of
    what came before skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"no {method} within {timeout} s"
        message = phone.receive(left)
        if isinstance(message, Request) and message.method == method:
            return message


@pytest.fixture
def office(tmp_path: Path) -> Iterator[tuple[Path, GatewayProcess, SipPhone]]:
    db = tmp_path / "switchboard.db"
    for number in ("201", "202"):
        assert pbx(db, "ext", "add", number, "--password", PASSWORD).returncode == 0
    handle = open_database(db)
    set_setting(handle, "inbound_target", "201")  # the line rings 201 only
    handle.close()
    with (
        SwitchProcess(tmp_path, "--rtp-ports", "33800-33999") as switch,
        GatewayProcess(db, switch.port) as gateway,
    ):
        phone = SipPhone("201", PASSWORD, ("127.0.0.1", switch.port))
        try:
            assert phone.register().status == 200
            yield db, gateway, phone
        finally:
            phone.close()


def test_ring_status_and_hangup_from_the_shell(
    office: tuple[Path, GatewayProcess, SipPhone],
) -> None:
    db, gateway, phone = office
    idle = pbx(db, "line", "status")
    assert (idle.returncode, idle.stdout.strip()) == (0, "simulated line: idle (on hook)")

    ring = pbx(db, "line", "ring", "--from", "5551234", "--name", "ACME")
    assert ring.returncode == 0, ring.stderr
    assert '5551234 "ACME" is calling' in ring.stdout

    # After two rings (about 6 s on US cadence) the gateway offers the call to the office.
    invite = next_request(phone, "INVITE", 30)
    assert invite.from_.display_name == "ACME", invite.headers.get("from")
    assert re.search(r'^"ACME" <sip:5551234@', invite.headers.get("from") or ""), invite
    phone.sock.sendto(bytes(make_response(invite, 180, to_tag="ring201")), phone.switch)

    status = pbx(db, "line", "status")
    assert status.returncode == 0, status.stderr
    assert re.fullmatch(
        r'simulated line: ringing: 5551234 "ACME" is calling \(ring \d+\)\n', status.stdout
    ), status.stdout
    state = json.loads(pbx(db, "line", "status", "--json").stdout)
    assert (state["phase"], state["caller_number"], state["caller_name"]) == (
        "ringing", "5551234", "ACME",
    )  # fmt: skip
    assert state["summary"].startswith("ringing") and state["rings"] >= 2

    hangup = pbx(db, "line", "hangup")
    assert hangup.returncode == 0, hangup.stderr
    assert "the caller gave up" in hangup.stdout
    after = pbx(db, "line", "status")
    assert after.stdout.strip() == "simulated line: idle (on hook)"

    # No more rings: after line_ring_gone_seconds (7 s) the gateway CANCELs the offer.
    cancel = next_request(phone, "CANCEL", 20)
    assert cancel.headers.get("call-id") == invite.headers.get("call-id")
    phone.sock.sendto(bytes(make_response(cancel, 200)), phone.switch)
    phone.sock.sendto(bytes(make_response(invite, 487, to_tag="ring201")), phone.switch)
    next_request(phone, "ACK", 10)

    # Nothing to hang up now: the line's own words, one line, exit 2.
    again = pbx(db, "line", "hangup")
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr
    assert "no answered call to hang up (the line is idle)" in again.stderr

    # A stopped gateway withdraws its address: the next command says no line runs.
    assert gateway.proc is not None
    assert stop(gateway.proc) == 0
    gone = pbx(db, "line", "status")
    assert gone.returncode == 2 and "no simulated line is running" in gone.stderr, gone.stderr


def test_ring_with_no_line_running_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    db = tmp_path / "switchboard.db"
    result = pbx(db, "line", "ring", "--from", "5551234", "--name", "ACME")
    assert result.returncode == 2 and result.stdout == "", result
    assert result.stderr == (
        f"pbx line ring: no simulated line is running for {db} "
        "(start one with `pbx up`, or give --db the database of the one that runs)\n"
    )


def test_bad_caller_id_is_refused_by_pbx_in_one_line(tmp_path: Path) -> None:
    result = pbx(tmp_path / "switchboard.db", "line", "ring", "--from", "abc")
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--from" in result.stderr and "digits only" in result.stderr
    assert "Traceback" not in result.stderr
