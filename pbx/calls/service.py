"""The asyncio edge of the call core: datagrams in, the core's outputs carried out.

Everything that decides is in ``pbx.calls.core`` and below, sans-I/O. This module stamps each
message with the clock, hands it to the core, sends what comes back, opens and closes media
relay sessions (binding sockets is the one thing that awaits), queues rows for the store's one
writer, and keeps a single ``call_at`` armed for the core's next deadline.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable
from typing import Any, Protocol

from sqlite_utils import Database

from pbx.apps.context import CallPolicy
from pbx.calls.admission import Admission
from pbx.calls.core import CALL_METHODS, Addresses, CallCore, EdgeOutput
from pbx.calls.directory import StoreDirectory
from pbx.calls.leg import LegSetup
from pbx.calls.outputs import CloseRelay, OpenRelay, Persist, Transmit
from pbx.calls.store_writer import StoreWriter
from pbx.clock import Clock
from pbx.registrar.location import Location
from pbx.sip.auth import NONCE_SALT_LENGTH, DigestAlgorithm, DigestAuthenticator
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response
from pbx.sip.transaction import MAGIC_COOKIE, SendMessage
from pbx.sip.uri import SipUri
from pbx.store.calls import ActiveCall, clear_active, replace_active
from pbx.store.extensions import StoredSecrets
from pbx.transport.flow import Destination, Flow
from pbx.transport.layer import TransportLayer
from pbx.transport.response_routing import response_destination

log = logging.getLogger("pbx.calls")

__all__ = ["CALL_METHODS", "CallPolicy", "CallService"]


class MediaRelayLike(Protocol):
    async def open_session(self, call_id: str) -> Any: ...


class CallService:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        transport: TransportLayer,
        relay: MediaRelayLike,
        authenticator: DigestAuthenticator,
        secrets_of: Callable[[str], StoredSecrets | None],
        location: Location,
        record_failure: Callable[[str, float], None],
        new_tag: Callable[[], str],
        new_branch: Callable[[], str] | None = None,
        new_salt: Callable[[], bytes] | None = None,
        rng: random.Random | None = None,
        server: str = "Switchboard",
        policy: CallPolicy | None = None,
        default_offer: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,),
    ) -> None:
        self._clock = clock
        self._transport = transport
        self._relay = relay
        self._writer = StoreWriter(db)
        self._db = db
        new_branch = new_branch or (lambda: new_tag() + new_tag())
        rng = rng or random.Random()
        self.policy = policy or CallPolicy()
        setup = LegSetup(
            server=server,
            contact=self._contact,
            new_via=lambda transport_name: self._via(transport_name, new_branch()),
            new_tag=new_tag,
            random_delay=rng.uniform,
            refresh=self.policy.session_refresh,
        )
        self.core = CallCore(
            setup=setup,
            directory=StoreDirectory(db, location, transport),
            admission=Admission(
                authenticator=authenticator,
                secrets_of=secrets_of,
                record_failure=record_failure,
                new_salt=new_salt or (lambda: os.urandom(NONCE_SALT_LENGTH)),
                default_offer=default_offer,
            ),
            addresses=Addresses(local=self._local),
            new_call_id=lambda: f"{new_tag()}{new_tag()}@switchboard",
            wall=clock.wall,
            policy=self.policy,
        )
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        clear_active(db)

    @property
    def calls(self) -> list[Any]:
        """The calls in progress (their applications)."""
        return self.core.calls()

    # -- in from the transport ----------------------------------------------------------
    def handle_request(self, request: Request, flow: Flow | None) -> Response | None:
        assert flow is not None
        self._carry_out(self.core.receive(request, flow, self._clock.monotonic()))
        return None

    def handle_response(self, response: Response, flow: Flow) -> bool:
        """True when the response belongs to one of our client transactions."""
        if not self.core.owns_response(response):
            return False
        self._carry_out(self.core.receive(response, flow, self._clock.monotonic()))
        return True

    async def stop(self) -> None:
        self._carry_out(self.core.stop(self._clock.monotonic()))
        self._writer.flush()
        for task in list(self._tasks):
            task.cancel()
        if self._timer is not None:
            self._timer.cancel()

    def resync_active(self) -> None:
        """After a restore copied an old in-progress table over ours: write the live calls."""
        rows = [app.active_row() for app in self.core.calls() if hasattr(app, "active_row")]
        replace_active(self._db, [r for r in rows if isinstance(r, ActiveCall)])

    # -- out ---------------------------------------------------------------------------
    def _carry_out(self, outputs: list[EdgeOutput]) -> None:
        for output in outputs:
            if isinstance(output, SendMessage):
                self._send(output)
            elif isinstance(output, Transmit):
                destination = output.destination
                if destination is None:
                    assert output.flow is not None and isinstance(output.message, Response)
                    destination = response_destination(output.message.top_via, output.flow)
                self._transport.send(output.message, destination)
            elif isinstance(output, Persist):
                self._writer.write(output.row)
            elif isinstance(output, OpenRelay):
                self._spawn(self._open_relay(output))
            elif isinstance(output, CloseRelay):
                close = getattr(output.relay, "close", None)
                if close is not None:
                    self._spawn(close())
        self._arm()

    def _send(self, output: SendMessage) -> None:
        message, destination = output.message, output.destination
        if isinstance(destination, Flow):
            assert isinstance(message, Response)
            destination = response_destination(message.top_via, destination)
        assert isinstance(destination, Destination)
        if not self._transport.send(message, destination) and output.key is not None:
            self._carry_out(self.core.transport_error(output.key, self._clock.monotonic()))

    async def _open_relay(self, output: OpenRelay) -> None:
        try:
            relay = await self._relay.open_session(output.name)
        except Exception:
            log.exception("event=relay_failed call_id=%s", output.name)
            self._carry_out(self.core.relay_failed(output.app, self._clock.monotonic()))
            return
        self._carry_out(self.core.relay_ready(output.app, relay, self._clock.monotonic()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _arm(self) -> None:
        deadline = self.core.next_deadline()
        if deadline == self._armed_for and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._armed_for = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self._clock.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._armed_for = None
        self._carry_out(self.core.handle_timer(self._clock.monotonic()))

    # -- our own addresses ---------------------------------------------------------------
    def _local(self, transport: str) -> tuple[str, int]:
        address = self._transport.local_address(transport) or self._transport.local_address("UDP")
        return address or ("127.0.0.1", 5060)

    def _via(self, transport: str, branch: str) -> Via:
        host, port = self._local(transport)
        shown = f"[{host}]" if ":" in host else host
        return Via(
            transport=transport,
            host=shown,
            port=port,
            params=(("branch", f"{MAGIC_COOKIE}{branch}"), ("rport", None)),
        )

    def _contact(self, transport: str) -> NameAddress:
        host, port = self._local(transport)
        shown = f"[{host}]" if ":" in host else host
        params = () if transport == "UDP" else (("transport", transport.lower()),)
        return NameAddress(uri=SipUri(user="switchboard", host=shown, port=port, params=params))
