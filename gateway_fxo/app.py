"""The line gateway's composition root: settings, the line card, the agent, the loop.

``python -m gateway_fxo --db FILE --switch HOST:PORT --line sim|modem:DEVICE|gpio`` runs one
line. It reads its SIP account from the shared database (making it on first start) and writes
the line's state there for the web admin's dashboard.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gateway_fxo.agent import Agent
from gateway_fxo.line import LineCard
from gateway_fxo.line_policy import AgentSettings
from gateway_fxo.sim_address import remove_address, write_address
from pbx.config import Settings
from pbx.log import configure_logging
from pbx.sd_notify import keep_watchdog_fed, notify
from pbx.store.database import open_database
from pbx.store.extensions import LINE_ACCOUNT, ensure_line_account
from pbx.store.settings import get_setting, set_setting

log = logging.getLogger("gateway")


def make_line(spec: str, country: str, options: argparse.Namespace) -> tuple[LineCard, Any]:
    """The backend named by ``spec``, and its control server when it has one (the simulator)."""
    kind, _, device = spec.partition(":")
    if kind == "sim":
        from gateway_fxo.backends.sim import SimulatedLine

        return SimulatedLine(country=country), None
    if kind == "modem":
        from gateway_fxo.backends.modem import ModemLineCard, ModemSettings

        return ModemLineCard(ModemSettings(device=device or "/dev/ttyACM0")), None
    if kind == "gpio":
        from gateway_fxo.backends.gpio import GpioLineCard, GpioSettings

        settings = GpioSettings(
            hook_pin=options.hook_pin, ring_pin=options.ring_pin,
            audio_device=options.audio_device or None,
        )  # fmt: skip
        return GpioLineCard(settings), None
    raise SystemExit(f"gateway: unknown line {spec!r} (sim, modem:DEVICE or gpio)")


async def run(options: argparse.Namespace) -> None:
    db = open_database(Path(options.db))
    password = ensure_line_account(db, LINE_ACCOUNT, now=time.time())
    country = get_setting(db, "line_country") or "US"
    host, _, port = options.switch.rpartition(":")
    line, _ = make_line(options.line, country, options)
    control = None
    if options.sim_control is not None and options.line == "sim":
        from gateway_fxo.sim_control import start_control_server

        control = await start_control_server(line, "127.0.0.1", options.sim_control)
        also = "" if Path(options.db) == Settings().db else f" --db {options.db}"
        print(f"Simulated line control on {control.host}:{control.port} (make it ring: "
              f"pbx line ring --from 5551234 --name ACME{also})", file=sys.stderr,
              flush=True)  # fmt: skip

    def status(state: str) -> None:
        set_setting(db, "line_status", state)

    def number(key: str, default: float) -> float:
        """A per-line setting from the database (the web admin's line page), or the default."""
        text = get_setting(db, key)
        try:
            return default if text is None else float(text)
        except ValueError:
            log.warning("event=bad_line_setting key=%s value=%r", key, text)
            return default

    def flag(key: str, default: bool) -> bool:
        """A per-line yes/no setting, or the default when unset or neither."""
        text = get_setting(db, key)
        if text in ("yes", "no"):
            return text == "yes"
        if text is not None:
            log.warning("event=bad_line_setting key=%s value=%r", key, text)
        return default

    agent = Agent(
        line,
        AgentSettings(
            account=LINE_ACCOUNT, password=password, switch=(host, int(port)),
            bind=options.bind, country=country,
            answer_after_rings=int(number("line_answer_after_rings", 2)),
            ring_gone=number("line_ring_gone_seconds", 7.0),
            loop_drop_threshold=number("line_loop_drop_seconds", 0.3),
            polarity_disconnect=flag("line_polarity_disconnect", False),
            tone_disconnect=flag("line_tone_disconnect", True),
            dial_tone_disconnect=flag("line_dial_tone_disconnect", True),
            silence_timeout=number("line_silence_timeout_seconds", 300.0),
            max_call=number("line_max_call_seconds", 4 * 3600.0),
        ),
        on_status=status,
    )  # fmt: skip
    await agent.start()
    print(f"Line gateway ({options.line}) registering to {options.switch}", file=sys.stderr,
          flush=True)  # fmt: skip
    if control is not None:  # published beside the database: `pbx line ring` finds it there
        write_address(Path(options.db), control.host, control.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    notify("READY=1")
    watchdog = loop.create_task(keep_watchdog_fed())
    registered = loop.create_task(agent.registered.wait())
    registered.add_done_callback(
        lambda _t: print("Line gateway registered", file=sys.stderr, flush=True)
    )
    try:
        await stop.wait()
    finally:
        notify("STOPPING=1")
        watchdog.cancel()
        registered.cancel()
        await agent.stop()
        if control is not None:
            remove_address(Path(options.db), control.host, control.port)
            control.close()
        status("not connected")
        db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway_fxo", description="Run one phone line.")
    parser.add_argument("--db", default="data/switchboard.db")
    parser.add_argument("--switch", default="127.0.0.1:5060", help="HOST:PORT of the switch")
    parser.add_argument("--line", default="sim", help="sim, modem:DEVICE or gpio")
    parser.add_argument("--bind", default="127.0.0.1", help="address for SIP and RTP")
    parser.add_argument("--sim-control", type=int, default=None, help="port (0: any) to drive sim")
    parser.add_argument("--hook-pin", type=int, default=17, help="gpio: hook relay (BCM)")
    parser.add_argument("--ring-pin", type=int, default=27, help="gpio: ring detector (BCM)")
    parser.add_argument("--audio-device", default="", help="gpio: PyAudio device name or index")
    parser.add_argument("--log-level", default="info")
    options = parser.parse_args(argv)
    configure_logging(options.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
