"""The switch's composition root: settings, layers, transports and signals.

Nothing imports this module; it builds the objects, wires their callbacks and
runs the event loop. Every other module gets what it needs as arguments.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass

from pbx.calls.service import CALL_METHODS, CallPolicy, CallService
from pbx.clock import Clock, SystemClock
from pbx.config import Settings
from pbx.event_loop import tune_gc
from pbx.media.endpoint import MediaRelay
from pbx.proxy.service import ProxyService, own_address
from pbx.randomness import RandomPool
from pbx.registrar.location import reach
from pbx.registrar.service import RegistrarService
from pbx.routing.dispatcher import Capabilities, RequestDispatcher, Service
from pbx.routing.proxy import MessageProxy, ProxyPolicy
from pbx.sd_notify import keep_watchdog_fed, notify
from pbx.sip.auth import NONCE_SALT_LENGTH
from pbx.sip.errors import SipParseError
from pbx.sip.message import Message, Request, Response, make_response_from_fields
from pbx.store.database import open_database
from pbx.store.extensions import get_extension, stored_secrets
from pbx.transport.flow import Address, Destination, Flow
from pbx.transport.layer import TransportLayer
from pbx.transport.response_routing import response_destination, stamp_received

log = logging.getLogger("pbx.app")


def pooled_tags(pool: RandomPool) -> Callable[[], str]:
    """To/From tags with 64 random bits each (§19.3 asks for at least 32), from ``pool``."""
    return lambda: pool.hex(8)


@dataclass(frozen=True, slots=True)
class ListeningAddresses:
    udp: Address
    tcp: Address


class Switch:
    """The running switch: transports in, dispatcher decides, transports out."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        new_tag: Callable[[], str] | None = None,
        random: RandomPool | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.random = random or RandomPool()
        if new_tag is None:
            new_tag = pooled_tags(self.random)
        self.db = open_database(settings.db)
        self.transport = TransportLayer(on_message=self._on_message, on_error=self._on_error)
        self.registrar = RegistrarService(
            db=self.db,
            settings=settings,
            clock=self.clock,
            transport=self.transport,
            new_tag=new_tag,
            new_salt=lambda: self.random.bytes(NONCE_SALT_LENGTH),
        )
        self.transport.accept_source = self.registrar.accept_source
        self.relay = MediaRelay(settings.bind, settings.rtp_ports, settings.media_address or None)
        self.calls = CallService(
            db=self.db,
            clock=self.clock,
            transport=self.transport,
            relay=self.relay,
            authenticator=self.registrar.authenticator,
            secrets_of=lambda number: stored_secrets(self.db, number),
            location=self.registrar.location,
            record_failure=self.registrar.record_auth_failure,
            new_tag=new_tag,
            new_branch=lambda: self.random.hex(10),
            new_salt=lambda: self.random.bytes(NONCE_SALT_LENGTH),
            server=settings.server_name,
            default_offer=self.registrar.default_offer,
            policy=CallPolicy(
                ring_timeout=float(settings.ring_timeout),
                session_refresh=float(settings.session_refresh),
            ),
        )
        self.registrar.on_restore = self.calls.resync_active
        self.proxy = ProxyService(
            proxy=MessageProxy(
                authenticator=self.registrar.authenticator,
                secrets_of=lambda number: stored_secrets(self.db, number),
                is_extension=lambda number: get_extension(self.db, number) is not None,
                bindings_of=self.registrar.location.bindings_of,
                reach=reach,
                local=own_address(self.transport),
                new_branch=lambda: self.random.hex(10),
                new_tag=new_tag,
                new_salt=lambda: self.random.bytes(NONCE_SALT_LENGTH),
                policy=ProxyPolicy(
                    server=settings.server_name, default_offer=self.registrar.default_offer
                ),
            ),
            clock=self.clock,
            transport=self.transport,
            record_failure=self.registrar.record_auth_failure,
        )
        services: dict[str, Service] = {"REGISTER": self.registrar.handle_register}
        services.update({method: self.calls.handle_request for method in CALL_METHODS})
        services["MESSAGE"] = self._route_message
        self.dispatcher = RequestDispatcher(
            capabilities=Capabilities(
                server=settings.server_name,
                allow=(
                    "INVITE",
                    "ACK",
                    "CANCEL",
                    "BYE",
                    "OPTIONS",
                    "REGISTER",
                    "UPDATE",
                    "INFO",
                    "PRACK",
                    "MESSAGE",
                    "REFER",
                    "NOTIFY",
                ),  # fmt: skip
                accept=("application/sdp", "text/plain", "message/sipfrag"),
                supported=("path", "100rel", "timer", "replaces"),
            ),
            new_tag=new_tag,
            services=services,
        )

    async def start(self) -> ListeningAddresses:
        bind, port = self.settings.bind, self.settings.sip_port
        udp = await self.transport.listen_udp(bind, port)
        # With port 0, take the same number for TCP as UDP got (tests want one port).
        tcp = await self.transport.listen_tcp(bind, udp[1])
        self.registrar.start()
        loop = type(asyncio.get_running_loop()).__module__.split(".")[0]
        log.info(
            "event=listening udp=%s:%d tcp=%s:%d loop=%s", udp[0], udp[1], tcp[0], tcp[1], loop
        )
        return ListeningAddresses(udp=udp, tcp=tcp)

    async def stop(self) -> None:
        self.proxy.stop()
        await self.calls.stop()
        await self.relay.close()
        self.registrar.stop()
        await self.transport.close()
        self.db.close()

    # -- the edge: messages in, responses out ---------------------------------
    def _route_message(self, request: Request, flow: Flow | None) -> Response | None:
        """MESSAGE outside a dialog is the proxy's (RFC 3428 §4); one in a call's dialog
        crosses the call like INFO does."""
        if request.to.tag is None:
            return self.proxy.handle_request(request, flow)
        return self.calls.handle_request(request, flow)

    def _on_message(self, message: Message, flow: Flow) -> None:
        if not isinstance(message, Request):
            # Responses belong to client transactions (the MESSAGE proxy, calls, qualify's
            # OPTIONS); one that matches none is discarded (§18.1.2).
            if not self.proxy.handle_response(message, flow) and not self.calls.handle_response(
                message, flow
            ):
                self.registrar.handle_response(message, flow)
            return
        try:
            request = stamp_received(message, flow)
            response = self.dispatcher.handle(request, flow)
            if response is None:
                return
            destination = response_destination(response.top_via, flow)
        except SipParseError as exc:
            # A typed view the layers read lazily (e.g. Contact) was malformed.
            self._on_error(
                SipParseError(
                    exc.reason,
                    status=exc.status,
                    headers=tuple(message.headers),
                    method=message.method,
                ),
                flow,
            )
            return
        self.transport.send(response, destination)

    def _on_error(self, exc: SipParseError, flow: Flow) -> None:
        """A malformed request gets 400 (or what its error names); garbage gets silence."""
        if exc.method is None or exc.method == "ACK" or not exc.headers:
            log.debug("event=dropped_garbage peer=%s:%d reason=%r", *flow.remote, exc.reason)
            return
        response = make_response_from_fields(
            exc.headers, exc.status, exc.reason, headers=exc.extra_headers
        )
        if response is None:
            log.debug("event=dropped_unanswerable peer=%s:%d reason=%r", *flow.remote, exc.reason)
            return
        log.info(
            "event=bad_request status=%d reason=%r peer=%s:%d", exc.status, exc.reason, *flow.remote
        )
        # The request's Via may be what is broken, so answer the source address.
        self.transport.send(
            response,
            Destination(transport=flow.transport, host=flow.remote[0], port=flow.remote[1]),
        )


async def run_switch(settings: Settings, *, ready: Callable[[ListeningAddresses], None]) -> None:
    """Run the switch until SIGINT or SIGTERM, then stop cleanly."""
    switch = Switch(settings)
    addresses = await switch.start()
    tune_gc()
    ready(addresses)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    notify("READY=1")  # systemd Type=notify: the switch answers from here on
    watchdog = loop.create_task(keep_watchdog_fed())
    try:
        await stop.wait()
    finally:
        log.info("event=stopping")
        notify("STOPPING=1")
        watchdog.cancel()
        await switch.stop()
