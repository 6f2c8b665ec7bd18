"""``pbx up``, what ``make run`` calls: starts on embedded defaults and stops cleanly."""

from __future__ import annotations

import re
import signal
import sys
import urllib.request
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
        # The defaults are 5060 and 8080; a test takes free ports.
        env={"SWITCHBOARD_SIP_PORT": "0", "SWITCHBOARD_WEB_PORT": "0"},
    )
    with process:
        web = re.compile(r"web admin on (http://\S+)")
        seen = [line for line in process.lines if web.search(line)]
        line = seen[0] if seen else process.wait_for(web, timeout=20)
        url = re.search(r"(http://\S+)", line).group(1)  # type: ignore[union-attr]
        with urllib.request.urlopen(url + "setup", timeout=10) as page:
            assert page.status == 200 and b"setup code" in page.read()
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
