"""Changes made with ``pbx ext set`` and the web admin's API reach a running switch at once.

The switch reads an extension's row from SQLite on each call (the call core reads forwarding
the same way): a call out on the phone line shows it, since the answer depends on the caller's
outbound permission (403 when not allowed; 503 when allowed and no line is connected). The
forwarding itself is read back from the live database, through ``pbx ext list --json`` and
the running web admin's API, while the switch holds the file open.
"""

from __future__ import annotations

import http.cookiejar
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.message import Request, Response, parse_message
from pbx.store.admins import create_first_admin, setup_code
from pbx.store.database import open_database
from tests.integration.test_call_signalling import SDP, request
from tests.support.cli import pbx
from tests.support.sip_phone import SipPhone
from tests.support.switch_process import SwitchProcess
from tests.support.web_process import WebProcess

pytestmark = pytest.mark.timeout(120)
PASSWORD = "live-forwarding-201"
LIVE_WITHIN = 2.0


class Api:
    """The web admin's JSON API with a logged-in session (cookie and CSRF token)."""

    def __init__(self, url: str) -> None:
        self.url = url
        jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        self.csrf = self.call("GET", "/api/csrf")["csrf_token"]
        login = {"username": "boss", "password": "a long admin password"}
        self.csrf = self.call("POST", "/api/login", login)["csrf_token"]

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method,
            headers={"Content-Type": "application/json",
                     **({"X-CSRF-Token": self.csrf} if hasattr(self, "csrf") else {})},
        )  # fmt: skip
        with self.opener.open(request, timeout=10) as response:
            return json.loads(response.read())


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[SwitchProcess, Api, Path]]:
    db = tmp_path / "switchboard.db"
    for number in ("201", "202"):
        assert pbx(db, "ext", "add", number, "--password", PASSWORD).returncode == 0
    store = open_database(db)
    code = setup_code(store)
    assert code is not None
    create_first_admin(store, code=code, username="boss", password="a long admin password",
                       now=time.time())  # fmt: skip
    store.close()
    with (
        SwitchProcess(tmp_path, "--rtp-ports", "43000-43099") as switch,
        WebProcess(db, sip_port=switch.port) as web,
    ):
        yield switch, Api(web.url), db


def ack(phone: SipPhone, sent: bytes, final: Response) -> None:
    """ACK a non-2xx final answer (RFC 3261 §17.1.1.3), so it is not resent into the next
    exchange: the INVITE's branch, Call-ID and From, the answer's To (with its tag)."""
    invite = parse_message(sent)
    assert isinstance(invite, Request)
    phone.sock.sendto(
        (
            f"ACK {invite.uri} SIP/2.0\r\nVia: {invite.headers.get('via')}\r\n"
            f"Max-Forwards: 70\r\nFrom: {invite.headers.get('from')}\r\n"
            f"To: {final.headers.get('to')}\r\nCall-ID: {invite.call_id}\r\n"
            f"CSeq: {invite.cseq.seq} ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode(),
        phone.switch,
    )


def call_out(phone: SipPhone) -> tuple[int, str]:
    """Call an outside number from ``phone`` (answering the 407); the final answer."""
    host, port = phone.switch
    first = request(phone, "INVITE", "95551234", body=SDP)
    challenge = phone.exchange(first)
    ack(phone, first, challenge)
    assert challenge.status == 407, challenge
    chosen = choose_challenge(challenge.headers.get_all("proxy-authenticate"))
    assert chosen is not None
    credentials = answer_challenge(
        chosen, username=phone.number, password=phone.password, method="INVITE",
        uri=f"sip:95551234@{host}:{port}", cnonce="c0ffee",
    )  # fmt: skip
    auth = f"Proxy-Authorization: {credentials.to_header_value()}\r\n"
    second = request(phone, "INVITE", "95551234", extra=auth, body=SDP)
    answer = phone.exchange(second)
    ack(phone, second, answer)
    return answer.status, answer.reason


def until(read: Any, expected: Any) -> float:
    """Seconds until ``read()`` gives ``expected``; fails after LIVE_WITHIN seconds."""
    start = time.monotonic()
    while (value := read()) != expected:
        assert time.monotonic() - start < LIVE_WITHIN, f"still {value!r} after {LIVE_WITHIN}s"
    return time.monotonic() - start


def test_cli_and_api_changes_are_live_within_two_seconds(
    live: tuple[SwitchProcess, Api, Path],
) -> None:
    switch, api, db = live
    phone = SipPhone("201", PASSWORD, ("127.0.0.1", switch.port))
    try:
        assert call_out(phone) == (503, "Phone Line Not Connected")  # allowed out, no line
        changed = pbx(db, "ext", "set", "201", "--no-outbound")
        assert changed.returncode == 0, changed.stderr
        until(lambda: call_out(phone), (403, "Outbound Calls Not Allowed"))
        api.call("PATCH", "/api/extensions/201", {"outbound_allowed": True})
        until(lambda: call_out(phone), (503, "Phone Line Not Connected"))
    finally:
        phone.close()

    # Forwarding set through the CLI, read by the running web admin; and the other way round.
    set_by_cli = pbx(db, "ext", "set", "201", "--forward-busy", "202", "--forward-no-answer",
                     "95551234", "--forward-after", "15", "--dnd")  # fmt: skip
    assert set_by_cli.returncode == 0, set_by_cli.stderr

    def seen_by_api() -> tuple[Any, ...]:
        shown = api.call("GET", "/api/extensions/201")
        return shown["forward_busy"], shown["forward_no_answer"], shown["forward_after"], shown[
            "dnd"]  # fmt: skip

    until(seen_by_api, ("202", "95551234", 15, True))
    api.call("PATCH", "/api/extensions/201", {"dnd": False, "forward_always": "202"})

    def seen_by_cli() -> tuple[Any, ...]:
        rows = json.loads(pbx(db, "ext", "list", "--json").stdout)
        row = next(r for r in rows if r["number"] == "201")
        return row["dnd"], row["forward_always"]

    until(seen_by_cli, (False, "202"))
    assert switch.proc is not None and switch.proc.poll() is None  # the switch kept running
