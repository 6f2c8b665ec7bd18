"""SIPp (a real, independent SIP implementation) sends OPTIONS to ``pbx serve``."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sip_client import options_request
from tests.support.sipp import run_sipp
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool


@pytest.fixture(scope="module")
def sipp() -> str:
    return require_tool("sipp", "sip-tester")


@pytest.fixture(scope="module")
def switch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwitchProcess]:
    with SwitchProcess(tmp_path_factory.mktemp("switch")) as process:
        yield process


@pytest.mark.parametrize("transport", ["u1", "t1"], ids=["udp", "tcp"])
def test_sipp_options_get_200(
    sipp: str, switch: SwitchProcess, tmp_path: Path, transport: str
) -> None:
    result = run_sipp(
        sipp,
        "options_uac",
        ("127.0.0.1", switch.port),
        transport=transport,
        calls=500,
        rate=250,
        workdir=tmp_path,
    )
    assert result.returncode == 0, result.output[-3000:]
    assert result.successful == 500
    assert result.failed == 0


def test_switch_answers_sipp_after_a_malformed_flood(
    sipp: str, switch: SwitchProcess, tmp_path: Path
) -> None:
    rng = random.Random(20261124)
    valid = options_request("127.0.0.1", switch.port, local_port=9)
    target = ("127.0.0.1", switch.port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for i in range(5000):  # bounded: 5,000 datagrams, loopback only
            if i % 2:
                junk = bytearray(valid)
                for _ in range(rng.randrange(1, 10)):
                    junk[rng.randrange(len(junk))] = rng.randrange(256)
                data = bytes(junk)
            else:
                data = rng.randbytes(rng.randrange(1, 1500))
            # When our own send buffer is full, that datagram is simply not sent.
            with contextlib.suppress(BlockingIOError):
                sock.sendto(data, target)
    assert switch.alive
    result = run_sipp(
        sipp, "options_uac", target, transport="u1", calls=200, rate=200, workdir=tmp_path
    )
    assert result.returncode == 0, result.output[-3000:]
    assert result.successful == 200
    assert switch.alive
