"""``pbx ext``, ``pbx status``, ``pbx ban`` and ``pbx unban``: the office's admin by hand.

Every command opens the shared database directly (the switch sees the changes: it reads
extensions on each authentication and reloads bans and removals every few seconds). Bad
input is one line on stderr and exit status 2, and changes nothing.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from sqlite_utils import Database

from pbx.config import Settings
from pbx.store.admins import setup_code
from pbx.store.bans import active_bans, remove_ban
from pbx.store.calls import active_calls, call_records
from pbx.store.database import open_database
from pbx.store.extensions import (
    Extension,
    ExtensionError,
    add_extension,
    add_extensions,
    generate_password,
    has_voicemail_pin,
    list_extensions,
    remove_extension,
    set_password,
)
from pbx.store.forwarding import ForwardingChange, update_extension_and_forwarding
from pbx.store.records import ForwardingRecord
from pbx.store.registrations import load_bindings

DEFAULT_DB = Settings().db


def fail(message: str) -> NoReturn:
    click.echo(f"pbx: {message}", err=True)
    sys.exit(2)


def db_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--db",
        "db_path",
        envvar="SWITCHBOARD_DB",
        type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_DB,
        show_default=True,
        help="the SQLite database the switch uses",
    )(func)


def _open(db_path: Path) -> Database:
    try:
        return open_database(db_path)
    except Exception as exc:  # sqlite3.Error, OSError: one line for the admin
        fail(f"cannot open {db_path}: {exc}")


_DIGEST_OPTION = click.option(
    "--digest",
    default=None,
    metavar="ALGORITHMS",
    help="digest algorithms its phones are challenged with: MD5 (the default, every phone), "
    "SHA-256,MD5 (SHA-256 first, for phones that skip what they cannot answer), SHA-256 "
    "(phones known to answer it), or default (the box's digest_algorithms setting)",
)


@click.group()
def ext() -> None:
    """Extensions: the numbers phones register as."""


@ext.command("add")
@click.argument("number")
@click.option("--name", default="", help="display name shown on calls")
@click.option("--password", default=None, help="SIP password (one is generated when omitted)")
@click.option(
    "--keep-password",
    is_flag=True,
    help="also keep the password itself, so the web admin can provision the phone with it",
)
@_DIGEST_OPTION
@db_option
def ext_add(
    number: str,
    name: str,
    password: str | None,
    keep_password: bool,
    digest: str | None,
    db_path: Path,
) -> None:
    """Create an extension; prints a generated password once."""
    generated = password is None
    secret = generate_password() if password is None else password
    db = _open(db_path)
    try:
        add_extension(
            db,
            number=number,
            name=name,
            password=secret,
            now=time.time(),
            keep_password=keep_password,
            digest_algorithms=digest,
        )
    except ExtensionError as exc:
        fail(str(exc))
    click.echo(f"extension {number} created")
    if generated:
        click.echo(f"password: {secret}")
        if not keep_password:
            click.echo("(shown once: only a hash of it is stored)", err=True)


def _forward_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--forward-KIND DEST and --no-forward-KIND for each forward, as strings: bad values get
    our one-line message, not click's usage text."""
    for kind, when in reversed(
        [("always", "every call"), ("busy", "calls when its phones are busy"),
         ("no-answer", "calls it does not answer in --forward-after seconds"),
         ("unregistered", "calls when no phone of it is registered")]
    ):  # fmt: skip
        func = click.option(f"--no-forward-{kind}", is_flag=True, help=f"forward {when}: off")(func)
        func = click.option(
            f"--forward-{kind}",
            metavar="DEST",
            default=None,
            help=f"forward {when} to DEST: an extension, an outside number as dialled "
            "(e.g. 95551234, needs --outbound) or, with --redirect, a sip: URI",
        )(func)
    return func


def _forwarding_change(options: dict[str, Any]) -> ForwardingChange:
    targets: dict[str, str | None] = {}
    for kind in ("always", "busy", "no_answer", "unregistered"):
        dest, off = options[f"forward_{kind}"], options[f"no_forward_{kind}"]
        flag = kind.replace("_", "-")
        if dest is not None and off:
            fail(f"--forward-{flag} and --no-forward-{flag} together: choose one")
        if dest is not None and not dest.strip():
            fail(f"--forward-{flag}: give a DEST, or --no-forward-{flag} to turn it off")
        targets[kind] = "" if off else dest
    return ForwardingChange(
        always=targets["always"],
        busy=targets["busy"],
        no_answer=targets["no_answer"],
        unregistered=targets["unregistered"],
        after=options["forward_after"],
        dnd=options["dnd"],
        redirect=options["redirect"],
    )


