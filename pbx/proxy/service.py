"""The asyncio edge of the MESSAGE proxy (``pbx/routing/proxy.py``).

It owns one transaction layer: messages from the transport go into it stamped with the clock,
what the layer sends goes to the transport, everything else to the proxy, whose answers go
back into the layer; one ``loop.call_at`` waits for the layer's next deadline. This lives
outside ``pbx/routing`` because that package is pure (no asyncio: tests/test_architecture.py),
as the call service lives in ``pbx/calls`` for the same reason.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable

from pbx.clock import Clock
from pbx.routing.admission import Address
from pbx.routing.proxy import AuthFailure, Forward, MessageProxy, Respond
from pbx.sip.message import Request, Response
from pbx.sip.transaction import Output, SendMessage, TimerSettings
from pbx.sip.transaction_layer import Incoming, TransactionLayer, client_key_of_response
from pbx.transport.flow import Destination, Flow
from pbx.transport.layer import TransportLayer
from pbx.transport.response_routing import response_destination

log = logging.getLogger("pbx.proxy")


def own_address(transport: TransportLayer) -> Callable[[str], Address]:
    """Our address on a transport (UDP's when that one does not listen), for Via and loops."""

    def local(name: str) -> Address:
        found = transport.local_address(name) or transport.local_address("UDP")
        return found or ("127.0.0.1", 5060)

    return local


class ProxyService:
    def __init__(
        self,
        *,
        proxy: MessageProxy,
        clock: Clock,
        transport: TransportLayer,
        record_failure: Callable[[str, float], None],
        timers: TimerSettings | None = None,
    ) -> None:
        self.proxy = proxy
        self._clock = clock
        self._transport = transport
        self._record_failure = record_failure
        self.layer = TransactionLayer(settings=timers)
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None

    # -- in from the transport ------------------------------------------------------------
    def handle_request(self, request: Request, flow: Flow | None) -> Response | None:
        """A dispatcher service: the answer comes later, from the server transaction."""
        assert flow is not None
        self._receive(request, flow)
        return None

    def handle_response(self, response: Response, flow: Flow) -> bool:
        """True when ``response`` belongs to one of our client transactions."""
        key = client_key_of_response(response)
        if key is None or self.layer.get(key) is None:
            return False
        self._receive(response, flow)
        return True

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._armed_for = None, None

    def _receive(self, message: Request | Response, flow: Flow) -> None:
        incoming = Incoming(message=message, source=flow, reliable=flow.reliable)
        self._run(self.layer.receive(incoming, self._clock.monotonic()))

    # -- carrying out ---------------------------------------------------------------------
    def _run(self, outputs: list[Output]) -> None:
        now, wall = self._clock.monotonic(), self._clock.wall()
        layer = self.layer
        todo = deque(outputs)
        while todo:
            output = todo.popleft()
            if isinstance(output, SendMessage):
                if not self._send(output) and output.key is not None:
                    todo.extend(layer.transport_error(output.key, now, "send failed"))
                continue
            for action in self.proxy.receive(output, wall):
                if isinstance(action, Respond):
                    todo.extend(layer.respond(action.key, action.response, now))
                elif isinstance(action, Forward):
                    todo.extend(layer.send_request(
                        action.request, action.destination, now, reliable=action.reliable
                    ))  # fmt: skip
                elif isinstance(action, AuthFailure):
                    self._record_failure(action.host, action.now)
        self._arm()

    def _send(self, output: SendMessage) -> bool:
        message, destination = output.message, output.destination
        if isinstance(destination, Flow):  # a response goes back the way its request came
            assert isinstance(message, Response)
            destination = response_destination(message.top_via, destination)
        assert isinstance(destination, Destination)
        return self._transport.send(message, destination)

    # -- the one timer --------------------------------------------------------------------
    def _arm(self) -> None:
        deadline = self.layer.next_deadline()
        if deadline == self._armed_for:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = deadline
        if deadline is not None:
            loop = asyncio.get_running_loop()
            # The deadline is on the injected clock; call_at wants the loop's.
            when = loop.time() + max(0.0, deadline - self._clock.monotonic())
            self._timer = loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._armed_for = None, None
        self._run(self.layer.handle_timer(self._clock.monotonic()))
