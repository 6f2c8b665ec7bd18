"""Forwarding over loopback with real phones: forward always, on busy, on no answer and when
unregistered, each answered by a real phone that sees why it rings.

The caller (203) and the forward target (202) are baresip, answering by itself; 201, whose
forwarding is set with ``pbx ext set``, is a scripted phone so the test decides whether it is
busy, rings without answering, or is not registered. Each call must reach 202 with a Diversion
header naming 201 and the reason (RFC 5806), be answered, and leave a CDR row with
``forwarded_from`` 201 (``pbx calls --json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from pbx.sip.message import Request, Response, make_response
from tests.support.cli import pbx
from tests.support.phone_peer import Office, PeerPhone, office, wait_until
from tests.support.sip_phone import SipPhone

pytestmark = pytest.mark.timeout(240)


@dataclass
class Scene:
    office: Office
    caller: PeerPhone
    target: PeerPhone
    phone: SipPhone
    calls: int = 0


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    tmp_path = tmp_path_factory.mktemp("forwarding")
    with office(tmp_path, rtp_ports=(46000, 46099), users=("201", "202", "203")) as pbx_office:
        target = PeerPhone(pbx_office, tmp_path / "p202", "202", rtp_ports=(46100, 46199))
        caller = PeerPhone(pbx_office, tmp_path / "p203", "203", rtp_ports=(46200, 46299))
        phone = SipPhone("201", pbx_office.passwords["201"], pbx_office.switch)
        try:
            assert phone.register().status == 200
            target.wait_registered()
            caller.wait_registered()
            yield Scene(pbx_office, caller, target, phone)
        finally:
            phone.close()
            caller.stop()
            target.stop()


@pytest.fixture
def forwarding_off(scene: Scene) -> Iterator[None]:
    yield
    off = pbx(scene.office.db, "ext", "set", "201", "--no-forward-always", "--no-forward-busy",
              "--no-forward-no-answer", "--no-forward-unregistered")  # fmt: skip
    assert off.returncode == 0, off.stderr


def invite_for(phone: SipPhone, timeout: float = 10) -> Request:
    """The next INVITE the scripted phone gets (qualify OPTIONS are answered meanwhile)."""
    while True:
        message = phone.receive(timeout)
        if isinstance(message, Request) and message.method == "INVITE":
            return message


def queued(phone: SipPhone) -> list[Request | Response]:
    """What is waiting on the scripted phone's socket now (no waiting)."""
    found: list[Request | Response] = []
    while True:
        try:
            message = phone.receive_one(0.0)
        except (BlockingIOError, TimeoutError):
            return found
        if message is not None:
            found.append(message)


def reply(phone: SipPhone, request: Request, status: int) -> None:
    response = make_response(request, status, to_tag="scripted201")
    phone.sock.sendto(bytes(response), phone.switch)


def forwarded_call(scene: Scene, reason: str, phone_201: Callable[[], None]) -> None:
    """203 calls 201; ``phone_201`` plays 201's part; 202 must answer with the Diversion."""
    scene.calls += 1
    port = scene.office.process.port
    scene.caller.command("dial", f"sip:201@127.0.0.1:{port}")
    phone_201()
    scene.target.wait_count("CALL_ESTABLISHED", scene.calls, 20)
    scene.caller.wait_count("CALL_ESTABLISHED", scene.calls, 20)
    seen = re.findall(r"^Diversion: (.*?)\r?$", scene.target.log(), re.MULTILINE)
    assert any(
        re.fullmatch(rf"<sip:201@127\.0\.0\.1:{port}>;reason={reason};counter=1", s) for s in seen
    ), seen
    scene.caller.command("hangup")
    scene.target.wait_count("CALL_CLOSED", scene.calls, 15)

    def newest() -> tuple[str, str | None]:
        rows = json.loads(pbx(scene.office.db, "calls", "--json", "--limit", "1").stdout)
        return (rows[0]["callee"], rows[0]["forwarded_from"]) if rows else ("", None)

    before = scene.calls
    wait_until(lambda: newest() == ("202", "201"), 5, f"the CDR of forwarded call {before}")


def set_201(scene: Scene, *args: str) -> None:
    changed = pbx(scene.office.db, "ext", "set", "201", *args)
    assert changed.returncode == 0, changed.stderr


def test_forward_always(scene: Scene, forwarding_off: None) -> None:
    set_201(scene, "--forward-always", "202")
    forwarded_call(scene, "unconditional", lambda: None)
    # 202 was rung instead of 201, not after it: anything sent to 201 would be queued by now.
    assert not [m for m in queued(scene.phone) if isinstance(m, Request) and m.method == "INVITE"]


def test_forward_on_busy(scene: Scene, forwarding_off: None) -> None:
    set_201(scene, "--forward-busy", "202")

    def busy() -> None:
        invite = invite_for(scene.phone)
        reply(scene.phone, invite, 486)

    forwarded_call(scene, "user-busy", busy)


def test_forward_on_no_answer(scene: Scene, forwarding_off: None) -> None:
    set_201(scene, "--forward-no-answer", "202", "--forward-after", "5")

    def rings_unanswered() -> None:
        invite = invite_for(scene.phone)
        reply(scene.phone, invite, 180)
        while True:
            message = scene.phone.receive(10)
            if isinstance(message, Request) and message.method == "CANCEL":
                break
        reply(scene.phone, message, 200)
        reply(scene.phone, invite, 487)

    forwarded_call(scene, "no-answer", rings_unanswered)


def test_forward_when_unregistered(scene: Scene, forwarding_off: None) -> None:
    set_201(scene, "--forward-unregistered", "202")
    assert scene.phone.register(expires=0).status == 200
    try:
        forwarded_call(scene, "unavailable", lambda: None)
    finally:
        assert scene.phone.register().status == 200