@ext.command("set")
@click.argument("number")
@click.option("--name", default=None, help="display name shown on calls")
@click.option("--outbound/--no-outbound", default=None, help="may call out through the phone line")
@click.option("--voicemail-pin", default=None, metavar="PIN", help="voicemail PIN, 4 to 8 digits")
@click.option("--no-voicemail-pin", is_flag=True, help="remove the voicemail PIN")
@_DIGEST_OPTION
@_forward_options
@click.option(
    "--forward-after",
    metavar="SECONDS",
    default=None,
    help="seconds it rings before --forward-no-answer takes the call (5 to 300; 20 at first)",
)
@click.option("--dnd/--no-dnd", default=None, help="do not disturb: callers get busy (486)")
@click.option(
    "--redirect/--no-redirect",
    default=None,
    help="answer callers 302 with the forward target instead of calling it (redirect server)",
)
@db_option
def ext_set(number: str, db_path: Path, **options: Any) -> None:
    """Change what an extension's page in the web admin changes: name, outbound permission,
    voicemail PIN, digest algorithms, forwarding, do not disturb and redirect."""
    # --no-X flags are False when not given; --X/--no-X switches are None then.
    given = [k for k, v in options.items() if v is not None and not (k.startswith("no_") and not v)]
    if not given:
        fail("nothing to change: see pbx ext set --help")
    pin = options["voicemail_pin"]
    if pin is not None and options["no_voicemail_pin"]:
        fail("--voicemail-pin and --no-voicemail-pin together: choose one")
    if pin is not None and not pin:
        fail("--voicemail-pin: give 4 to 8 digits, or --no-voicemail-pin to remove it")
    change = _forwarding_change(options)
    db = _open(db_path)
    try:
        update_extension_and_forwarding(
            db,
            number,
            name=options["name"],
            outbound_allowed=options["outbound"],
            voicemail_pin="" if options["no_voicemail_pin"] else pin,
            digest_algorithms=options["digest"],
            forwarding=change,
            now=time.time(),
        )
    except ExtensionError as exc:
        fail(str(exc))
    click.echo(f"extension {number} changed")


@ext.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@db_option
def ext_list(as_json: bool, db_path: Path) -> None:
    """List extensions and how many phones each has registered."""
    db = _open(db_path)
    now = time.time()
    counts: dict[str, int] = {}
    for binding in load_bindings(db, now=now):
        counts[binding.aor] = counts.get(binding.aor, 0) + 1
    rows = [_extension_row(db, e, counts.get(e.number, 0)) for e in list_extensions(db)]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no extensions yet: pbx ext add 201 --name 'Reception'")
        return
    click.echo(
        f"{'number':<8} {'name':<24} {'phones':>6}  {'challenged':<12} {'last auth':<9}  forwarding"
    )
    for row in rows:
        click.echo(
            f"{row['number']:<8} {row['name']:<24} {row['registered']:>6}  "
            f"{row['digest_algorithms'] or 'default':<12} {row['auth_algorithm'] or '-':<9}  "
            f"{_forwarding_summary(row)}"
        )


def _extension_row(db: Database, e: Extension, registered: int) -> dict[str, Any]:
    forwarding = e.forwarding or ForwardingRecord(number=e.number)
    return {
        "number": e.number,
        "name": e.display_name,
        "registered": registered,
        "outbound_allowed": e.outbound_allowed,
        "auth_algorithm": e.last_auth_algorithm,
        "digest_algorithms": ",".join(e.digest_algorithms) if e.digest_algorithms else None,
        "voicemail_pin_set": has_voicemail_pin(db, e.number),
        "forward_always": forwarding.always,
        "forward_busy": forwarding.busy,
        "forward_no_answer": forwarding.no_answer,
        "forward_after": forwarding.after,
        "forward_unregistered": forwarding.unregistered,
        "dnd": forwarding.dnd,
        "redirect": forwarding.redirect,
    }


def _forwarding_summary(row: dict[str, Any]) -> str:
    parts = ["dnd"] if row["dnd"] else []
    for key, label in (("forward_always", "always"), ("forward_busy", "busy"),
                       ("forward_no_answer", "no answer"),
                       ("forward_unregistered", "unregistered")):  # fmt: skip
        if row[key]:
            after = f" after {row['forward_after']}s" if key == "forward_no_answer" else ""
            parts.append(f"{label} -> {row[key]}{after}")
    if parts and row["redirect"]:
        parts.append("(redirect)")
    return ", ".join(parts) or "-"


@ext.command("rm")
@click.argument("number")
@db_option
def ext_rm(number: str, db_path: Path) -> None:
    """Remove an extension and its registrations."""
    db = _open(db_path)
    try:
        remove_extension(db, number)
    except ExtensionError as exc:
        fail(str(exc))
    click.echo(f"extension {number} removed")


