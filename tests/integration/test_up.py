"""``pbx up``, what ``make run`` calls: starts on embedded defaults and stops cleanly."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest

from pbx.sip.message import Response, parse_message
from tests.support.sip_client import UdpPeer, options_request
from tests.support.switch_process import SwitchProcess


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_up_answers_options_and_stops_cleanly(tmp_path: Path, sig: int) -> None:
    data_dir = tmp_path / "data"
    process = SwitchProcess(
        tmp_path,
        args=[sys.executable, "-m", "pbx.cli", "up", "--data", str(data_dir)],
        env={"SWITCHBOARD_SIP_PORT": "0"},  # the default is 5060; a test takes a free port
    )
    with process:
        assert process.host == "127.0.0.1"
        peer = UdpPeer()
        try:
            peer.send(
                options_request("127.0.0.1", process.port, local_port=peer.port),
                ("127.0.0.1", process.port),
            )
            response = parse_message(peer.recv())
        finally:
            peer.close()
        assert isinstance(response, Response) and response.status == 200
        assert data_dir.is_dir()  # the data folder is made on first start
        assert process.stop(sig) == 0
    assert any("event=stopping" in line for line in process.lines + _rest(process))


def _rest(process: SwitchProcess) -> list[str]:
    lines = []
    while True:
        item = process._lines.get(timeout=10)
        if item is None:
            return lines
        lines.append(item)
