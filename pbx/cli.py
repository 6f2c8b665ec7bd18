"""The ``pbx`` command: run the switch and, later, manage it."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from pbx.app import ListeningAddresses, run_switch
from pbx.cli_admin import COMMANDS
from pbx.config import OPTIONS, load_settings
from pbx.errors import ConfigError
from pbx.event_loop import loop_factory
from pbx.log import configure_logging


def _settings(overrides: dict[str, Any], config_file: Path | None) -> Any:
    import os

    try:
        return load_settings(config_file=config_file, environ=os.environ, overrides=overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _setup_code(db: Path) -> str | None:
    """The web admin's one-time setup code while no administrator exists (DESIGN: no default
    passwords; the code is printed where the admin of the box will see it)."""
    from pbx.store.admins import setup_code
    from pbx.store.database import open_database

    handle = open_database(db)
    try:
        return setup_code(handle)
    finally:
        handle.close()


def _raise_file_limit() -> None:
    """Each relayed call holds four UDP sockets: lift the soft limit on open files to the hard
    one (1024 by default on many systems would cap the switch at ~250 calls)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _serve(
    settings: Any,
    banner: str | None,
    on_ready: Callable[[ListeningAddresses], None] | None = None,
) -> None:
    configure_logging(settings.log_level)
    settings.db.parent.mkdir(parents=True, exist_ok=True)
    _raise_file_limit()

    def ready(addresses: ListeningAddresses) -> None:
        host, port = addresses.udp
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"Switchboard SIP is listening on udp/tcp {shown}:{port}", err=True)
        code = _setup_code(settings.db)
        if code:
            click.echo(f"Web admin first visit: the setup code is {code}", err=True)
        if banner:
            click.echo(banner, err=True)
        if on_ready is not None:
            on_ready(addresses)

    try:
        factory = loop_factory(settings.event_loop)
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(run_switch(settings, ready=ready))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        click.echo(f"pbx: cannot start: {exc}", err=True)
        sys.exit(1)


@click.group()
@click.version_option(package_name="switchboard")
def main() -> None:
    """Switchboard: an office phone system for a Raspberry Pi with a phone-line card."""


def _common_options(func: Any) -> Any:
    func = click.option(
        "--config",
        "config_file",
        type=click.Path(path_type=Path),
        default=None,
        help="TOML settings file",
    )(func)
    func = click.option("--log-level", default=None, help=OPTIONS["log_level"].help)(func)
    return func


@main.command()
@click.option("--db", envvar="SWITCHBOARD_DB", default=None, help=OPTIONS["db"].help)
@click.option("--bind", default=None, help=OPTIONS["bind"].help)
@click.option("--sip-port", default=None, help=OPTIONS["sip_port"].help)
@click.option("--rtp-ports", default=None, help=OPTIONS["rtp_ports"].help)
@_common_options
def serve(
    db: str | None,
    bind: str | None,
    sip_port: str | None,
    rtp_ports: str | None,
    config_file: Path | None,
    log_level: str | None,
) -> None:
    """Run the switch (SIP on UDP and TCP)."""
    overrides = {
        "db": db,
        "bind": bind,
        "sip_port": sip_port,
        "rtp_ports": rtp_ports,
        "log_level": log_level,
    }
    _serve(_settings(overrides, config_file), banner=None)


@main.command()
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=Path("data"),
    show_default=True,
    help="folder for the database and recordings",
)
@click.option(
    "--web-port",
    envvar="SWITCHBOARD_WEB_PORT",
    type=int,
    default=8080,
    show_default=True,
    help="port of the web admin on localhost (0 picks a free one)",
)
@click.option(
    "--line",
    envvar="SWITCHBOARD_LINE",
    default="sim",
    show_default=True,
    help="the phone line: sim (simulated), modem:DEVICE, gpio, or none",
)
@_common_options
def up(
    data_dir: Path, web_port: int, line: str, config_file: Path | None, log_level: str | None
) -> None:
    """Run the whole product on embedded defaults: the switch, the phone line and the web admin.

    The line gateway and the web admin are their own processes (DESIGN: three processes share
    the database); this command starts them, and stops them when it is stopped (Ctrl-C or
    SIGTERM). It restarts nothing by itself: on the box, systemd does that.
    """
    overrides = {"db": str(data_dir / "switchboard.db"), "log_level": log_level}
    settings = _settings(overrides, config_file)
    settings.db.parent.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []

    def start(args: list[str]) -> None:
        children.append(subprocess.Popen([sys.executable, "-m", *args], stdin=subprocess.DEVNULL))

    def ready(addresses: ListeningAddresses) -> None:
        host, port = addresses.udp
        start(["webadmin", "--db", str(settings.db), "--bind", "127.0.0.1",
               "--port", str(web_port), "--sip-host", host, "--sip-port", str(port)])  # fmt: skip
        if line != "none":
            start(
                [
                    "gateway_fxo",
                    "--db",
                    str(settings.db),
                    "--switch",
                    f"{host}:{port}",
                    "--line",
                    line,
                    "--log-level",
                    settings.log_level,
                ]  # fmt: skip
                + (["--sim-control", "0"] if line == "sim" else [])
            )

    try:
        _serve(settings, banner="Stop with Ctrl-C.", on_ready=ready)
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)


for command in COMMANDS:
    main.add_command(command)


if __name__ == "__main__":  # pragma: no cover
    main()
