"""``pbx line ring | hangup | status``: play the exchange of the simulated line from a shell.

``pbx`` hands these commands over to this program (``python -m gateway_fxo.sim_line_cli``), as
it does ``pbx line decode``: pbx never imports the gateway, and the control protocol and the
address file stay in the one package that serves them. The line is found from the database
path (``--db``, as every ``pbx`` command takes): the gateway publishes its control address
beside the database (gateway_fxo.sim_address). Every error, bad input or no line running, is
one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from gateway_fxo.dsp.callerid import MAX_NAME, MAX_NUMBER
from gateway_fxo.sim_address import AddressFileError, read_address
from gateway_fxo.sim_control import SimControlClient, SimControlError
from pbx.config import Settings

PROG = "pbx line"
MAX_RINGS = 100


class UsageError(Exception):
    """Bad input or no line to talk to: the one line the user reads."""


class _Parser(argparse.ArgumentParser):
    """argparse, but its errors are one line (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        fail(f"{self.prog}: {message}")


def fail(message: str) -> NoReturn:
    print(message if message.startswith(PROG) else f"{PROG}: {message}", file=sys.stderr)
    sys.exit(2)


def caller_number(text: str) -> str:
    if not text.isascii() or not text.isdigit() or len(text) > MAX_NUMBER:
        raise argparse.ArgumentTypeError(
            f"the caller's number is digits only (up to {MAX_NUMBER}), not {text!r}"
        )
    return text


def caller_name(text: str) -> str:
    if not text or not text.isascii() or not text.isprintable() or len(text) > MAX_NAME:
        raise argparse.ArgumentTypeError(
            f"the caller's name is 1 to {MAX_NAME} plain ASCII characters, not {text!r}"
        )
    return text


def ring_count(text: str) -> int:
    try:
        rings = int(text)
    except ValueError:
        rings = 0
    if not 1 <= rings <= MAX_RINGS:
        raise argparse.ArgumentTypeError(f"rings is a whole number from 1 to {MAX_RINGS}")
    return rings


def parser() -> argparse.ArgumentParser:
    db_default = Path(os.environ.get("SWITCHBOARD_DB") or Settings().db)
    common = _Parser(add_help=False)
    common.add_argument(
        "--db", type=Path, default=db_default,
        help=f"the database the line gateway uses (default: {db_default})",
    )  # fmt: skip
    top = _Parser(prog=PROG, description="Play the exchange of the simulated phone line.")
    commands = top.add_subparsers(dest="command", required=True, metavar="ring|hangup|status")
    ring = commands.add_parser(
        "ring", parents=[common], help="ring the line",
        description="The exchange rings the line, with caller ID; the gateway offers the call "
        "to the office phones as for a real call.",
    )  # fmt: skip
    ring.add_argument("--from", dest="number", type=caller_number, help="caller's number")
    ring.add_argument("--name", type=caller_name, help="caller's name")
    ring.add_argument("--rings", type=ring_count, help="rings before the caller gives up")
    commands.add_parser(
        "hangup", parents=[common], help="the far party hangs up",
        description="The far party hangs up; while the line rings, the caller gives up.",
    )  # fmt: skip
    status = commands.add_parser(
        "status", parents=[common], help="the line's state in plain words",
        description="What the exchange sees: idle, ringing, off hook or in call, and who calls.",
    )  # fmt: skip
    status.add_argument("--json", dest="as_json", action="store_true", help="print JSON")
    return top


def connect(db: Path) -> SimControlClient:
    """A client for the simulated line of ``db``'s gateway (UsageError when there is none)."""
    try:
        address = read_address(db)
    except AddressFileError as error:
        raise UsageError(str(error)) from None
    if address is None:
        raise UsageError(
            f"no simulated line is running for {db} "
            "(start one with `pbx up`, or give --db the database of the one that runs)"
        )
    return SimControlClient(*address)


def request(client: SimControlClient, op: str, **params: Any) -> dict[str, Any]:
    """One op; the line's refusal or a dead gateway become UsageError."""
    where = f"{client.host}:{client.port}"
    try:
        return client.request(op, **params)
    except ConnectionRefusedError:
        raise UsageError(
            f"no simulated line is running: nothing listens on {where} (start one with `pbx up`)"
        ) from None
    except TimeoutError:
        raise UsageError(f"the simulated line on {where} does not answer") from None
    except OSError as error:
        raise UsageError(f"cannot reach the simulated line on {where}: {error}") from None
    except ValueError:  # not JSON: something else listens on that port
        raise UsageError(f"{where} is not a simulated line") from None
    except SimControlError as error:
        raise UsageError(f"the simulated line says: {error}") from None


def line_state(client: SimControlClient) -> dict[str, Any]:
    state = request(client, "state").get("state")
    if not isinstance(state, dict):
        raise UsageError(f"{client.host}:{client.port} is not a simulated line")
    return state


def who(state: dict[str, Any]) -> str:
    number, name = state.get("caller_number"), state.get("caller_name")
    if number and name:
        return f'{number} "{name}"'
    if number or name:
        return f"{number}" if number else f'"{name}"'
    return "a caller without caller ID"


def describe(state: dict[str, Any]) -> str:
    """The line's state in plain words (one line)."""
    phase, digits = state.get("phase"), state.get("digits") or ""
    rings = state.get("rings") or 0
    other = who(state) if state.get("direction") == "inbound" else digits
    words = {
        "idle": "idle (on hook)",
        "ringing": f"ringing: {who(state)} is calling" + (f" (ring {rings})" if rings else ""),
        "dial_tone": "off hook: dial tone",
        "dialling": f"off hook: dialling {digits}",
        "ringback": f"off hook: calling {digits}, it rings",
        "busy": f"off hook: {digits} is busy",
        "connected": f"in call with {other}",
        "cleared": "off hook: the far party hung up",
        "dead": "off hook: no line voltage",
    }.get(str(phase), f"{phase}")
    if not state.get("line_voltage", True) and phase != "dead":
        words += ", no line voltage"
    return words


def run(options: argparse.Namespace) -> str:
    """Carry out one command; what to print."""
    client = connect(options.db)
    with client:
        if options.command == "ring":
            request(client, "place_inbound_call", number=options.number, name=options.name,
                    rings=options.rings)  # fmt: skip
            caller = who({"caller_number": options.number, "caller_name": options.name})
            return f"the line rings: {caller} is calling (`pbx line hangup` gives up)"
        if options.command == "hangup":
            ringing = line_state(client).get("phase") == "ringing"
            request(client, "far_end_hangup")
            if ringing:
                return "the caller gave up: the line stops ringing"
            return "the far party hung up"
        state = line_state(client)
        if options.as_json:
            return json.dumps({**state, "summary": describe(state)}, indent=2)
        return f"simulated line: {describe(state)}"


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    try:
        print(run(options))
    except UsageError as error:
        fail(f"{PROG} {options.command}: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
