"""Lost datagrams between the switch and the line gateway, for real: the switch, the gateway on
the simulated line and a Python phone (extension 201) are real processes on loopback, with a
small UDP relay in this test between switch and gateway that drops one chosen datagram.

The gateway registers to the relay (on 127.0.0.2, so the switch reaches the gateway through
the relay's address rather than the Contact). The phone dials 9 5550100 out on the line; the
exchange answers; the gateway's 200 to the switch's INVITE is dropped once (it must be resent,
§13.3.1.4, and the call completes), or the switch's ACK for it is dropped once (the 200 is
resent, the switch ACKs again, and the call stays up instead of the 64*T1 give-up).
"""

from __future__ import annotations

import asyncio
import re
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gateway_fxo.agent import Agent
from gateway_fxo.backends.sim import AsyncioTicker, SimulatedLine
from gateway_fxo.line_machine import LineMachineState
from gateway_fxo.line_policy import AgentSettings
from gateway_fxo.sim_control import SimControlClient
from pbx.media.g711 import ULAW_DECODE
from pbx.media.rtp import RtpPacket
from pbx.sip.headers import Via
from pbx.sip.message import Request, Response, make_request, make_response
from pbx.sip.transaction import TimerSettings
from pbx.store.database import open_database
from pbx.store.extensions import LINE_ACCOUNT, ensure_line_account
from tests.integration.test_call_signalling import send_authorized
from tests.support.cli import pbx
from tests.support.gateway_process import GatewayProcess
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess

pytestmark = pytest.mark.timeout(120)

PASSWORD = "retransmit-pass-201"
SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 45390 RTP/AVP 0\r\n"
)


