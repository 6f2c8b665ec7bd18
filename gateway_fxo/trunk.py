"""The line gateway's SIP client side toward the switch: it registers as the line's account,
runs client transactions (UDP retransmission, §17.1) and answers digest challenges.

The agent (agent.py) builds the requests; this module sends them and waits for their answers.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable

from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.headers import Headers, NameAddress, Via
from pbx.sip.message import Message, Request, Response, make_request
from pbx.sip.uri import SipUri
from pbx.transport.flow import Destination
from pbx.transport.layer import TransportLayer

log = logging.getLogger("gateway.agent")

T1 = 0.5


class TrunkClient:
    """Requests to the switch and their final responses, for one account."""

    def __init__(
        self, *, account: str, password: str, switch: tuple[str, int], bind: str,
        register_expires: int, transport: TransportLayer,
    ) -> None:  # fmt: skip
        self.account = account
        self.password = password
        self.switch = switch
        self.register_expires = register_expires
        self.transport = transport
        self.local: tuple[str, int] = (bind, 0)
        self.registered = asyncio.Event()
        self._pending: dict[str, asyncio.Future[Response]] = {}
        self._provisional: dict[str, Callable[[Response], None]] = {}
        self._provisional_seen: set[str] = set()

    def on_response(self, message: Response) -> bool:
        """Give a response to the transaction waiting for it; False when none is."""
        branch = message.top_via.branch or ""
        if message.status < 200:
            self._provisional_seen.add(branch)
            handler = self._provisional.get(branch)
            if handler is not None:
                handler(message)
            return True
        future = self._pending.get(branch)
        if future is not None and not future.done():
            future.set_result(message)
            return True
        return False

    def via(self) -> Via:
        host, port = self.local
        return Via(
            transport="UDP",
            host=host,
            port=port,
            params=(("branch", "z9hG4bK" + secrets.token_hex(8)), ("rport", None)),
        )

    def me(self, tag: str | None = None) -> NameAddress:
        host, port = self.switch
        params = (("tag", tag),) if tag else ()
        return NameAddress(uri=SipUri(user=self.account, host=host, port=port), params=params)

    def contact(self) -> NameAddress:
        host, port = self.local
        return NameAddress(uri=SipUri(user=self.account, host=host, port=port))

    def send(self, message: Message) -> None:
        host, port = self.switch
        self.transport.send(message, Destination(transport="UDP", host=host, port=port))

    async def transaction(
        self, request: Request, on_provisional: Callable[[Response], None] | None = None
    ) -> Response:
        """Send a request (retransmitting over UDP, §17.1) and wait for its final response."""
        branch = request.top_via.branch or ""
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[branch] = future
        if on_provisional is not None:
            self._provisional[branch] = on_provisional
        interval = T1
        try:
            for _ in range(7):
                self.send(request)
                try:
                    return await asyncio.wait_for(asyncio.shield(future), interval)
                except TimeoutError:
                    if request.method == "INVITE" and branch in self._provisional_seen:
                        return await asyncio.wait_for(future, 180)
                    interval = min(interval * 2, 4.0)
            raise TimeoutError(f"no answer to {request.method}")
        finally:
            self._pending.pop(branch, None)
            self._provisional.pop(branch, None)

    async def authenticated(
        self,
        build: Callable[[int, list[tuple[str, str]]], Request],
        on_provisional: Callable[[Response], None] | None = None,
    ) -> tuple[Request, Response]:
        """Send, and if challenged answer with our credentials (401 or 407)."""
        request = build(1, [])
        response = await self.transaction(request, on_provisional)
        if response.status not in (401, 407):
            return request, response
        if request.method == "INVITE":
            self.ack_non_2xx(request, response)
        header = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        reply = "Authorization" if response.status == 401 else "Proxy-Authorization"
        challenge = choose_challenge(response.headers.get_all(header))
        if challenge is None:
            return request, response
        credentials = answer_challenge(
            challenge,
            username=self.account,
            password=self.password,
            method=request.method,
            uri=str(request.uri),
            cnonce=secrets.token_hex(8),
        )
        request = build(2, [(reply, credentials.to_header_value())])
        return request, await self.transaction(request, on_provisional)

    def ack_non_2xx(self, invite: Request, response: Response) -> None:
        """§17.1.1.3: the ACK for a non-2xx final response shares the INVITE's branch."""
        headers = [
            ("Via", str(invite.top_via)),
            ("Max-Forwards", "70"),
            ("From", str(invite.from_)),
            ("To", str(response.to)),
            ("Call-ID", invite.call_id),
            ("CSeq", f"{invite.cseq.seq} ACK"),
        ]
        self.send(Request(method="ACK", uri=invite.uri, headers=Headers(headers)))

    async def register_loop(self) -> None:
        call_id = secrets.token_hex(10) + "@gateway"
        tag = secrets.token_hex(6)
        seq = 0
        while True:

            def build(_attempt: int, extra: list[tuple[str, str]]) -> Request:
                nonlocal seq
                seq += 1
                host, port = self.switch
                return make_request(
                    "REGISTER",
                    SipUri(host=host, port=port),
                    via=self.via(),
                    from_=self.me(tag),
                    to=self.me(),
                    call_id=call_id,
                    cseq=seq,
                    contact=self.contact(),
                    headers=[
                        ("Expires", str(self.register_expires)),
                        ("User-Agent", "Switchboard line gateway"),
                        *extra,
                    ],
                )

            try:
                _, response = await self.authenticated(build)
                if response.status == 200:
                    self.registered.set()
                    log.info("event=registered account=%s", self.account)
                    await asyncio.sleep(self.register_expires / 2)
                    continue
                log.warning("event=register_failed status=%d", response.status)
            except TimeoutError:
                log.warning("event=register_timeout switch=%s:%d", *self.switch)
            await asyncio.sleep(5)
