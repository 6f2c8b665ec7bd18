"""The line gateway's SIP edge toward the switch, on the project's transaction layer.

Every message the gateway sends or receives goes through one ``TransactionLayer``: client
transactions for REGISTER, INVITE, CANCEL and BYE (retransmitted over UDP, §17.1), server
transactions for what the switch sends (a retransmitted request is answered from its
transaction, §17.2). The clock is injected; the layer's next deadline is reported to the agent,
which arms one ``loop.call_at`` for it and the line's own timers. This module also registers the
line's account and answers digest challenges. What a call's client transactions get (responses,
a timeout, their end) goes to the legs (``sip_legs.py``) through the ``on_client_*`` hooks; a
REGISTER's answer is awaited here.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from pbx.clock import Clock
from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Message, Request, Response, make_request
from pbx.sip.transaction import (
    ClientKey,
    DeliverMessage,
    LegacyServerKey,
    Output,
    SendMessage,
    ServerKey,
    TimerSettings,
    TransactionTerminated,
    TransactionTimeout,
    TransportErrorReported,
)
from pbx.sip.transaction_layer import Incoming, TransactionLayer, client_key
from pbx.sip.uri import SipUri
from pbx.transport.flow import Destination, Flow
from pbx.transport.layer import TransportLayer
from pbx.transport.response_routing import response_destination

log = logging.getLogger("gateway.agent")

ServerTransactionKey = ServerKey | LegacyServerKey
RequestHandler = Callable[[Request, ServerTransactionKey | None, Flow | None], None]
"""Called with each request for the TU: a new one (with its server transaction's key), or an
ACK for a 2xx (key None)."""


@dataclass(slots=True)
class _Waiting:
    future: asyncio.Future[Response]
    on_provisional: Callable[[Response], None] | None


class TrunkClient:
    """Requests to the switch and their answers, and the switch's requests to us."""

    def __init__(
        self, *, account: str, password: str, switch: tuple[str, int], bind: str,
        register_expires: int, transport: TransportLayer, clock: Clock,
        timers: TimerSettings | None = None,
    ) -> None:  # fmt: skip
        self.account = account
        self.password = password
        self.switch = switch
        self.register_expires = register_expires
        self.transport = transport
        self.clock = clock
        self.layer = TransactionLayer(settings=timers)
        self.local: tuple[str, int] = (bind, 0)
        self.registered = asyncio.Event()
        self.on_request: RequestHandler = lambda _r, _k, _f: None
        self.on_client_response: Callable[[ClientKey, Response], None] = lambda _k, _r: None
        """A response on a client transaction nobody awaits here (a call's: its leg's)."""
        self.on_client_failure: Callable[[ClientKey], None] = lambda _k: None
        """Such a transaction timed out or could not be sent (§8.1.3.1: as a 408)."""
        self.on_client_gone: Callable[[ClientKey], None] = lambda _k: None
        """Such a transaction is over (the layer forgot it)."""
        self.on_deadline_changed: Callable[[], None] = lambda: None
        self._waiting: dict[ClientKey, _Waiting] = {}

    @property
    def timers(self) -> TimerSettings:
        return self.layer.settings

    def _destination(self) -> Destination:
        host, port = self.switch
        return Destination(transport="UDP", host=host, port=port)

    # -- the transport's side ------------------------------------------------------------
    def receive(self, message: Message, flow: Flow) -> None:
        now = self.clock.monotonic()
        incoming = Incoming(message=message, source=flow, reliable=False)
        self.carry_out(self.layer.receive(incoming, now))

    def handle_timer(self, now: float) -> None:
        self.carry_out(self.layer.handle_timer(now))

    def next_deadline(self) -> float | None:
        return self.layer.next_deadline()

    def carry_out(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, SendMessage):
                self._send_output(output)
            elif isinstance(output, DeliverMessage):
                self._deliver(output)
            elif isinstance(output, TransactionTimeout | TransportErrorReported):
                if not isinstance(output.key, ClientKey):
                    continue
                waiting = self._waiting.pop(output.key, None)
                if waiting is None:
                    self.on_client_failure(output.key)
                elif not waiting.future.done():
                    waiting.future.set_exception(TimeoutError(f"no answer ({output})"))
            elif (
                isinstance(output, TransactionTerminated)
                and isinstance(output.key, ClientKey)
                and output.key not in self._waiting
            ):
                self.on_client_gone(output.key)
        self.on_deadline_changed()

    def _send_output(self, output: SendMessage) -> None:
        destination = output.destination
        if isinstance(destination, Flow):
            message = output.message
            via = message.top_via if isinstance(message, Response) else None
            destination = (
                response_destination(via, destination)
                if via is not None
                else Destination(transport="UDP", host=destination.remote[0],
                                 port=destination.remote[1])
            )  # fmt: skip
        assert isinstance(destination, Destination)
        self.transport.send(output.message, destination)

    def _deliver(self, output: DeliverMessage) -> None:
        message = output.message
        if isinstance(message, Request):
            key = output.key
            server = key if isinstance(key, ServerKey | LegacyServerKey) else None
            source = output.source if isinstance(output.source, Flow) else None
            self.on_request(message, server, source)
            return
        assert isinstance(message, Response)
        assert isinstance(output.key, ClientKey)
        waiting = self._waiting.get(output.key)
        if waiting is None:
            self.on_client_response(output.key, message)
        elif waiting.future.done():
            pass  # a copy of the final response a REGISTER already got
        elif message.status < 200:
            if waiting.on_provisional is not None:
                waiting.on_provisional(message)
        else:
            waiting.future.set_result(message)

    # -- the TU's side --------------------------------------------------------------------
    def destination(self) -> Destination:
        """Where every request to the switch goes: the address the line is configured with."""
        return self._destination()

    def transmit(self, message: Message, destination: Destination | None,
                 flow: Flow | None) -> None:  # fmt: skip
        """Send outside any transaction: the ACK for a 2xx (§17.1.1.3), a 2xx resent by the
        UAS core (§13.3.1.4) to the flow its INVITE came on (§18.2.2)."""
        if isinstance(message, Response):
            destination = response_destination(message.top_via, flow)
        self.transport.send(message, destination or self._destination())

    def respond(self, key: ServerTransactionKey, response: Response, source: Flow | None) -> None:
        """Our response on server transaction ``key``; once the transaction is gone (a 2xx
        resent after Timer L), straight to where the request came from."""
        out = self.layer.respond(key, response, self.clock.monotonic())
        if not out and self.layer.get(key) is None:
            destination = response_destination(response.top_via, source)
            self.transport.send(response, destination)
        self.carry_out(out)

    def cancel(self, invite_key: ClientKey) -> None:
        """§9.1: CANCEL our INVITE (the layer holds it until a provisional response came)."""
        self.carry_out(self.layer.cancel(invite_key, self.clock.monotonic()))

    def start(self, request: Request, destination: Destination) -> None:
        """Start a client transaction whose responses go to ``on_client_response``."""
        reliable = destination.transport != "UDP"
        now = self.clock.monotonic()
        self.carry_out(self.layer.send_request(request, destination, now, reliable=reliable))

    async def transaction(
        self, request: Request, on_provisional: Callable[[Response], None] | None = None
    ) -> Response:
        """Send a request in a client transaction and wait for its final response."""
        key = client_key(request)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._waiting[key] = _Waiting(future, on_provisional)
        try:
            self.carry_out(
                self.layer.send_request(
                    request, self._destination(), self.clock.monotonic(), reliable=False
                )
            )
            return await future
        finally:
            if self._waiting.get(key) is not None and self._waiting[key].future is future:
                del self._waiting[key]

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

    async def authenticated(
        self,
        build: Callable[[int, list[tuple[str, str]]], Request],
        on_provisional: Callable[[Response], None] | None = None,
    ) -> tuple[Request, Response]:
        """Send, and if challenged answer with our credentials (401 or 407). The transaction
        layer ACKs a challenge to an INVITE (§17.1.1.3)."""
        request = build(1, [])
        response = await self.transaction(request, on_provisional)
        credentials = self.credentials(request, response)
        if credentials is None:
            return request, response
        request = build(2, [credentials])
        return request, await self.transaction(request, on_provisional)

    def credentials(self, request: Request, response: Response) -> tuple[str, str] | None:
        """The header field answering a 401/407 to ``request`` with the line's account
        (§22.2, §22.3); None for any other response or a challenge we cannot answer."""
        if response.status not in (401, 407):
            return None
        header = "www-authenticate" if response.status == 401 else "proxy-authenticate"
        reply = "Authorization" if response.status == 401 else "Proxy-Authorization"
        challenge = choose_challenge(response.headers.get_all(header))
        if challenge is None:
            return None
        answer = answer_challenge(
            challenge,
            username=self.account,
            password=self.password,
            method=request.method,
            uri=str(request.uri),
            cnonce=secrets.token_hex(8),
        )
        return reply, answer.to_header_value()

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