@ext.command("passwd")
@click.argument("number")
@click.option("--password", default=None, help="the new password (generated when omitted)")
@db_option
def ext_passwd(number: str, password: str | None, db_path: Path) -> None:
    """Set a new SIP password; prints a generated one once."""
    secret = generate_password() if password is None else password
    db = _open(db_path)
    try:
        set_password(db, number, secret, now=time.time())
    except ExtensionError as exc:
        fail(str(exc))
    click.echo(f"password of {number} changed")
    if password is None:
        click.echo(f"password: {secret}")


@ext.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@db_option
def ext_import(csv_file: Path, db_path: Path) -> None:
    """Create extensions from CSV rows number,name,password: all of them or none.

    An empty password is generated, and the generated ones are printed once.
    """
    try:
        with csv_file.open(newline="", encoding="utf-8") as handle:
            raw_rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        fail(f"cannot read {csv_file}: {exc}")
    first_row = 1
    if raw_rows and [c.strip().lower() for c in raw_rows[0]][:3] == ["number", "name", "password"]:
        raw_rows = raw_rows[1:]
        first_row = 2
    rows: list[tuple[str, str, str]] = []
    generated: list[tuple[str, str]] = []
    for line, raw in enumerate(raw_rows, start=first_row):
        if not raw or not any(cell.strip() for cell in raw):
            continue
        if len(raw) != 3:
            fail(f"{csv_file}: row {line}: expected 3 columns number,name,password")
        number, name, password = (cell.strip() for cell in raw)
        if not password:
            password = generate_password()
            generated.append((number, password))
        rows.append((number, name, password))
    if not rows:
        fail(f"{csv_file}: no extensions in it")
    db = _open(db_path)
    try:
        count = add_extensions(db, rows, now=time.time(), first_row=first_row)
    except ExtensionError as exc:
        fail(f"{csv_file}: {exc}; nothing was imported")
    click.echo(f"{count} extensions imported")
    for number, password in generated:
        click.echo(f"{number} password: {password}")


def _status(db: Database, now: float) -> dict[str, Any]:
    registrations = [
        {
            "extension": b.aor,
            "contact": b.contact,
            "source": f"{b.transport.lower()}:{_hostport(b.received_host, b.received_port)}",
            "expires_in": max(0, round(b.expires_at - now)),
            "expires_at": b.expires_at,
            "user_agent": b.user_agent,
            "instance_id": b.instance_id,
            "reachable": b.reachable,
            "rtt_ms": b.rtt_ms,
            "auth_algorithm": b.auth_algorithm,
        }
        for b in load_bindings(db, now=now)
    ]
    bans = [
        {
            "address": ban.address,
            "until": ban.until,
            "remaining": max(0, round(ban.until - now)),
            "failures": ban.failures,
            "reason": ban.reason,
        }
        for ban in active_bans(db, now)
    ]
    calls = [
        {
            "call_id": c.call_id,
            "caller": c.caller,
            "callee": c.callee,
            "state": c.state,
            "started_at": c.started_at,
            "seconds": max(0, round(now - c.started_at)),
            "answered_at": c.answered_at,
            "caller_codec": c.caller_media,
            "callee_codec": c.callee_media,
        }
        for c in active_calls(db)
    ]
    return {"registrations": registrations, "bans": bans, "calls": calls}


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@db_option
def status(as_json: bool, db_path: Path) -> None:
    """Who is registered from where, until when; which addresses are banned."""
    db = _open(db_path)
    report = _status(db, time.time())
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    registrations = report["registrations"]
    click.echo(f"{len(registrations)} registered contact(s)")
    for r in registrations:
        reach = {True: f"ok {r['rtt_ms']} ms", False: "UNREACHABLE", None: "-"}[r["reachable"]]
        click.echo(
            f"  {r['extension']:<8} {r['source']:<28} expires in {r['expires_in']:>5}s  "
            f"{reach:<14} {r['user_agent'] or ''}"
        )
    click.echo(f"{len(report['calls'])} call(s) in progress")
    for c in report["calls"]:
        click.echo(
            f"  {c['caller']:>8} -> {c['callee']:<8} {c['state']:<9} {c['seconds']:>5}s  "
            f"{c['caller_codec'] or '-'}/{c['callee_codec'] or '-'}"
        )
    if report["bans"]:
        click.echo(f"{len(report['bans'])} banned address(es)")
        for ban in report["bans"]:
            click.echo(f"  {ban['address']:<40} {ban['remaining']:>6}s left  {ban['reason']}")


@click.group()
def ban() -> None:
    """Addresses banned for failing authentication."""


