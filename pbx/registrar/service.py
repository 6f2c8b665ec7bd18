"""The registrar's asyncio edge: runs the pure registrar, qualifier and source guard,
writes their changes to the store, and keeps their timers.

Writes are group-committed: every binding change from one turn of the event loop goes to
SQLite in one transaction, and the 200s for those REGISTERs are sent only after the commit,
so a phone is never told it is registered before that is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import replace

from sqlite_utils import Database

from pbx.clock import Clock
from pbx.config import Settings
from pbx.registrar.location import Location
from pbx.registrar.qualify import Qualifier, Reachability
from pbx.registrar.registrar import Registrar, RegistrarPolicy
from pbx.routing.source_guard import GuardPolicy, SourceGuard, parse_networks
from pbx.sip.auth import NONCE_SALT_LENGTH, DigestAlgorithm, DigestAuthenticator
from pbx.sip.message import Request, Response
from pbx.sip.transaction import (
    DeliverMessage,
    Output,
    SendMessage,
    TransactionTimeout,
    TransportErrorReported,
)
from pbx.sip.transaction_layer import Incoming, TransactionLayer
from pbx.store.bans import active_bans, ban_generation, save_ban
from pbx.store.extensions import record_auth_algorithm, stored_secrets
from pbx.store.records import Binding, SourceBan
from pbx.store.registrations import load_bindings, replace_bindings, save_bindings
from pbx.store.settings import nonce_secret, restore_mark, sip_realm
from pbx.store.transaction import write_transaction
from pbx.transport.flow import Destination, Flow
from pbx.transport.layer import TransportLayer
from pbx.transport.response_routing import response_destination

log = logging.getLogger("pbx.registrar")

HOUSEKEEPING_PERIOD = 1.0
"""Seconds between expiry, qualify and ban-reload passes."""
MAX_TRACKED_NONCES = 65536
GROUP_COMMIT_DELAY = 0.003
"""Seconds a confirmed registration may wait for the commit that covers it."""


class RegistrarService:
    def __init__(
        self,
        *,
        db: Database,
        settings: Settings,
        clock: Clock,
        transport: TransportLayer,
        new_tag: Callable[[], str],
        new_salt: Callable[[], bytes] = lambda: secrets.token_bytes(NONCE_SALT_LENGTH),
    ) -> None:
        self._db = db
        self._clock = clock
        self._transport = transport
        now = clock.wall()
        self.location = Location(load_bindings(db, now=now))
        self.authenticator = DigestAuthenticator(
            realm=sip_realm(db),
            secret=nonce_secret(db),
            # Both may be offered: each extension chooses (its phones' abilities differ).
            algorithms=[DigestAlgorithm.SHA_256, DigestAlgorithm.MD5],
            max_tracked_nonces=MAX_TRACKED_NONCES,
        )
        self.default_offer = tuple(DigestAlgorithm(name) for name in settings.digest_algorithms)
        self.registrar = Registrar(
            authenticator=self.authenticator,
            secrets_of=lambda number: stored_secrets(db, number),
            location=self.location,
            new_tag=new_tag,
            new_salt=new_salt,
            policy=RegistrarPolicy(
                min_expires=settings.register_min_expires,
                max_expires=settings.register_max_expires,
                default_expires=min(3600, settings.register_max_expires),
                max_contacts=settings.register_max_contacts,
            ),
            server=settings.server_name,
            default_offer=self.default_offer,
        )
        self.guard = SourceGuard(
            GuardPolicy(
                failure_limit=settings.auth_failure_limit,
                window=float(settings.auth_failure_window),
                ban_seconds=float(settings.ban_seconds),
                allow=parse_networks(settings.ban_allow),
            )
        )
        self.guard.replace_bans(active_bans(db, now))
        self._ban_generation = ban_generation(db)
        self._restore_mark = restore_mark(db)
        self.on_restore: Callable[[], None] = lambda: None
        """Called after a restore (the calls service rewrites its in-progress table)."""
        self.qualifier = Qualifier(
            location=self.location,
            interval=float(settings.qualify_interval),
            local_host=self._local_address,
            new_token=lambda: secrets.token_hex(10),
            user_agent=settings.server_name,
        )
        self.transactions = TransactionLayer()
        self._known_algorithms: dict[str, str] = {}
        # The group commit: changes and the responses that wait for them.
        self._saved: dict[tuple[str, str], Binding] = {}
        self._removed: dict[tuple[str, str], Binding] = {}
        self._algorithms: dict[str, str] = {}
        self._bans: list[SourceBan] = []
        self._held: list[tuple[Response, Destination]] = []
        self._flush_scheduled = False
        self._housekeeping: asyncio.TimerHandle | None = None
        self._transaction_timer: asyncio.TimerHandle | None = None
        self._ticks = 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        self._housekeeping = asyncio.get_running_loop().call_later(
            HOUSEKEEPING_PERIOD, self._housekeep
        )

    def stop(self) -> None:
        for handle in (self._housekeeping, self._transaction_timer):
            if handle is not None:
                handle.cancel()
        self._flush()

    # -- requests in -----------------------------------------------------------------------
    def accept_source(self, host: str) -> bool:
        return not self.guard.is_banned(host, self._clock.wall())

    def record_auth_failure(self, host: str, now: float) -> None:
        """A failed authentication anywhere (REGISTER, INVITE, MESSAGE) counts toward a ban."""
        ban = self.guard.record_failure(host, now)
        if ban is not None:
            log.warning(
                "event=source_banned address=%s until=%.0f reason=%r",
                ban.address,
                ban.until,
                ban.reason,
            )
            self._bans.append(ban)
            self._schedule_flush()

    def handle_register(self, request: Request, flow: Flow | None) -> Response | None:
        assert flow is not None
        now = self._clock.wall()
        outcome = self.registrar.handle(request, flow, now)
        if outcome.auth_failed:
            self.record_auth_failure(flow.remote[0], now)
        user, algorithm = outcome.user, outcome.algorithm
        if user and algorithm and self._known_algorithms.get(user) != algorithm:
            self._known_algorithms[user] = algorithm
            self._algorithms[user] = algorithm
            self._schedule_flush()
        if not (outcome.saved or outcome.removed):
            return outcome.response
        for binding in outcome.removed:
            ident = (binding.aor, binding.binding_key)
            self._saved.pop(ident, None)
            self._removed[ident] = binding
        for binding in outcome.saved:
            ident = (binding.aor, binding.binding_key)
            self._removed.pop(ident, None)
            self._saved[ident] = binding
        # A phone that comes, goes or changes address is news; its refresh every few minutes
        # is not (at INFO it was a journal line per phone per refresh, flooding the SD card).
        level = logging.INFO if outcome.added or outcome.removed else logging.DEBUG
        if log.isEnabledFor(level):
            log.log(
                level,
                "event=registered aor=%s contacts=%d added=%d refreshed=%d removed=%d call_id=%s",
                user,
                len(self.location.bindings_of(user or "")),
                outcome.added,
                len(outcome.saved) - outcome.added,
                len(outcome.removed),
                request.call_id,
            )
        response = outcome.response
        self._held.append((response, response_destination(response.top_via, flow)))
        self._schedule_flush()
        return None

    def handle_response(self, response: Response, flow: Flow) -> None:
        now = self._clock.monotonic()
        self._run(self.transactions.receive(
            Incoming(message=response, source=flow, reliable=flow.reliable), now
        ))  # fmt: skip

    # -- the group commit ------------------------------------------------------------------
    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            # A few milliseconds of grouping: under load one commit covers many REGISTERs.
            asyncio.get_running_loop().call_later(GROUP_COMMIT_DELAY, self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        saved, removed = list(self._saved.values()), list(self._removed)
        algorithms, bans, held = self._algorithms, self._bans, self._held
        self._saved, self._removed, self._algorithms, self._bans, self._held = {}, {}, {}, [], []
        if saved or removed or algorithms or bans:
            try:
                with write_transaction(self._db):
                    orphans = save_bindings(self._db, saved, removed)
                    for user, algorithm in algorithms.items():
                        record_auth_algorithm(self._db, user, algorithm)
                    for ban in bans:
                        save_ban(self._db, ban)
            except sqlite3.Error:
                # Nothing was written, so nothing is confirmed: the phones retry.
                log.exception("event=store_write_failed held_responses=%d", len(held))
                return
            for orphan in orphans:
                self.location.remove(orphan.aor, orphan.binding_key)
            if bans:
                self._ban_generation = ban_generation(self._db)
        for response, destination in held:
            self._transport.send(response, destination)

    # -- timers ----------------------------------------------------------------------------
    def _housekeep(self) -> None:
        loop = asyncio.get_running_loop()
        self._housekeeping = loop.call_later(HOUSEKEEPING_PERIOD, self._housekeep)
        now = self._clock.wall()
        self._ticks += 1
        try:
            for binding in self.location.expire(now):
                ident = (binding.aor, binding.binding_key)
                self._saved.pop(ident, None)
                self._removed[ident] = binding
                log.info("event=binding_expired aor=%s contact=%s", binding.aor, binding.contact)
            if self._ticks % 2 == 0:
                self._reload_from_store(now)
            mono = self._clock.monotonic()
            for probe in self.qualifier.due(now):
                self._run(self.transactions.send_request(
                    probe.request, probe.destination, mono,
                    reliable=probe.destination.transport != "UDP",
                ))  # fmt: skip
        finally:
            if self._removed:
                self._schedule_flush()

    def _reload_from_store(self, now: float) -> None:
        """What the CLI or web admin changed: a restore, unbans, removed extensions."""
        mark = restore_mark(self._db)
        if mark != self._restore_mark:
            self._restore_mark = mark
            self._after_restore()
        generation = ban_generation(self._db)
        if generation != self._ban_generation:
            self._ban_generation = generation
            self.guard.replace_bans(active_bans(self._db, now))
        numbers = {row[0] for row in self._db.execute("SELECT number FROM extensions")}
        for aor in self.location.aors():
            if aor not in numbers:
                for binding in self.location.remove_aor(aor):
                    self._saved.pop((binding.aor, binding.binding_key), None)

    def _after_restore(self) -> None:
        """A backup was restored over the live store: its registrations are those of the day
        it was taken. The phones registered now are the ones in memory, so they go back in
        (and bindings of extensions the backup does not have are dropped)."""
        orphans = replace_bindings(self._db, list(self.location))
        for orphan in orphans:
            self.location.remove(orphan.aor, orphan.binding_key)
        self._saved.clear()
        self._removed.clear()
        self.on_restore()
        log.info("event=store_restored bindings=%d dropped=%d", len(self.location), len(orphans))

    def _run(self, outputs: list[Output]) -> None:
        """Carry out what the client transactions ask (qualify's OPTIONS)."""
        now = self._clock.monotonic()
        wall = self._clock.wall()
        for output in outputs:
            if isinstance(output, SendMessage):
                destination = output.destination
                assert isinstance(destination, Destination)
                if not self._transport.send(output.message, destination) and output.key:
                    self._run(self.transactions.transport_error(output.key, now, "send failed"))
            elif isinstance(output, DeliverMessage) and isinstance(output.message, Response):
                response = output.message
                self._record(
                    self.qualifier.answered(response.top_via.branch, response.status, wall)
                )
            elif isinstance(output, TransactionTimeout | TransportErrorReported):
                self._record(self.qualifier.failed(getattr(output.key, "branch", None), wall))
        self._arm_transaction_timer()

    def _record(self, reachability: Reachability | None) -> None:
        if reachability is None:
            return
        current = self.location.get(reachability.aor, reachability.binding_key)
        if current is None:
            return
        updated = replace(
            current,
            reachable=reachability.reachable,
            rtt_ms=reachability.rtt_ms,
            qualified_at=reachability.at,
        )
        self.location.put(updated)
        ident = (updated.aor, updated.binding_key)
        self._saved[ident] = updated
        if current.reachable is not reachability.reachable:
            log.info(
                "event=reachability aor=%s contact=%s reachable=%s rtt_ms=%s",
                updated.aor,
                updated.contact,
                reachability.reachable,
                reachability.rtt_ms,
            )
        self._schedule_flush()

    def _arm_transaction_timer(self) -> None:
        deadline = self.transactions.next_deadline()
        if self._transaction_timer is not None:
            self._transaction_timer.cancel()
            self._transaction_timer = None
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, deadline - self._clock.monotonic())
        self._transaction_timer = loop.call_later(delay, self._on_transaction_timer)

    def _on_transaction_timer(self) -> None:
        self._transaction_timer = None
        self._run(self.transactions.handle_timer(self._clock.monotonic()))

    def _local_address(self, transport: str) -> tuple[str, int]:
        address = self._transport.local_address(transport) or self._transport.local_address("UDP")
        return address or ("127.0.0.1", 5060)
