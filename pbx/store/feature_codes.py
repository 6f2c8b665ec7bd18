"""Feature codes in the store: the configured codes, and a dialled command applied.

The codes are settings (``feature_forward_on``...; absent: ``*72``, ``*73``, ``*78``,
``*79``), read on each call so a change in the web admin is live at once. Applying a command
goes through the same checks as the admin's changes (``pbx/store/forwarding.py``), and the
answer is a SIP status the call core can send the phone.
"""

from __future__ import annotations

from dataclasses import fields

from sqlite_utils import Database

from pbx.routing.feature_codes import (
    LABELS,
    SETTING_KEYS,
    DndOff,
    DndOn,
    FeatureCodes,
    FeatureCommand,
    FeatureOutcome,
    ForwardAlwaysOff,
    ForwardAlwaysOn,
    check_codes,
)
from pbx.store.extensions import ExtensionError
from pbx.store.forwarding import DestinationError, ForwardingChange, set_forwarding
from pbx.store.settings import get_settings, set_setting
from pbx.store.transaction import write_transaction

__all__ = [
    "LABELS",
    "FeatureCodes",
    "apply_feature_command",
    "feature_codes",
    "set_feature_codes",
]
"""LABELS and FeatureCodes are re-exported for the web admin, which may not import routing."""


def feature_codes(db: Database) -> FeatureCodes:
    """The codes in force: each setting, or its default when unset."""
    found = get_settings(db, *SETTING_KEYS.values())
    defaults = FeatureCodes()
    return FeatureCodes(
        **{name: found.get(key) or getattr(defaults, name) for name, key in SETTING_KEYS.items()}
    )


def set_feature_codes(db: Database, codes: FeatureCodes) -> None:
    """Store ``codes``; ValueError (one line per problem, joined) and no change when unusable."""
    errors = check_codes(codes)
    if errors:
        raise ValueError("; ".join(errors))
    with write_transaction(db):
        for f in fields(codes):
            set_setting(db, SETTING_KEYS[f.name], str(getattr(codes, f.name)))


_CHANGES = {
    ForwardAlwaysOff: (ForwardingChange(always=""), "Forwarding Off"),
    DndOn: (ForwardingChange(dnd=True), "Do Not Disturb On"),
    DndOff: (ForwardingChange(dnd=False), "Do Not Disturb Off"),
}


def apply_feature_command(
    db: Database, number: str, command: FeatureCommand, *, now: float
) -> FeatureOutcome:
    """Change extension ``number`` (the caller) as ``command`` says; what the phone is told.

    200 when done; 484 for ``*72`` with no number; 404/403/482 for a target that cannot be
    used (no such number, outside number without outbound permission, itself); 404 when the
    caller is no extension. Nothing changes unless the answer is 200."""
    if isinstance(command, ForwardAlwaysOn):
        if not command.dest:
            return FeatureOutcome(484, "Address Incomplete")
        change, done = ForwardingChange(always=command.dest), "Forwarding On"
    else:
        change, done = _CHANGES[type(command)]
    try:
        set_forwarding(db, number, change, now=now)
    except DestinationError as exc:
        phrases = {403: "Forbidden", 482: "Loop Detected", 484: "Address Incomplete"}
        return FeatureOutcome(exc.status, phrases.get(exc.status, "Not Found"))
    except ExtensionError:
        return FeatureOutcome(404, "Not Found")
    return FeatureOutcome(200, done)