@ban.command("list")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@db_option
def ban_list(as_json: bool, db_path: Path) -> None:
    """List the bans in force."""
    bans = _status(_open(db_path), time.time())["bans"]
    if as_json:
        click.echo(json.dumps(bans, indent=2))
        return
    if not bans:
        click.echo("no addresses are banned")
    for entry in bans:
        click.echo(f"{entry['address']:<40} {entry['remaining']:>6}s left  {entry['reason']}")


@click.command()
@click.argument("address")
@db_option
def unban(address: str, db_path: Path) -> None:
    """Lift the ban on ADDRESS (the switch notices within a few seconds)."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        fail(f"not an IP address: {address!r}")
    if not remove_ban(_open(db_path), address):
        fail(f"{address} is not banned")
    click.echo(f"{address} unbanned")


@click.command()
@click.option("--limit", default=20, show_default=True, help="how many, newest first")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
@db_option
def calls(limit: int, as_json: bool, db_path: Path) -> None:
    """The call records (CDR): who called whom, when, how it ended."""
    rows = [
        {
            "call_id": r.call_id,
            "caller": r.caller,
            "callee": r.callee,
            "started_at": r.started_at,
            "answered_at": r.answered_at,
            "ended_at": r.ended_at,
            "seconds": None if r.answered_at is None else round(r.ended_at - r.answered_at, 1),
            "end_reason": r.end_reason,
            "status": r.status,
            "caller_codec": r.caller_codec,
            "callee_codec": r.callee_codec,
            "forwarded_from": r.forwarded_from,
            "transferred_by": r.transferred_by,
            "transferred_to": r.transferred_to,
        }
        for r in call_records(_open(db_path), limit)
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(r["started_at"] or 0)))
        talk = "-" if r["seconds"] is None else f"{r['seconds']}s"
        via = f" (forwarded from {r['forwarded_from']})" if r["forwarded_from"] else ""
        click.echo(
            f"{when}  {r['caller']:>8} -> {r['callee']:<8} {talk:>8}  {r['end_reason']}{via}"
        )


@click.command("setup-code")
@db_option
def setup_code_command(db_path: Path) -> None:
    """Show the one-time code the web admin's first visit asks for."""
    code = setup_code(_open(db_path))
    if code is None:
        fail("an administrator exists already: log in to the web admin")
    click.echo(code)


@click.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def web(ctx: click.Context) -> None:
    """Run the web admin (--db FILE --bind ADDR --port 8080; see pbx web --help)."""
    # A separate program (pbx never imports the web admin): this process becomes it.
    os.execv(sys.executable, [sys.executable, "-m", "webadmin", *ctx.args])


@click.group()
def line() -> None:
    """The phone line: the simulated line's exchange, and debug tools for the line gateway."""


# The simulated exchange: the gateway's own program speaks to its line (pbx never imports the
# gateway), and takes --db like the other commands. Its help and errors are its own.
_SIM_LINE = {
    "add_help_option": False,
    "context_settings": {"ignore_unknown_options": True, "allow_extra_args": True},
}


def _sim_line(ctx: click.Context) -> None:
    """This process becomes ``python -m gateway_fxo.sim_line_cli COMMAND ARGS``."""
    assert ctx.command.name is not None
    module = "gateway_fxo.sim_line_cli"
    os.execv(sys.executable, [sys.executable, "-m", module, ctx.command.name, *ctx.args])


@line.command("ring", short_help="Ring the simulated line (caller ID).", **_SIM_LINE)
@click.pass_context
def line_ring(ctx: click.Context) -> None:
    """The simulated exchange rings the line: --from 5551234 --name "ACME" [--rings N]."""
    _sim_line(ctx)


@line.command("hangup", short_help="The simulated line's far party hangs up.", **_SIM_LINE)
@click.pass_context
def line_hangup(ctx: click.Context) -> None:
    """The far party of the simulated line hangs up (or the caller gives up ringing)."""
    _sim_line(ctx)


@line.command("status", short_help="The simulated line's state.", **_SIM_LINE)
@click.pass_context
def line_status(ctx: click.Context) -> None:
    """The simulated line's state in plain words: idle, ringing, off hook, in call [--json]."""
    _sim_line(ctx)


@line.command("decode", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def line_decode(args: tuple[str, ...]) -> None:
    """What the DSP finds in a recording: pbx line decode FILE.wav [--country US] (JSON)."""
    # The gateway's own program (pbx never imports the gateway): this process becomes it.
    os.execv(sys.executable, [sys.executable, "-m", "gateway_fxo.dsp.decode", *args])


COMMANDS = (ext, status, ban, unban, calls, setup_code_command, web, line)
