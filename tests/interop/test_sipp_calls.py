"""Calls through the switch between SIPp phones: a caller (UAC) and registered callees (UAS).

The switch runs on its defaults: its MD5 challenge is one SIPp 3.6.1 can answer.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbx.store.database import open_database
from tests.support.cli import pbx
from tests.support.sipp import SippUas, free_port, run_sipp
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool

USERS = [str(n) for n in range(2001, 2021)]
ENV = {
    "SWITCHBOARD_RING_TIMEOUT": "3",
    "SWITCHBOARD_BAN_ALLOW": "127.0.0.0/8",
}


def password(user: str) -> str:
    return f"pw{user}-Calls-Test"


@pytest.fixture(scope="module")
def sipp() -> str:
    return require_tool("sipp", "sip-tester")


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    folder = tmp_path_factory.mktemp("calls")
    db = folder / "switchboard.db"
    table = folder / "users.csv"
    table.write_text("".join(f"{u},Phone {u},{password(u)}\n" for u in USERS))
    assert pbx(db, "ext", "import", str(table)).returncode == 0
    rtp = free_port()
    low = 20000 + (rtp % 20) * 1000
    args = ("--log-level", "warning", "--rtp-ports", f"{low}-{low + 999}")
    with SwitchProcess(folder, *args, env=ENV) as process:
        yield process, db


def callee(sipp: str, process: SwitchProcess, workdir: Path, user: str, scenario: str) -> SippUas:
    """Register ``user`` from a fresh port, then run a SIPp UAS on that port."""
    port = free_port()
    users = workdir / f"reg-{user}.csv"
    users.write_text(
        f"SEQUENTIAL\n{user};[authentication username={user} password={password(user)}];\n"
    )
    registered = run_sipp(
        sipp, "register_auth", ("127.0.0.1", process.port), calls=1, rate=1, workdir=workdir,
        extra=("-inf", str(users), "-key", "expires", "600", "-key", "contact_port", str(port),
               "-p", str(port)),
        tag=f"-reg-{user}",
    )  # fmt: skip
    assert registered.successful == 1, registered.output[-2000:]
    return SippUas(sipp, scenario, port, workdir, media_port=free_port())


def call(
    sipp: str, process: SwitchProcess, workdir: Path, scenario: str, callee_user: str,
    caller: str, *, calls: int = 1, rate: int = 10, wrong: bool = False, hold_ms: int = 100,
) -> Any:  # fmt: skip
    secret = "wrong-password-123" if wrong else password(caller)
    inf = workdir / f"calls-{scenario}.csv"
    inf.write_text(
        f"SEQUENTIAL\n{callee_user};{caller};"
        f"[authentication username={caller} password={secret}];\n"
    )
    return run_sipp(
        sipp, scenario, ("127.0.0.1", process.port), calls=calls, rate=rate, workdir=workdir,
        extra=("-inf", str(inf), "-d", str(hold_ms), "-key", "media_port", str(free_port())),
        tag=f"-{scenario}",
    )  # fmt: skip


def records(db: Path) -> list[tuple[Any, ...]]:
    return (
        open_database(db)
        .execute(
            "SELECT caller, callee, end_reason, status, answered_at IS NOT NULL FROM call_records"
        )
        .fetchall()
    )


def test_a_thousand_calls_through_the_switch(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    before = len(records(db))
    uas = callee(sipp, process, tmp_path, "2001", "call_uas")
    try:
        result = call(sipp, process, tmp_path, "call_uac", "2001", "2002", calls=1000, rate=100)
    finally:
        uas.stop()
    assert result.returncode == 0, result.output[-3000:]
    assert (result.successful, result.failed) == (1000, 0)
    new = records(db)[before:]
    assert len(new) == 1000
    assert {(r[0], r[1], r[2], r[4]) for r in new} == {("2002", "2001", "caller hung up", 1)}
    assert open_database(db).execute("SELECT count(*) FROM active_calls").fetchone()[0] == 0


def test_hold_and_resume_with_re_invites(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, _ = office
    uas = callee(sipp, process, tmp_path, "2003", "call_uas_hold")
    try:
        result = call(sipp, process, tmp_path, "call_uac_hold", "2003", "2004")
    finally:
        uas.stop()
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]


def test_busy_callee_gives_486(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    uas = callee(sipp, process, tmp_path, "2005", "call_uas_busy")
    try:
        result = call(sipp, process, tmp_path, "call_uac_busy", "2005", "2006")
    finally:
        uas.stop()
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
    assert records(db)[-1][2:4] == ("busy", 486)


def test_cancel_before_answer(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    uas = callee(sipp, process, tmp_path, "2007", "call_uas_ring")
    try:
        result = call(sipp, process, tmp_path, "call_uac_cancel", "2007", "2008")
        assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
    finally:
        uas.stop()
    assert records(db)[-1][2:4] == ("cancelled", 487)


def test_no_answer_gives_408_after_the_ring_timeout(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    uas = callee(sipp, process, tmp_path, "2009", "call_uas_ring")
    try:
        result = call(sipp, process, tmp_path, "call_uac_noanswer", "2009", "2010")
        assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
    finally:
        uas.stop()
    assert records(db)[-1][2:4] == ("ring timeout", 408)


def test_wrong_password_gives_403(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, _ = office
    result = call(sipp, process, tmp_path, "call_uac_wrong_password", "2001", "2011", wrong=True)
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]


def test_unknown_and_unregistered_numbers(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, _ = office
    # 2020 exists but has no phone registered: 480; 2999 does not exist: 404.
    for number, status in (("2020", "480"), ("2999", "404")):
        scenario = tmp_path / f"expect_{status}.xml"
        source = (Path(__file__).parent / "scenarios" / "call_uac_busy.xml").read_text()
        scenario.write_text(source.replace('response="486"', f'response="{status}"'))
        inf = tmp_path / f"calls-{status}.csv"
        inf.write_text(
            f"SEQUENTIAL\n{number};2012;"
            f"[authentication username=2012 password={password('2012')}];\n"
        )
        out = subprocess.run(
            [sipp, f"127.0.0.1:{process.port}", "-sf", str(scenario), "-inf", str(inf),
             "-i", "127.0.0.1", "-p", str(free_port()), "-m", "1", "-nostdin",
             "-timeout", "20s", "-timeout_error", "-key", "media_port", str(free_port())],
            capture_output=True, text=True, timeout=60, cwd=tmp_path, check=False,
        )  # fmt: skip
        assert out.returncode == 0, (number, out.stdout[-2000:])


def test_a_callee_that_requires_100rel_gets_its_prack_and_transcoding_pcma(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    uas = callee(sipp, process, tmp_path, "2013", "call_uas_100rel")
    try:
        result = call(sipp, process, tmp_path, "call_uac", "2013", "2014")
    finally:
        uas.stop()
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
    errors = tmp_path / f"uas-{uas.port}-errors.log"
    assert not errors.exists() or "PRACK" not in errors.read_text()
    row = (
        open_database(db)
        .execute(
            "SELECT caller_codec, callee_codec, end_reason FROM call_records "
            "ORDER BY id DESC LIMIT 1"
        )
        .fetchone()
    )
    # The caller offered PCMU first; the callee answered PCMA only.
    assert row[2] == "caller hung up" and row[1] == "PCMA"


def test_a_late_offer_caller_answers_the_switchs_offer_in_its_ack(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    uas = callee(sipp, process, tmp_path, "2012", "call_uas")
    try:
        result = call(sipp, process, tmp_path, "call_uac_late_offer", "2012", "2013")
    finally:
        uas.stop()
    assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
    assert records(db)[-1] == ("2013", "2012", "caller hung up", 200, 1)
