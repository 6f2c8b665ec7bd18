"""SIPp phones register against ``pbx serve``; sipvicious attacks it.

SIPp 3.6.1 answers only the first ``algorithm=`` it sees in a 401, and cannot do SHA-256
(its createAuthHeader knows MD5 and AKAv1-MD5): the switch's default offer, MD5 alone, is what
it gets here, as every phone does until its extension chooses SHA-256
(tests/integration/test_registrar.py covers that setting with a SHA-256 phone).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import pbx
from tests.support.sipp import run_sipp
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool

USERS = range(1000, 2000)


def password(user: int) -> str:
    return f"pw{user}-Registrar-Test"


def status(db: Path) -> dict[str, Any]:
    result = pbx(db, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def injection(path: Path, users: range, *, wrong: bool = False) -> Path:
    lines = ["SEQUENTIAL"]
    for user in users:
        secret = "not-the-password-123" if wrong else password(user)
        lines.append(f"{user};[authentication username={user} password={secret}];")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def sipp() -> str:
    return require_tool("sipp", "sip-tester")


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SwitchProcess, Path]]:
    folder = tmp_path_factory.mktemp("office")
    db = folder / "switchboard.db"
    table = folder / "users.csv"
    table.write_text(
        "number,name,password\n" + "".join(f"{u},Phone {u},{password(u)}\n" for u in USERS)
    )
    imported = pbx(db, "ext", "import", str(table))
    assert imported.returncode == 0, imported.stderr
    with SwitchProcess(folder, "--log-level", "warning") as process:
        yield process, db


def register(sipp: str, process: SwitchProcess, workdir: Path, users: range, **kw: Any) -> Any:
    expires = kw.pop("expires", 3600)
    scenario = kw.pop("scenario", "register_auth")
    inf = injection(workdir / f"users-{kw.get('tag', '')}.csv", users, wrong=kw.pop("wrong", False))
    return run_sipp(
        sipp, scenario, ("127.0.0.1", process.port),
        calls=len(users), rate=kw.pop("rate", 500), workdir=workdir,
        extra=("-inf", str(inf), "-key", "expires", str(expires), "-key", "contact_port", "5999"),
        **kw,
    )  # fmt: skip


def test_a_thousand_extensions_register_refresh_and_unregister(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    first = register(sipp, process, tmp_path, USERS, tag="first")
    assert first.returncode == 0, first.output[-3000:]
    assert (first.successful, first.failed) == (1000, 0)
    registrations = status(db)["registrations"]
    assert len(registrations) == 1000
    assert {r["extension"] for r in registrations} == {str(u) for u in USERS}
    assert {r["auth_algorithm"] for r in registrations} == {"MD5"}

    again = register(sipp, process, tmp_path, USERS, tag="refresh")
    assert (again.successful, again.failed) == (1000, 0), again.output[-3000:]
    assert len(status(db)["registrations"]) == 1000  # refreshed, not piled up

    gone = register(sipp, process, tmp_path, range(1000, 1100), expires=0, tag="unreg")
    assert (gone.successful, gone.failed) == (100, 0), gone.output[-3000:]
    assert len(status(db)["registrations"]) == 900


def test_wrong_passwords_get_403(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    # From an allowed... no: from its own source, few enough not to be banned.
    result = register(
        sipp, process, tmp_path, range(1900, 1905), scenario="register_wrong_password",
        wrong=True, tag="wrong", local_ip="127.0.0.4",
    )  # fmt: skip
    assert (result.successful, result.failed) == (5, 0), result.output[-3000:]
    assert status(db)["bans"] == []


def answered(port: int, source: str, timeout: float) -> bool:
    """Whether the switch answers an OPTIONS from ``source`` within ``timeout`` seconds."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        local = sock.getsockname()[1]
        sock.settimeout(timeout)
        sock.sendto(
            (
                f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {source}:{local};branch=z9hG4bK-ban-{time.monotonic_ns()}\r\n"
                f"From: <sip:probe@{source}>;tag=b\r\nTo: <sip:127.0.0.1>\r\n"
                f"Call-ID: ban-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\n"
                "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
            ).encode(),
            ("127.0.0.1", port),
        )
        try:
            sock.recvfrom(65535)
        except TimeoutError:
            return False
        return True


def test_a_brute_force_burst_is_banned_while_others_still_register(
    sipp: str, office: tuple[SwitchProcess, Path], tmp_path: Path
) -> None:
    process, db = office
    attacker, colleague = "127.0.0.2", "127.0.0.3"
    burst = register(
        sipp, process, tmp_path, range(1500, 1510), scenario="register_wrong_password",
        wrong=True, tag="burst", local_ip=attacker, rate=100,
    )  # fmt: skip
    assert (burst.successful, burst.failed) == (10, 0), burst.output[-3000:]
    bans = status(db)["bans"]
    assert [b["address"] for b in bans] == [attacker]
    assert bans[0]["remaining"] > 3000
    # The attacker now gets silence; another source still registers.
    assert not answered(process.port, attacker, timeout=1.0)
    fine = register(sipp, process, tmp_path, range(1600, 1610), tag="colleague", local_ip=colleague)
    assert (fine.successful, fine.failed) == (10, 0), fine.output[-3000:]
    assert answered(process.port, colleague, timeout=5.0)
    # The admin lifts the ban; the running switch notices within seconds.
    assert pbx(db, "unban", attacker).returncode == 0
    deadline = time.monotonic() + 10
    while not answered(process.port, attacker, timeout=0.5):
        assert time.monotonic() < deadline, "the unban did not reach the switch"


def test_svwar_finds_no_extensions(office: tuple[SwitchProcess, Path], tmp_path: Path) -> None:
    svwar = require_tool("svwar", "sipvicious")
    process, _ = office
    for method in ("REGISTER", "OPTIONS", "INVITE"):
        result = subprocess.run(
            [svwar, "--force", "-e1990-2010", "-m", method, "-p", str(process.port), "127.0.0.1"],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        )  # fmt: skip
        output = result.stdout + result.stderr
        # Extensions 1990-1999 exist and 2000-2010 do not: svwar cannot tell them apart.
        assert "found nothing" in output, output[-2000:]
        assert "1995" not in result.stdout


def test_svcrack_is_banned_before_it_reaches_the_password(tmp_path: Path) -> None:
    svcrack = require_tool("svcrack", "sipvicious")
    db = tmp_path / "switchboard.db"
    assert pbx(db, "ext", "add", "201", "--password", "Secret-Password-201").returncode == 0
    words = tmp_path / "words.txt"
    words.write_text("".join(f"guess{i}-password\n" for i in range(30)) + "Secret-Password-201\n")
    with SwitchProcess(tmp_path) as process:
        result = subprocess.run(
            [svcrack, "-u", "201", "-d", str(words), "-p", str(process.port), "127.0.0.1"],
            capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        )  # fmt: skip
        output = result.stdout + result.stderr
        assert "Secret-Password-201" not in output and "found nothing" in output, output[-2000:]
        assert [b["address"] for b in status(db)["bans"]] == ["127.0.0.1"]
