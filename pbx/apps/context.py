"""What an application may use of the call core, and what it must offer to it.

Applications own legs and give commands; the core routes each leg's events to its owner and
carries out what comes back. Everything here is sans-I/O: the clock comes in as ``now``,
lookups through ``Directory``, randomness through the core's injected sources.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pbx.calls.leg import Leg, LegSetup
from pbx.calls.outputs import LegEvent, Output
from pbx.routing.dialplan import LinePlan, Route, route_dialled
from pbx.routing.feature_codes import FeatureCodes, FeatureCommand, FeatureOutcome
from pbx.sip.replaces import Replaces
from pbx.store.extensions import Extension
from pbx.store.records import Binding


class Directory(Protocol):
    """The office as the call core reads it (the store and the location service).

    An extension's forwarding comes with it (``Extension.forwarding``), read per call."""

    def extension(self, number: str) -> Extension | None: ...
    def is_line(self, number: str) -> bool: ...
    def inbound_numbers(self) -> list[str]: ...
    def line_plan(self) -> LinePlan: ...
    def reachable(self, aor: str) -> list[Binding]: ...
    def feature_codes(self) -> FeatureCodes: ...
    def apply_feature(self, number: str, command: FeatureCommand, now: float) -> FeatureOutcome:
        """Change extension ``number`` as a dialled feature code says (a store write, rare
        enough to run synchronously), and what the phone is told."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CallPolicy:
    ring_timeout: float = 60.0
    """Seconds a call may ring before the caller gets 408."""
    session_refresh: float = 900.0
    """Seconds between the switch's checks that an answered leg is still there."""


class Context(Protocol):
    """The call core as an application sees it."""

    setup: LegSetup
    directory: Directory
    policy: CallPolicy
    new_call_id: Callable[[], str]

    def add_leg(self, leg: Leg, owner: App) -> None: ...
    def adopt(self, leg: Leg, owner: App) -> None: ...
    def local_host(self, transport: str) -> str: ...
    def line_busy(self) -> bool: ...
    def apps(self) -> list[App]: ...
    def new_app_id(self) -> str: ...
    def start_app(self, app: App) -> None: ...
    def leg_replaced_by(self, replaces: Replaces) -> Leg | None: ...


class App(Protocol):
    """An application: started by the core, fed its legs' events, timed by the core."""

    id: str
    done: bool

    def legs(self) -> list[Leg]: ...
    def on_event(self, event: LegEvent, now: float) -> list[Output]: ...
    def relay_ready(self, relay: Any, now: float) -> list[Output]: ...
    def relay_failed(self, now: float) -> list[Output]: ...
    def next_deadline(self) -> float | None: ...
    def handle_timer(self, now: float) -> list[Output]: ...
    def stop(self, now: float) -> list[Output]: ...


def dial_plan(directory: Directory, dialled: str, extension: Extension | None) -> Route:
    """The dial plan for what ``extension`` dialled (its outbound permission applies): for a
    call, a transfer target, or a 3xx Contact to follow."""
    return route_dialled(
        dialled,
        plan=directory.line_plan(),
        is_extension=lambda number: directory.extension(number) is not None,
        outbound_allowed=extension is not None and extension.outbound_allowed,
    )


def legs_deadline(legs: list[Leg], own: float | None) -> float | None:
    """The earliest of an application's own deadline and its legs' ones."""
    deadlines = [d for d in (leg.next_deadline() for leg in legs) if d is not None]
    if own is not None:
        deadlines.append(own)
    return min(deadlines) if deadlines else None


def legs_timers(legs: list[Leg], now: float) -> list[Output]:
    """Run the timers of the legs that are due."""
    out: list[Output] = []
    for leg in legs:
        deadline = leg.next_deadline()
        if deadline is not None and deadline <= now:
            out += leg.handle_timer(now)
    return out
