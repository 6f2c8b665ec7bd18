"""``pbx serve`` as a real process over loopback: answers, errors, resilience."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.message import Response, parse_message
from tests.support.sip_client import TcpPeer, UdpPeer, options_request
from tests.support.switch_process import SwitchProcess


@pytest.fixture(scope="module", params=["uvloop", "asyncio"])
def switch(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[SwitchProcess]:
    """The switch on each event loop it can run on (uvloop by default, asyncio's own)."""
    tmp: Path = tmp_path_factory.mktemp("switch")
    with SwitchProcess(tmp, env={"SWITCHBOARD_EVENT_LOOP": request.param}) as process:
        assert f"loop={request.param}" in process.lines[-2] + process.lines[-1]
        yield process
    assert process.proc is not None and process.proc.returncode == 0


@pytest.fixture()
def udp() -> Iterator[UdpPeer]:
    peer = UdpPeer()
    yield peer
    peer.close()


def ask_udp(switch: SwitchProcess, udp: UdpPeer, data: bytes) -> Response:
    udp.send(data, ("127.0.0.1", switch.port))
    message = parse_message(udp.recv())
    assert isinstance(message, Response)
    return message


def test_options_over_udp_gets_200_with_capabilities(switch: SwitchProcess, udp: UdpPeer) -> None:
    response = ask_udp(switch, udp, options_request("127.0.0.1", switch.port, local_port=udp.port))
    assert response.status == 200
    assert "OPTIONS" in response.headers.values("allow")
    assert {"INVITE", "REGISTER", "MESSAGE", "PRACK"} <= set(response.headers.values("allow"))
    assert "SUBSCRIBE" not in response.headers.values("allow")  # truthful
    assert "application/sdp" in response.headers.values("accept")
    assert {"path", "100rel"} <= set(response.headers.values("supported"))
    assert response.to.tag  # §8.2.6.2
    # RFC 3581: rport filled with our source port, received with our address.
    assert response.top_via.rport == udp.port
    assert response.top_via.received == "127.0.0.1"


def test_options_over_tcp_reuses_the_connection(switch: SwitchProcess) -> None:
    peer = TcpPeer(("127.0.0.1", switch.port))
    try:
        two = options_request("127.0.0.1", switch.port, local_port=peer.port, transport="TCP")
        two += options_request("127.0.0.1", switch.port, local_port=peer.port, transport="TCP")
        peer.send(two)  # two messages in one segment
        first = parse_message(peer.recv_message(), stream=True)
        second = parse_message(peer.recv_message(), stream=True)
        assert isinstance(first, Response) and isinstance(second, Response)
        assert first.status == second.status == 200
        assert first.cseq.seq + 1 == second.cseq.seq
        # A message split across segments is reassembled.
        third = options_request("127.0.0.1", switch.port, local_port=peer.port, transport="TCP")
        peer.send(third[:30])
        peer.send(third[30:])
        assert parse_message(peer.recv_message(), stream=True).status == 200  # type: ignore[union-attr]
    finally:
        peer.close()


def test_tcp_keepalive_ping_gets_pong(switch: SwitchProcess) -> None:
    peer = TcpPeer(("127.0.0.1", switch.port))
    try:
        peer.send(b"\r\n\r\n")
        assert peer.recv_raw(2) == b"\r\n"
    finally:
        peer.close()


@pytest.mark.parametrize(
    ("method", "status"),
    [
        ("FROBNICATE", 501),
        ("SUBSCRIBE", 405),
        ("INVITE", 407),  # served: the caller must authenticate first
        ("REGISTER", 401),  # served: a challenge first
        ("BYE", 481),
        ("CANCEL", 481),
    ],
)
def test_unserved_methods_get_the_right_code(
    switch: SwitchProcess, udp: UdpPeer, method: str, status: int
) -> None:
    data = options_request("127.0.0.1", switch.port, local_port=udp.port, method=method)
    response = ask_udp(switch, udp, data)
    assert response.status == status
    if status in (405, 501):
        assert response.headers.get("allow")


def test_require_of_unknown_extension_gets_420(switch: SwitchProcess, udp: UdpPeer) -> None:
    data = options_request(
        "127.0.0.1", switch.port, local_port=udp.port, extra="Require: frobnication\r\n"
    )
    response = ask_udp(switch, udp, data)
    assert response.status == 420
    assert response.headers.get("unsupported") == "frobnication"


def test_malformed_request_gets_400_with_reason(switch: SwitchProcess, udp: UdpPeer) -> None:
    data = options_request("127.0.0.1", switch.port, local_port=udp.port)
    data = data.replace(b"OPTIONS\r\n", b"INVITE\r\n")  # CSeq method mismatch
    response = ask_udp(switch, udp, data)
    assert response.status == 400
    assert "CSeq" in response.reason


def test_bad_version_gets_505(switch: SwitchProcess, udp: UdpPeer) -> None:
    data = options_request("127.0.0.1", switch.port, local_port=udp.port)
    data = data.replace(b" SIP/2.0\r\n", b" SIP/7.0\r\n", 1)
    assert ask_udp(switch, udp, data).status == 505


def test_garbage_gets_silence_and_the_switch_keeps_answering(
    switch: SwitchProcess, udp: UdpPeer
) -> None:
    rng = random.Random(4475)
    target = ("127.0.0.1", switch.port)
    valid = options_request("127.0.0.1", switch.port, local_port=udp.port)
    for _ in range(300):
        kind = rng.randrange(3)
        if kind == 0:
            junk = rng.randbytes(rng.randrange(1, 1400))
        elif kind == 1:
            junk = bytearray(valid)
            for _ in range(rng.randrange(1, 8)):
                junk[rng.randrange(len(junk))] = rng.randrange(256)
            junk = bytes(junk)
        else:
            junk = valid[: rng.randrange(len(valid))]
        udp.send(junk, target)
    # Whatever came back (400s for the answerable ones) never included a crash:
    # the switch still answers a good request, and the process is alive.
    last = options_request("127.0.0.1", switch.port, local_port=udp.port)
    last_call_id = parse_message(last).call_id
    udp.send(last, target)
    while True:
        try:
            message = parse_message(udp.recv())
        except SipParseError:
            continue  # a 400 that echoes a mangled header back
        assert isinstance(message, Response)
        if message.status == 200 and message.headers.get("call-id") == last_call_id:
            break
    assert switch.alive


def test_oversized_datagram_is_dropped_not_fatal(switch: SwitchProcess, udp: UdpPeer) -> None:
    big = options_request(
        "127.0.0.1", switch.port, local_port=udp.port, extra="X-Padding: " + "a" * 60000 + "\r\n"
    )
    udp.send(big, ("127.0.0.1", switch.port))
    response = ask_udp(switch, udp, options_request("127.0.0.1", switch.port, local_port=udp.port))
    assert response.status in (200, 513)


def test_ipv6_loopback(tmp_path: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("::1 not configured")
    with SwitchProcess(tmp_path, bind="::1") as switch:
        peer = UdpPeer("::1")
        try:
            data = options_request("[::1]", switch.port, local_port=peer.port)
            data = data.replace(b"127.0.0.1:", b"[::1]:")
            peer.send(data, ("::1", switch.port))
            response = parse_message(peer.recv())
            assert isinstance(response, Response) and response.status == 200
        finally:
            peer.close()


def test_the_switch_tells_systemd_it_is_ready_and_feeds_the_watchdog(tmp_path: Path) -> None:
    """Type=notify: READY=1 once it answers, WATCHDOG=1 from its loop, STOPPING=1 at the end."""
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as manager:
        manager.bind(path)
        manager.settimeout(10)
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}  # a ping every 0.1 s
        with SwitchProcess(tmp_path, env=env) as process:
            seen = [manager.recv(100) for _ in range(3)]
            assert seen[0] == b"READY=1" and seen[1:] == [b"WATCHDOG=1", b"WATCHDOG=1"]
            process.stop()
        messages = []
        while (message := manager.recv(100)) != b"STOPPING=1":
            messages.append(message)
        assert set(messages) <= {b"WATCHDOG=1"}
