"""``pbx ext set`` for forwarding, DND, redirect, PIN and name; ``pbx ext list --json`` shows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pbx.cli import main


class Cli:
    def __init__(self, db: Path) -> None:
        self.db = str(db)

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--db", self.db])

    def row(self, number: str) -> dict[str, Any]:
        rows = json.loads(self("ext", "list", "--json").output)
        return next(r for r in rows if r["number"] == number)  # type: ignore[no-any-return]


@pytest.fixture
def run(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "pbx.db")
    for number in ("201", "202"):
        assert cli("ext", "add", number, "--password", "long-enough-password").exit_code == 0
    return cli


def test_every_forward_is_set_shown_and_turned_off(run: Cli) -> None:
    result = run(
        "ext", "set", "201", "--forward-always", "202", "--forward-busy", "202",
        "--forward-no-answer", "95551234", "--forward-after", "30",
        "--forward-unregistered", "202", "--dnd", "--name", "Front desk",
        "--voicemail-pin", "4321", "--no-outbound",
    )  # fmt: skip
    # An outside forward with outbound taken away in the same command: refused as a whole.
    assert result.exit_code == 2 and "may not call out" in result.output
    assert run.row("201")["forward_always"] is None and run.row("201")["name"] == ""
    result = run(
        "ext", "set", "201", "--forward-always", "202", "--forward-busy", "202",
        "--forward-no-answer", "95551234", "--forward-after", "30",
        "--forward-unregistered", "202", "--dnd", "--name", "Front desk",
        "--voicemail-pin", "4321",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = run.row("201")
    assert {k: row[k] for k in row if k.startswith(("forward", "dnd", "redirect"))} == {
        "forward_always": "202", "forward_busy": "202", "forward_no_answer": "95551234",
        "forward_after": 30, "forward_unregistered": "202", "dnd": True, "redirect": False,
    }  # fmt: skip
    assert row["name"] == "Front desk" and row["voicemail_pin_set"] and row["outbound_allowed"]
    assert "always -> 202" in run("ext", "list").output
    off = run(
        "ext", "set", "201", "--no-forward-always", "--no-forward-busy",
        "--no-forward-no-answer", "--no-forward-unregistered", "--no-dnd", "--no-voicemail-pin",
    )  # fmt: skip
    assert off.exit_code == 0, off.output
    row = run.row("201")
    assert [row["forward_always"], row["forward_busy"], row["forward_no_answer"],
            row["forward_unregistered"], row["dnd"], row["voicemail_pin_set"]] == [
        None, None, None, None, False, False]  # fmt: skip
    assert row["forward_after"] == 30  # the delay is kept for the next no-answer forward


def test_redirect_to_a_uri_on_another_server(run: Cli) -> None:
    uri = "sip:bob@elsewhere.example.com"
    assert run("ext", "set", "202", "--redirect", "--forward-always", uri).exit_code == 0
    row = run.row("202")
    assert row["redirect"] and row["forward_always"] == uri
    assert run("ext", "set", "202", "--no-redirect").exit_code == 2  # the URI needs it
    assert run("ext", "set", "202", "--no-redirect", "--no-forward-always").exit_code == 0
    assert not run.row("202")["redirect"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--forward-always", "299"), "neither an extension nor an outside number"),
        (("--forward-always", "201"), "cannot forward to itself"),
        (("--forward-busy", "911"), "emergency"),
        (("--forward-always", "sip:bob@example.com"), "turn redirect on"),
        (("--forward-no-answer", "202", "--forward-after", "3"), "from 5 to 300"),
        (("--forward-after", "ten"), "from 5 to 300"),
        (("--forward-always", "202", "--no-forward-always"), "choose one"),
        (("--forward-always", ""), "give a DEST"),
        (("--voicemail-pin", "12"), "4 to 8 digits"),
        (("--voicemail-pin", "1234", "--no-voicemail-pin"), "choose one"),
        (("--name", 'a "quote"', "--forward-always", "202"), "quotes"),
        ((), "nothing to change"),
    ],
)
def test_bad_values_are_one_line_exit_2_and_change_nothing(
    run: Cli, args: tuple[str, ...], message: str
) -> None:
    before = run("ext", "list", "--json").output
    result = run("ext", "set", "201", *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert run("ext", "list", "--json").output == before


def test_an_unknown_extension_is_one_line(run: Cli) -> None:
    result = run("ext", "set", "299", "--dnd")
    assert result.exit_code == 2 and result.output.strip() == "pbx: no extension 299"


def test_outbound_alone_still_works(run: Cli) -> None:
    assert run("ext", "set", "201", "--no-outbound").exit_code == 0
    assert run.row("201")["outbound_allowed"] is False
