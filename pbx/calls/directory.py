"""The office as the call core reads it: extensions and settings from the store, contacts from
the location service. Read per call, so a change made in the web admin counts at once."""

from __future__ import annotations

import logging
import sqlite3

from sqlite_utils import Database

from pbx.registrar.location import Location, reach
from pbx.routing.dialplan import DEFAULT_BLOCKED, LinePlan, split_list
from pbx.routing.feature_codes import FeatureCodes, FeatureCommand, FeatureOutcome
from pbx.store.extensions import Extension, get_extension, is_line_account, list_extensions
from pbx.store.feature_codes import apply_feature_command, feature_codes
from pbx.store.records import Binding
from pbx.store.settings import get_setting, get_settings
from pbx.transport.layer import TransportLayer

log = logging.getLogger("pbx.calls")


class StoreDirectory:
    def __init__(self, db: Database, location: Location, transport: TransportLayer) -> None:
        self._db = db
        self._location = location
        self._transport = transport

    def extension(self, number: str) -> Extension | None:
        return get_extension(self._db, number)

    def is_line(self, number: str) -> bool:
        return is_line_account(self._db, number)

    def inbound_numbers(self) -> list[str]:
        configured = split_list(get_setting(self._db, "inbound_target") or "")
        return list(configured) or [e.number for e in list_extensions(self._db)]

    def line_plan(self) -> LinePlan:
        found = get_settings(
            self._db, "blocked_prefixes", "outside_prefix", "outbound_patterns", "line_country"
        )
        blocked = found.get("blocked_prefixes")
        return LinePlan(
            outside_prefix=found.get("outside_prefix") or "9",
            outbound_patterns=split_list(found.get("outbound_patterns") or ""),
            blocked_prefixes=DEFAULT_BLOCKED if blocked is None else split_list(blocked),
            country=found.get("line_country") or "US",
        )

    def reachable(self, aor: str) -> list[Binding]:
        """The contacts of ``aor`` that are not the switch itself (a loop)."""
        local = self._transport.local_address("UDP")
        return [b for b in self._location.bindings_of(aor) if reach(b) != local]

    def feature_codes(self) -> FeatureCodes:
        return feature_codes(self._db)

    def apply_feature(self, number: str, command: FeatureCommand, now: float) -> FeatureOutcome:
        try:
            return apply_feature_command(self._db, number, command, now=now)
        except sqlite3.Error:  # e.g. locked past the busy timeout: the phone hears 500
            log.exception("event=feature_code_failed ext=%s", number)
            return FeatureOutcome(500, "Server Internal Error")