class DroppingRelay:
    """Relays datagrams between the gateway and the switch; drops the first one ``drop`` picks
    (called with the bytes and whether they come from the gateway)."""

    def __init__(
        self, switch: tuple[str, int], drop: Callable[[bytes, bool], bool], *, once: bool = True
    ) -> None:
        self.switch = switch
        self.drop = drop
        self.once = once
        self.dropped: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.2", 0))
        self.port = self.sock.getsockname()[1]
        self.gateway: tuple[str, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DroppingRelay:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if not ready:
                continue
            data, source = self.sock.recvfrom(65535)
            from_gateway = source != self.switch
            if from_gateway:
                self.gateway = source
            if (not self.once or not self.dropped) and self.drop(data, from_gateway):
                self.dropped.append(data)
                continue
            target = self.switch if from_gateway else self.gateway
            if target is not None:
                self.sock.sendto(data, target)


def until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def first_200_to_invite(data: bytes, from_gateway: bool) -> bool:
    return from_gateway and data.startswith(b"SIP/2.0 200") and b" INVITE\r\n" in data


def first_ack(data: bytes, from_gateway: bool) -> bool:
    return not from_gateway and data.startswith(b"ACK ")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "switchboard.db"
    assert pbx(path, "ext", "add", "201", "--password", PASSWORD).returncode == 0
    return path


def final(phone: SipPhone, timeout: float) -> Response:
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, "no final response"
        message = phone.receive(left)
        current = message.cseq.seq == phone.cseq if isinstance(message, Response) else False
        if isinstance(message, Response) and message.status >= 200 and current:
            return message  # (a copy of the 407 to the first INVITE is not it)


def in_dialog(phone: SipPhone, method: str, ok: Response, seq: int) -> Request:
    via = Via(transport="UDP", host=phone.host, port=phone.port,
              params=(("branch", f"z9hG4bK-rt-{method}-{seq}"),))  # fmt: skip
    return make_request(method, ok.contacts[0].uri, via=via, from_=ok.from_, to=ok.to,
                        call_id=ok.call_id, cseq=seq)  # fmt: skip


@pytest.mark.parametrize(
    ("drop", "what"),
    [(first_200_to_invite, "the gateway's 200"), (first_ack, "the switch's ACK")],
    ids=["200-dropped", "ack-dropped"],
)
def test_an_outbound_line_call_completes_when_a_datagram_is_lost(
    db: Path, tmp_path: Path, drop: Callable[[bytes, bool], bool], what: str
) -> None:
    with (
        SwitchProcess(tmp_path, "--rtp-ports", "45000-45199") as switch,
        DroppingRelay(("127.0.0.1", switch.port), drop) as relay,
        GatewayProcess(db, relay.port, switch_host="127.0.0.2") as gateway,
    ):
        assert gateway.output is not None
        phone = SipPhone("201", PASSWORD, ("127.0.0.1", switch.port))
        control = SimControlClient("127.0.0.1", gateway.control_port)
        try:
            assert phone.register().status == 200
            send_authorized(phone, "INVITE", "95550100", SDP)
            until(lambda: len(control.dialled_digits()) >= 7, 20, "the gateway to dial")
            control.far_end_answer()
            ok = final(phone, 20)
            assert ok.status == 200, ok
            phone.sock.sendto(bytes(in_dialog(phone, "ACK", ok, ok.cseq.seq)), phone.switch)
            gateway.output.wait_for(re.compile(r"event=confirmed "), timeout=10)
            assert len(relay.dropped) == 1, f"{what} was not dropped"
            sent = [line for line in gateway.output.lines if "event=2xx_sent" in line]
            assert len(sent) >= 2, sent  # the first one was lost (or not ACKed): resent
            assert not any("event=ack_timeout" in line for line in gateway.output.lines)
            assert control.state()["phase"] == "connected"
            assert control.state()["off_hook"]
            # The call is up through the switch; the phone hangs up, the line goes on hook.
            phone.cseq = ok.cseq.seq + 1
            phone.sock.sendto(bytes(in_dialog(phone, "BYE", ok, phone.cseq)), phone.switch)
            assert final(phone, 10).status == 200
            until(lambda: not control.state()["off_hook"], 10, "the line to go on hook")
            switch.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
        finally:
            control.close()
            phone.close()


# -- early media on an outbound line call ----------------------------------------------------
def peak_hz(samples: list[int]) -> float:
    spectrum = np.abs(np.fft.rfft(np.asarray(samples, dtype=np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * 8000 / len(samples)


@pytest.mark.parametrize("outcome", ["answer", "busy"])
def test_an_outbound_line_call_sends_183_and_the_ringback_before_the_answer(
    db: Path, tmp_path: Path, outcome: str
) -> None:
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 45390))
    with (
        SwitchProcess(tmp_path, "--rtp-ports", "45200-45389") as switch,
        GatewayProcess(db, switch.port) as gateway,
    ):
        phone = SipPhone("201", PASSWORD, ("127.0.0.1", switch.port))
        control = SimControlClient("127.0.0.1", gateway.control_port)
        try:
            assert phone.register().status == 200
            send_authorized(phone, "INVITE", "95550100", SDP)
            deadline = time.monotonic() + 20
            while True:  # the 183 with SDP comes once dialling is over, before any final
                message = phone.receive(max(0.1, deadline - time.monotonic()))
                if isinstance(message, Response) and message.cseq.seq == phone.cseq:
                    assert message.status < 200, message
                    if message.status == 183:
                        break
            assert message.body.startswith(b"v=0"), message
            assert control.state()["phase"] == "dialling"  # the exchange waits for more digits
            until(lambda: control.state()["phase"] == "ringback", 10, "the far end to ring")
            samples: list[int] = []
            rtp.settimeout(5)
            while len(samples) < 8000:  # one second of what the line plays, as early media
                packet = RtpPacket.parse(rtp.recvfrom(2048)[0])
                samples += [ULAW_DECODE[b] for b in packet.payload]
                loud = max(abs(v) for v in samples[-160:])
                if loud < 300:
                    samples.clear()  # between ringback bursts (or before the first)
            assert 420 < peak_hz(samples[:8000]) < 500, peak_hz(samples)  # US ringback 440+480
            if outcome == "answer":
                control.far_end_answer()
                ok = final(phone, 10)
                assert ok.status == 200, ok
                phone.sock.sendto(bytes(in_dialog(phone, "ACK", ok, ok.cseq.seq)), phone.switch)
                phone.cseq = ok.cseq.seq + 1
                phone.sock.sendto(bytes(in_dialog(phone, "BYE", ok, phone.cseq)), phone.switch)
                assert final(phone, 10).status == 200
            else:
                control.far_end_busy()
                refused = final(phone, 10)
                assert refused.status == 486, refused
            until(lambda: not control.state()["off_hook"], 10, "the line to go on hook")
        finally:
            control.close()
            phone.close()
            rtp.close()


# -- no ACK at all: the gateway gives up after 64*T1 -------------------------------------------
def test_without_any_ack_the_gateway_byes_and_goes_on_hook_after_64_t1(
    db: Path, tmp_path: Path
) -> None:
    """The agent in process (its T1 at 20 ms, so 64*T1 is 1.28 s) on a simulated line; every
    ACK of the switch is dropped: the 200 is resent until the give-up, then BYE and on hook."""
    line_password = ensure_line_account(open_database(db), now=time.time())

    async def main() -> None:
        with (
            SwitchProcess(tmp_path, "--rtp-ports", "45200-45299") as switch,
            DroppingRelay(("127.0.0.1", switch.port), first_ack, once=False) as relay,
        ):
            line = SimulatedLine("US", ticker=AsyncioTicker())
            settings = AgentSettings(account=LINE_ACCOUNT, password=line_password,
                                     switch=("127.0.0.2", relay.port))  # fmt: skip
            agent = Agent(line, settings, timers=TimerSettings(t1=0.02))
            phone = SipPhone("201", PASSWORD, ("127.0.0.1", switch.port))
            try:
                assert (await asyncio.to_thread(phone.register)).status == 200
                await agent.start()
                await asyncio.wait_for(agent.registered.wait(), 10)
                await asyncio.to_thread(send_authorized, phone, "INVITE", "95550100", SDP)
                for _ in range(200):
                    if line.state().phase == "dialling":
                        break
                    await asyncio.sleep(0.05)
                line.far_end_answer()
                ok = await asyncio.to_thread(final, phone, 20)
                assert ok.status == 200, ok
                phone.sock.sendto(bytes(in_dialog(phone, "ACK", ok, ok.cseq.seq)), phone.switch)
                bye = await asyncio.to_thread(phone.receive, 10)
                while not (isinstance(bye, Request) and bye.method == "BYE"):
                    bye = await asyncio.to_thread(phone.receive, 10)
                phone.sock.sendto(bytes(make_response(bye, 200)), phone.switch)
                assert len(relay.dropped) >= 2  # the switch ACKed the first 200 and a copy
                for _ in range(100):
                    if agent.machine is LineMachineState.IDLE:
                        break
                    await asyncio.sleep(0.05)
                assert agent.machine is LineMachineState.IDLE and not line.is_off_hook
                assert agent.status == "idle"
            finally:
                await agent.stop()
                phone.close()

    asyncio.run(asyncio.wait_for(main(), 60))
