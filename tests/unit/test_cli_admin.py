"""``pbx ext``/``status``/``ban``/``unban`` on a real database file, run as the command runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pbx.cli import main
from pbx.store.bans import save_ban
from pbx.store.database import open_database
from pbx.store.records import SourceBan


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = str(tmp_path / "pbx.db")

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, [*args, "--db", db])

    invoke.db = db  # type: ignore[attr-defined]
    return invoke


def numbers(run) -> list[str]:  # type: ignore[no-untyped-def]
    return [row["number"] for row in json.loads(run("ext", "list", "--json").output)]


def test_add_generates_a_strong_password_and_prints_it_once(run) -> None:  # type: ignore[no-untyped-def]
    result = run("ext", "add", "201", "--name", "Reception")
    assert result.exit_code == 0
    password = result.output.split("password: ")[1].split()[0]
    assert len(password) >= 16
    listing = run("ext", "list")
    assert "Reception" in listing.output and password not in listing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ext", "add", "2x1"), "2 to 8 digits"),
        (("ext", "add", "201", "--password", "short"), "at least 12"),
        (("ext", "rm", "299"), "no extension 299"),
        (("ext", "passwd", "299"), "no extension 299"),
        (("unban", "not-an-address"), "not an IP address"),
        (("unban", "198.51.100.7"), "not banned"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_changes_nothing(run, args, message) -> None:  # type: ignore[no-untyped-def]
    run("ext", "add", "201", "--password", "long-enough-password")
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert numbers(run) == ["201"]


def test_duplicate_is_refused(run) -> None:  # type: ignore[no-untyped-def]
    assert run("ext", "add", "201", "--name", "A").exit_code == 0
    result = run("ext", "add", "201", "--name", "B")
    assert result.exit_code == 2 and "already exists" in result.output


def test_rm_and_passwd(run) -> None:  # type: ignore[no-untyped-def]
    run("ext", "add", "201")
    run("ext", "add", "202")
    changed = run("ext", "passwd", "201")
    assert changed.exit_code == 0 and "password: " in changed.output
    assert run("ext", "rm", "201").exit_code == 0
    assert numbers(run) == ["202"]


def test_import_all_rows_or_none(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "good.csv"
    good.write_text("number,name,password\n301,Alice,long-enough-password\n302,Bob,\n")
    result = run("ext", "import", str(good))
    assert result.exit_code == 0 and "2 extensions imported" in result.output
    assert "302 password: " in result.output  # the empty one was generated
    bad = tmp_path / "bad.csv"
    bad.write_text("401,Carol,long-enough-password\n402,Dave,short\n")
    result = run("ext", "import", str(bad))
    assert (
        result.exit_code == 2
        and "row 2" in result.output
        and "nothing was imported" in result.output
    )
    assert numbers(run) == ["301", "302"]
    missing = run("ext", "import", str(tmp_path / "missing.csv"))
    assert missing.exit_code == 2


def test_status_and_bans(run) -> None:  # type: ignore[no-untyped-def]
    db = open_database(run.db)
    save_ban(
        db,
        SourceBan(
            address="198.51.100.7",
            banned_at=0.0,
            until=4e9,
            failures=10,
            reason="10 auth failures in 60s",
        ),
    )
    report = json.loads(run("status", "--json").output)
    assert report["registrations"] == []
    assert [b["address"] for b in report["bans"]] == ["198.51.100.7"]
    assert "198.51.100.7" in run("ban", "list").output
    assert run("unban", "198.51.100.7").exit_code == 0
    assert json.loads(run("ban", "list", "--json").output) == []


def test_the_database_comes_from_the_environment(tmp_path: Path) -> None:
    db = tmp_path / "env.db"
    result = CliRunner().invoke(main, ["ext", "add", "201"], env={"SWITCHBOARD_DB": str(db)})
    assert result.exit_code == 0 and db.exists()


def test_the_password_is_kept_only_when_the_admin_asks(run) -> None:  # type: ignore[no-untyped-def]
    run("ext", "add", "201", "--password", "hashed-only-password")
    run("ext", "add", "202", "--password", "kept-for-provisioning", "--keep-password")
    db = open_database(run.db)
    rows = dict(db.execute("SELECT number, provisioning_password FROM extensions").fetchall())
    assert rows == {"201": None, "202": "kept-for-provisioning"}


def test_line_decode_reads_a_recording(tmp_path: Path) -> None:
    """``pbx line decode`` runs the gateway's decoder (a separate program: pbx never imports it)."""
    import subprocess
    import sys
    import wave

    import numpy as np

    from gateway_fxo.dsp.dtmf_generate import generate_dtmf

    samples = np.asarray(generate_dtmf("42", level_dbm0=-10.0), dtype=np.int16)
    path = tmp_path / "digits.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(samples.tobytes())
    out = subprocess.run(
        [sys.executable, "-m", "pbx.cli", "line", "decode", str(path), "--country", "DE"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert [d["digit"] for d in json.loads(out.stdout)["dtmf"]] == ["4", "2"]
    missing = subprocess.run(
        [sys.executable, "-m", "pbx.cli", "line", "decode", str(tmp_path / "none.wav")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2


def digest_of(run, number: str) -> str | None:  # type: ignore[no-untyped-def]
    rows = json.loads(run("ext", "list", "--json").output)
    return next(row["digest_algorithms"] for row in rows if row["number"] == number)  # type: ignore[no-any-return]


def test_digest_choice_on_add_and_set(run) -> None:  # type: ignore[no-untyped-def]
    assert run("ext", "add", "201", "--digest", "SHA-256").exit_code == 0
    assert digest_of(run, "201") == "SHA-256"
    assert run("ext", "add", "202").exit_code == 0
    assert digest_of(run, "202") is None  # the box's default (MD5)
    assert run("ext", "set", "202", "--digest", "sha-256,md5").exit_code == 0
    assert digest_of(run, "202") == "SHA-256,MD5"
    assert run("ext", "set", "202", "--digest", "default").exit_code == 0
    assert digest_of(run, "202") is None
    assert "default" in run("ext", "list").output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("ext", "add", "203", "--digest", "SHA-1"), "digest algorithms must be"),
        (("ext", "set", "201", "--digest", "MD5,MD5"), "listed twice"),
        (("ext", "set", "299", "--digest", "MD5"), "no extension 299"),
        (("ext", "set", "201"), "nothing to change"),
    ],
)
def test_bad_digest_choices_are_one_line_and_change_nothing(run, args, message) -> None:  # type: ignore[no-untyped-def]
    assert run("ext", "add", "201", "--digest", "SHA-256").exit_code == 0
    result = run(*args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert digest_of(run, "201") == "SHA-256"
    assert "203" not in numbers(run)
