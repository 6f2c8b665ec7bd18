"""The registrar in the real ``pbx serve`` process, over loopback UDP, with the real CLI."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pbx.sip.auth import DigestAlgorithm
from pbx.sip.digest_grammar import parse_challenge
from pbx.store.database import open_database
from tests.support.cli import pbx
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess

PASSWORD = "integration-pass-{n}"


def status(db: Path) -> dict[str, Any]:
    result = pbx(db, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll a condition on the switch's database until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "switchboard.db"
    for n in ("201", "202", "203"):
        result = pbx(path, "ext", "add", n, "--password", PASSWORD.format(n=n))
        assert result.returncode == 0, result.stderr
    return path


def switch(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> SwitchProcess:
    return SwitchProcess(tmp_path, *args, env=env)


def test_a_phone_registers_with_sha256_and_status_shows_it(tmp_path: Path, db: Path) -> None:
    """The per-extension digest setting under test: SHA-256 offered first for 201."""
    chosen = pbx(db, "ext", "set", "201", "--digest", "sha-256,md5")
    assert chosen.returncode == 0, chosen.stderr
    with switch(tmp_path) as process:
        phone = SipPhone("201", PASSWORD.format(n="201"), ("127.0.0.1", process.port))
        try:
            challenge = phone.exchange(phone.register_request())
            algorithms = [
                parse_challenge(v).algorithm.value
                for v in challenge.headers.get_all("www-authenticate")
            ]
            assert challenge.status == 401 and algorithms == ["SHA-256", "MD5"]
            ok = phone.register()
            assert ok.status == 200
            assert ok.headers.values("contact") == [f"<sip:201@127.0.0.1:{phone.port}>;expires=300"]
            [entry] = status(db)["registrations"]
            assert entry["extension"] == "201"
            assert entry["source"] == f"udp:127.0.0.1:{phone.port}"
            assert entry["auth_algorithm"] == "SHA-256"
            assert 295 <= entry["expires_in"] <= 300
            assert phone.register(expires=0).status == 200
            assert status(db)["registrations"] == []
        finally:
            phone.close()


def test_the_default_offer_is_md5_alone_and_an_md5_phone_registers(
    tmp_path: Path, db: Path
) -> None:
    with switch(tmp_path) as process:
        phone = SipPhone("202", PASSWORD.format(n="202"), ("127.0.0.1", process.port))
        try:
            challenge = phone.exchange(phone.register_request())
            offered = [
                parse_challenge(v).algorithm.value
                for v in challenge.headers.get_all("www-authenticate")
            ]
            assert (challenge.status, offered) == (401, ["MD5"])
            assert phone.register().status == 200
            [entry] = status(db)["registrations"]
            assert (entry["extension"], entry["auth_algorithm"]) == ("202", "MD5")
        finally:
            phone.close()


def test_an_extension_set_to_sha256_only_refuses_an_md5_answer(tmp_path: Path, db: Path) -> None:
    assert pbx(db, "ext", "set", "203", "--digest", "SHA-256").returncode == 0
    with switch(tmp_path) as process:
        phone = SipPhone("203", PASSWORD.format(n="203"), ("127.0.0.1", process.port))
        try:
            challenge = phone.exchange(phone.register_request())
            [only] = challenge.headers.get_all("www-authenticate")
            assert parse_challenge(only).algorithm.value == "SHA-256"
            # A downgraded answer (MD5 over the SHA-256 challenge's nonce) is refused like a
            # wrong password.
            answer = phone.answer(challenge, algorithm=DigestAlgorithm.MD5)
            assert phone.exchange(phone.register_request(authorization=answer)).status == 403
            assert phone.register().status == 200  # the right answer still works
            [entry] = status(db)["registrations"]
            assert entry["auth_algorithm"] == "SHA-256"
        finally:
            phone.close()


def test_unknown_and_known_extensions_get_the_same_answers(tmp_path: Path, db: Path) -> None:
    with switch(tmp_path) as process:
        known = SipPhone("201", "wrong-password-1", ("127.0.0.1", process.port))
        unknown = SipPhone("299", "wrong-password-1", ("127.0.0.1", process.port))
        try:
            answers = []
            for phone in (known, unknown):
                first = phone.exchange(phone.register_request())
                second = phone.register()
                answers.append(
                    [
                        (r.status, r.reason, [n for n, _ in r.headers if n != "Via"])
                        for r in (first, second)
                    ]
                )
            assert answers[0] == answers[1]
            assert [status for status, _, _ in answers[0]] == [401, 403]
        finally:
            known.close()
            unknown.close()


def test_qualify_records_reachability_and_round_trip(tmp_path: Path, db: Path) -> None:
    with switch(tmp_path, env={"SWITCHBOARD_QUALIFY_INTERVAL": "1"}) as process:
        phone = SipPhone("202", PASSWORD.format(n="202"), ("127.0.0.1", process.port))
        try:
            assert phone.register().status == 200
            phone.answer_options_until(2, timeout=10)

            def reachable() -> Any:
                rows = status(db)["registrations"]
                return rows if rows and rows[0]["reachable"] is True else None

            [row] = wait_until(reachable, 10, "the phone to be qualified")
            assert row["rtt_ms"] is not None and 0 <= row["rtt_ms"] < 1000
        finally:
            phone.close()


def test_bindings_survive_sigkill_and_restart(tmp_path: Path, db: Path) -> None:
    phones = []
    with switch(tmp_path) as process:
        for n in ("201", "202", "203"):
            phone = SipPhone(n, PASSWORD.format(n=n), ("127.0.0.1", process.port))
            phones.append(phone)
            assert phone.register(expires=600).status == 200
        assert process.stop(signal.SIGKILL) == -signal.SIGKILL
    try:
        before = status(db)["registrations"]
        assert sorted(r["extension"] for r in before) == ["201", "202", "203"]
        with switch(tmp_path) as process:
            # The restarted switch knows the bindings: a refresh lists exactly one contact.
            phone = phones[0]
            phone.switch = ("127.0.0.1", process.port)
            refreshed = phone.register(expires=600)
            assert refreshed.status == 200
            assert len(refreshed.headers.values("contact")) == 1
            assert len(status(db)["registrations"]) == 3
    finally:
        for phone in phones:
            phone.close()


def test_bindings_expire_by_themselves(tmp_path: Path, db: Path) -> None:
    env = {"SWITCHBOARD_REGISTER_MIN_EXPIRES": "1"}
    with switch(tmp_path, env=env) as process:
        phone = SipPhone("203", PASSWORD.format(n="203"), ("127.0.0.1", process.port))
        try:
            assert phone.register(expires=1).status == 200
            rows = pbx(db, "ext", "list", "--json")
            assert json.loads(rows.stdout)[2]["registered"] == 1
            # Expired rows leave the database itself, not only the status view.
            store = open_database(db)

            def rows_left() -> int:
                return int(store.execute("SELECT count(*) FROM registrations").fetchone()[0])

            assert rows_left() == 1
            process.wait_for(re.compile("event=binding_expired aor=203"), timeout=10)
            wait_until(lambda: rows_left() == 0, 5, "the expired row to be deleted")
        finally:
            phone.close()
