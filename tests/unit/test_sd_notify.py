"""The notify protocol against a real datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pbx.sd_notify import notify, watchdog_interval


def test_notify_sends_to_the_socket_systemd_names(tmp_path: Path) -> None:
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(path)
        manager.settimeout(5)
        assert notify("READY=1", {"NOTIFY_SOCKET": path})
        assert manager.recv(100) == b"READY=1"


def test_outside_systemd_nothing_happens() -> None:
    assert not notify("READY=1", {})


def test_watchdog_interval_is_half_of_watchdog_sec() -> None:
    env = {"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(env) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
