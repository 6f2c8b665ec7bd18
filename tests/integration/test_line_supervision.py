"""The line gateway's agent, in process on the simulated line, against the real switch.

Each test runs ``pbx serve`` on loopback, a small Python phone as extension 201, and the Agent
on a SimulatedLine ticking in real time (20 ms frames on the event loop). The far end hangs up
in one way or another, and the phone must get its BYE for the reason the line's settings say
(or, with that layer off, only when a backstop fires). Then the card loses its device
mid-call: the call must end at once, the line show "down" and refuse calls with 503, until the
device is back.

Every wait is bounded and wakes on what it waits for; the switch and the agent are stopped
whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gateway_fxo.agent import Agent
from gateway_fxo.backends.sim import AsyncioTicker, SimulatedLine
from gateway_fxo.line import LineCardError, LineCardLost, LineCardRestored
from gateway_fxo.line_policy import AgentSettings
from pbx.sip.message import Request, Response, make_response
from pbx.store.database import open_database
from pbx.store.extensions import LINE_ACCOUNT, add_extension, ensure_line_account
from tests.integration.test_call_signalling import send_authorized
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess

PHONE_PASSWORD = "supervision-pass-201"
WHY_RE = re.compile(r"event=far_end_hung_up why='([^']+)'")


class UnpluggableLine(SimulatedLine):
    """The simulated line on a card whose device can vanish, as the modem card does it: the
    card is on hook when it reports LineCardLost, and cannot go off hook until it is back."""

    plugged = True

    async def unplug(self) -> None:
        self.plugged = False
        await super().on_hook()
        self.on_event(LineCardLost(reason="device reports end of file"))

    def replug(self) -> None:
        self.plugged = True
        self.on_event(LineCardRestored())

    async def off_hook(self) -> None:
        if not self.plugged:
            raise LineCardError("device unplugged")
        await super().off_hook()


@dataclass
class Statuses:
    """The line status the agent reports (what the web admin shows), waited on by value."""

    seen: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def __call__(self, status: str) -> None:
        self.seen.append(status)
        self.changed.set()

    async def until(self, status: str, timeout: float = 10.0) -> None:
        async def wait() -> None:
            while not self.seen or self.seen[-1] != status:
                self.changed.clear()
                await self.changed.wait()

        try:
            await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"line status not {status!r} in {timeout} s: {self.seen}"
            ) from None


@dataclass
class Office:
    switch: SwitchProcess
    phone: SipPhone
    line: UnpluggableLine
    agent: Agent
    statuses: Statuses
    rtp: socket.socket

    def sdp(self) -> bytes:
        port = self.rtp.getsockname()[1]
        return (
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0\r\n"
        ).encode()


@contextlib.asynccontextmanager
async def office(
    tmp_path: Path, line_options: dict[str, Any], **settings: Any
) -> AsyncIterator[Office]:
    """Switch, registered phone 201, and the agent registered as the line (answering after the
    first ring, so a test need not wait through a cadence)."""
    db = open_database(tmp_path / "switchboard.db")
    add_extension(db, number="201", name="Reception", password=PHONE_PASSWORD, now=time.time())
    line_password = ensure_line_account(db, now=time.time())
    db.close()
    statuses = Statuses()
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    with SwitchProcess(tmp_path, "--rtp-ports", "35200-35299") as switch:
        phone = SipPhone("201", PHONE_PASSWORD, ("127.0.0.1", switch.port))
        line = UnpluggableLine("US", far_tone_hz=None, ticker=AsyncioTicker(), **line_options)
        agent = Agent(
            line,
            AgentSettings(
                account=LINE_ACCOUNT, password=line_password,
                switch=("127.0.0.1", switch.port), answer_after_rings=1, **settings,
            ),
            on_status=statuses,
        )  # fmt: skip
        try:
            assert (await asyncio.to_thread(phone.register)).status == 200
            await agent.start()
            await asyncio.wait_for(agent.registered.wait(), 10)
            yield Office(switch, phone, line, agent, statuses, rtp)
        finally:
            await agent.stop()
            phone.close()
            rtp.close()


async def receive(
    phone: SipPhone, wanted: Callable[[Request | Response], bool], timeout: float = 10.0
) -> Request | Response:
    """The next message ``wanted`` says is the one (others are dropped: 100s, retransmissions)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        left = deadline - loop.time()
        if left <= 0:
            raise AssertionError(f"phone {phone.number}: nothing wanted in {timeout} s")
        try:
            message = await asyncio.to_thread(phone.receive, left)
        except TimeoutError:
            continue
        if wanted(message):
            return message


def request_named(method: str) -> Callable[[Request | Response], bool]:
    return lambda m: isinstance(m, Request) and m.method == method


def final_response(m: Request | Response) -> bool:
    return isinstance(m, Response) and m.status >= 200


def reply(phone: SipPhone, request: Request, status: int, **kwargs: Any) -> None:
    response = make_response(request, status, to_tag="ph201", **kwargs)
    phone.sock.sendto(bytes(response), phone.switch)


async def answered_inbound_call(o: Office) -> Request:
    """The line rings; the phone gets the switch's INVITE and answers; the line goes off hook."""
    o.line.place_inbound_call()
    invite = await receive(o.phone, request_named("INVITE"))
    assert isinstance(invite, Request)
    contact = [("Contact", f"<sip:201@{o.phone.host}:{o.phone.port}>")]
    reply(o.phone, invite, 200, headers=[*contact, ("Content-Type", "application/sdp")],
          body=o.sdp())  # fmt: skip
    await o.statuses.until("in use")
    assert o.line.state().in_call
    return invite


