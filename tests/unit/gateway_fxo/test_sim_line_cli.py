"""``pbx line ring | hangup | status`` (gateway_fxo.sim_line_cli): its argument checking, the
address file the gateway publishes, the plain words of each line state, and its one-line
errors when no line runs. The whole path through real processes is in
tests/integration/test_line_cli.py."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from gateway_fxo.backends.sim import SimulatedLine
from gateway_fxo.sim_address import (
    AddressFileError,
    address_file,
    read_address,
    remove_address,
    write_address,
)
from gateway_fxo.sim_line_cli import describe, main, parser


def one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run the program, expecting exit status 2 and exactly one line on stderr."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    return err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["ring", "--from", "abc"], "digits only"),
        (["ring", "--from", "555-1234"], "digits only"),
        (["ring", "--from", "1" * 21], "up to 20"),
        (["ring", "--from", "５５５"], "digits only"),  # fullwidth digits are not ASCII
        (["ring", "--name", ""], "1 to 50"),
        (["ring", "--name", "x" * 51], "1 to 50"),
        (["ring", "--name", "Café"], "plain ASCII"),
        (["ring", "--name", "a\tb"], "plain ASCII"),
        (["ring", "--rings", "0"], "1 to 100"),
        (["ring", "--rings", "many"], "1 to 100"),
        (["ring", "--from"], "expected one argument"),
        (["status", "--verbose"], "unrecognized arguments"),
        (["dial"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], says: str
) -> None:
    err = one_error_line(capsys, [*argv, *(["--db", str(tmp_path / "x.db")] if argv else [])])
    assert err.startswith("pbx line") and says in err, err


def test_bad_input_is_refused_before_looking_for_a_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    err = one_error_line(capsys, ["ring", "--from", "abc", "--db", str(tmp_path / "x.db")])
    assert "no simulated line" not in err and "'abc'" in err


def test_good_arguments() -> None:
    options = parser().parse_args(
        ["ring", "--from", "5551234", "--name", "ACME CORP", "--rings", "3", "--db", "a.db"]
    )
    assert (options.number, options.name, options.rings, options.db) == (
        "5551234", "ACME CORP", 3, Path("a.db"),
    )  # fmt: skip
    options = parser().parse_args(["ring"])  # no caller ID: the line just rings
    assert (options.number, options.name, options.rings) == (None, None, None)
    assert parser().parse_args(["status", "--json"]).as_json is True


def test_the_database_comes_from_the_environment_like_every_pbx_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWITCHBOARD_DB", "/srv/office.db")
    assert parser().parse_args(["hangup"]).db == Path("/srv/office.db")
    monkeypatch.delenv("SWITCHBOARD_DB")
    assert parser().parse_args(["hangup"]).db == Path("data/switchboard.db")  # pbx up's


def test_no_line_running_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "switchboard.db"
    for command in (["ring", "--from", "5551234"], ["hangup"], ["status", "--json"]):
        err = one_error_line(capsys, [*command, "--db", str(db)])
        assert f"no simulated line is running for {db}" in err and "pbx up" in err, err


def test_a_gateway_that_died_without_withdrawing_its_address(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "switchboard.db"
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_address(db, "127.0.0.1", port)
    err = one_error_line(capsys, ["status", "--db", str(db)])
    assert f"nothing listens on 127.0.0.1:{port}" in err, err


def test_the_address_file(tmp_path: Path) -> None:
    db = tmp_path / "switchboard.db"
    assert read_address(db) is None
    path = write_address(db, "127.0.0.1", 40123)
    assert path == address_file(db) == tmp_path / "switchboard.db.sim-line"
    assert read_address(db) == ("127.0.0.1", 40123)
    remove_address(db, "127.0.0.1", 40124)  # another gateway's address since: left alone
    assert read_address(db) == ("127.0.0.1", 40123)
    remove_address(db, "127.0.0.1", 40123)
    assert read_address(db) is None and list(tmp_path.iterdir()) == []
    remove_address(db, "127.0.0.1", 40123)  # twice is fine


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1]",
        '{"host": "127.0.0.1"}',
        '{"host": 1, "port": 2}',
        '{"host": "127.0.0.1", "port": 70000}',
    ],
)
def test_a_damaged_address_file_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str
) -> None:
    db = tmp_path / "switchboard.db"
    address_file(db).write_text(text)
    with pytest.raises(AddressFileError):
        read_address(db)
    err = one_error_line(capsys, ["hangup", "--db", str(db)])
    assert "does not hold a control address" in err, err


def test_plain_words_for_each_state() -> None:
    line = SimulatedLine()
    idle = line.state().as_json()
    assert describe(idle) == "idle (on hook)"
    line.place_inbound_call("5551234", "ACME")
    ringing = line.state().as_json()
    assert (ringing["caller_number"], ringing["caller_name"]) == ("5551234", "ACME")
    assert describe(ringing) == 'ringing: 5551234 "ACME" is calling'  # before ring 1
    assert describe({**ringing, "rings": 2}) == 'ringing: 5551234 "ACME" is calling (ring 2)'
    line.far_end_hangup()
    assert describe(line.state().as_json()) == "idle (on hook)"
    assert describe({**ringing, "caller_name": None}).startswith("ringing: 5551234 is calling")
    assert "without caller ID" in describe({**ringing, "caller_number": None, "caller_name": None})
    answered = {**ringing, "phase": "connected", "direction": "inbound"}
    assert describe(answered) == 'in call with 5551234 "ACME"'
    dialled = {**idle, "direction": "outbound", "digits": "5550100"}
    assert describe({**dialled, "phase": "connected"}) == "in call with 5550100"
    assert describe({**dialled, "phase": "ringback"}) == "off hook: calling 5550100, it rings"
    assert describe({**idle, "phase": "dial_tone"}) == "off hook: dial tone"
    assert describe({**idle, "line_voltage": False}) == "idle (on hook), no line voltage"
    assert describe({**idle, "phase": "dead", "line_voltage": False}) == (
        "off hook: no line voltage"
    )
    json.dumps(ringing)  # what --json prints is plain JSON
