"""systemd's notify protocol (sd_notify(3)) without a dependency: READY, WATCHDOG, STOPPING.

Outside systemd (no NOTIFY_SOCKET) every call does nothing, so the same code runs on a laptop.
"""

from __future__ import annotations

import asyncio
import os
import socket


def notify(state: str, environ: dict[str, str] | None = None) -> bool:
    """Send ``state`` (e.g. "READY=1") to the service manager; False when there is none."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(state.encode(), address)
        except OSError:
            return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds between WATCHDOG=1 pings (half the service's WatchdogSec), or None if unset."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000 / 2
    except ValueError:
        return None


async def keep_watchdog_fed() -> None:
    """WATCHDOG=1 at half the unit's WatchdogSec, from the event loop itself: if the loop
    stalls, the pings stop and systemd restarts the process."""
    interval = watchdog_interval()
    while interval is not None:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