async def bye_for(o: Office, invite: Request, timeout: float = 15.0) -> float:
    """Wait for the BYE of the call ``invite`` began, answer it; return when it came."""
    bye = await receive(
        o.phone, lambda m: request_named("BYE")(m) and m.call_id == invite.call_id, timeout
    )
    assert isinstance(bye, Request)
    reply(o.phone, bye, 200)
    return asyncio.get_running_loop().time()


def reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return WHY_RE.findall(caplog.text)


@pytest.fixture(autouse=True)
def agent_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.agent")


# -- the supervision layers, each on and off --------------------------------------------------
BACKSTOP = 4.0  # maximum call length when a layer is off: the call must end by this, not before


@pytest.mark.parametrize(
    ("hangup", "line_options", "settings", "why"),
    [
        pytest.param({"signal": "busy_tone"}, {}, {}, "busy tone", id="busy-tone"),
        pytest.param({"signal": "busy_tone"}, {}, {"tone_disconnect": False, "max_call": BACKSTOP},
                     "maximum call length", id="busy-tone-off"),
        pytest.param({"signal": "polarity"}, {"dial_tone_after_clear": 0.3}, {}, "dial tone",
                     id="dial-tone-after-clear"),
        pytest.param({"signal": "polarity"}, {"dial_tone_after_clear": 0.3},
                     {"dial_tone_disconnect": False, "max_call": BACKSTOP},
                     "maximum call length", id="dial-tone-after-clear-off"),
        pytest.param({"signal": "polarity"}, {}, {"polarity_disconnect": True},
                     "polarity reversal", id="polarity"),
        pytest.param({"signal": "loop_drop", "loop_drop_seconds": 0.6}, {}, {},
                     "loop current drop", id="loop-drop"),
        pytest.param({"signal": "loop_drop", "loop_drop_seconds": 0.2}, {},
                     {"max_call": BACKSTOP}, "maximum call length", id="loop-drop-too-short"),
        pytest.param(None, {}, {"silence_timeout": 1.5}, "silence", id="silence"),
    ],
)  # fmt: skip
def test_each_supervision_layer_ends_the_call_only_when_it_is_on(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    hangup: dict[str, Any] | None,
    line_options: dict[str, Any],
    settings: dict[str, Any],
    why: str,
) -> None:
    async def main() -> None:
        async with office(tmp_path, line_options, **settings) as o:
            invite = await answered_inbound_call(o)
            answered = asyncio.get_running_loop().time()
            if hangup is not None:
                o.line.far_end_hangup(**hangup)
            ended = await bye_for(o, invite)
            await o.statuses.until("idle")
            assert reasons(caplog) == [why]
            assert not o.line.is_off_hook
            if why == "maximum call length":
                # The layer that was off did not end it early: only the backstop did.
                assert ended - answered >= BACKSTOP - 1.0
            if why == "silence":
                assert ended - answered >= 1.5 - 0.2

    asyncio.run(asyncio.wait_for(main(), 60))


# -- the card loses its device ------------------------------------------------------------------
def test_a_lost_card_ends_an_answered_call_and_refuses_calls_until_it_is_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with office(tmp_path, {}) as o:
            invite = await answered_inbound_call(o)
            await o.line.unplug()
            await bye_for(o, invite, timeout=3.0)  # at once, not at the silence timeout
            await o.statuses.until("down")
            assert reasons(caplog) == ["line card lost: device reports end of file"]
            o.switch.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=5)
            # The switch's INVITE for an outside call while the card is gone: 503.
            await asyncio.to_thread(send_authorized, o.phone, "INVITE", "95550100", o.sdp())
            refused = await receive(o.phone, final_response)
            assert isinstance(refused, Response) and refused.status == 503, refused
            o.line.replug()
            await o.statuses.until("idle")
            seen = o.statuses.seen
            changes = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
            assert changes == ["idle", "ringing", "in use", "down", "idle"]

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_lost_card_cancels_an_inbound_call_still_ringing_the_phone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with office(tmp_path, {}) as o:
            o.line.place_inbound_call()
            invite = await receive(o.phone, request_named("INVITE"))
            assert isinstance(invite, Request)
            reply(o.phone, invite, 180)
            await o.line.unplug()
            cancel = await receive(o.phone, request_named("CANCEL"), timeout=5.0)
            assert isinstance(cancel, Request) and cancel.call_id == invite.call_id
            reply(o.phone, cancel, 200)
            reply(o.phone, invite, 487)
            ack = await receive(o.phone, request_named("ACK"), timeout=5.0)
            assert ack.call_id == invite.call_id
            o.switch.wait_for(re.compile(r"event=call_end .*answered=False"), timeout=5)
            await o.statuses.until("down")
            assert reasons(caplog) == ["line card lost: device reports end of file"]
            assert o.agent._call is None

    asyncio.run(asyncio.wait_for(main(), 60))


def test_a_lost_card_refuses_the_outside_call_it_was_dialling(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> None:
        async with office(tmp_path, {}) as o:
            await asyncio.to_thread(send_authorized, o.phone, "INVITE", "95550100", o.sdp())
            await o.statuses.until("in use")  # off hook, waiting for dial tone
            await o.line.unplug()
            refused = await receive(o.phone, final_response)
            assert isinstance(refused, Response) and refused.status == 503, refused
            await o.statuses.until("down")
            assert reasons(caplog) == ["line card lost: device reports end of file"]
            assert o.line.dialled_digits() == ""  # it stopped before dialling
            o.switch.wait_for(re.compile(r"event=call_end .*answered=False"), timeout=5)

    asyncio.run(asyncio.wait_for(main(), 60))
