"""Feature codes: what a phone dials to change its own forwarding and do-not-disturb.

``*72`` then a number turns forward-always on, ``*73`` off, ``*78`` and ``*79`` do the same
for do not disturb. The codes are settings (the web admin's Feature codes page), so they are
passed in; the result is a frozen command, which ``pbx/store/feature_codes.py`` applies to
the caller's extension. Pure: no database here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from urllib.parse import unquote


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureCodes:
    """The dialled prefixes, as the settings of the same names hold them."""

    forward_on: str = "*72"
    """Followed by the DEST: forward every call there."""
    forward_off: str = "*73"
    dnd_on: str = "*78"
    dnd_off: str = "*79"


SETTING_KEYS = {
    "forward_on": "feature_forward_on",
    "forward_off": "feature_forward_off",
    "dnd_on": "feature_dnd_on",
    "dnd_off": "feature_dnd_off",
}
"""The settings row of each code (absent: the default above)."""
LABELS = {
    "forward_on": "Forward every call (followed by the number)",
    "forward_off": "Forwarding off",
    "dnd_on": "Do not disturb on",
    "dnd_off": "Do not disturb off",
}
_CODE_RE = re.compile(r"[*#][0-9*#]{1,7}")


@dataclass(frozen=True, slots=True)
class ForwardAlwaysOn:
    dest: str
    """What was dialled after the code (empty when nothing was)."""


@dataclass(frozen=True, slots=True)
class ForwardAlwaysOff:
    pass


@dataclass(frozen=True, slots=True)
class DndOn:
    pass


@dataclass(frozen=True, slots=True)
class DndOff:
    pass


FeatureCommand = ForwardAlwaysOn | ForwardAlwaysOff | DndOn | DndOff


@dataclass(frozen=True, slots=True)
class FeatureOutcome:
    """What the phone that dialled the code is told: a SIP status and a reason phrase."""

    status: int
    reason: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def parse_feature_code(dialled: str, codes: FeatureCodes) -> FeatureCommand | None:
    """The command ``dialled`` (a Request-URI user part, %-escapes allowed) asks for, or None
    when it is no feature code (it is then routed as a number)."""
    text = unquote(dialled)
    if text == codes.forward_off:
        return ForwardAlwaysOff()
    if text == codes.dnd_on:
        return DndOn()
    if text == codes.dnd_off:
        return DndOff()
    if text.startswith(codes.forward_on):
        return ForwardAlwaysOn(text[len(codes.forward_on) :])
    return None


def check_codes(codes: FeatureCodes) -> list[str]:
    """Why a set of codes cannot be used (empty when it can): each starts with * or # so it
    cannot be an extension, and none is a prefix of another (``*72`` takes digits after it)."""
    errors: list[str] = []
    values = {f.name: str(getattr(codes, f.name)) for f in fields(codes)}
    for name, code in values.items():
        if not _CODE_RE.fullmatch(code):
            errors.append(f"{LABELS[name]}: * or # then 1 to 7 digits, * or #, not {code!r}")
    for name, code in values.items():
        for other, other_code in values.items():
            if other != name and other_code.startswith(code):
                if code == other_code and name > other:
                    continue  # say it once
                errors.append(
                    f"{LABELS[name]}: {code} clashes with {LABELS[other].lower()} ({other_code})"
                )
    return errors
