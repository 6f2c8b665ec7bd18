"""Dialled feature codes become commands; configured codes are checked before use."""

from __future__ import annotations

import pytest

from pbx.routing.feature_codes import (
    DndOff,
    DndOn,
    FeatureCodes,
    ForwardAlwaysOff,
    ForwardAlwaysOn,
    check_codes,
    parse_feature_code,
)

DEFAULTS = FeatureCodes()


@pytest.mark.parametrize(
    ("dialled", "command"),
    [
        ("*72202", ForwardAlwaysOn("202")),
        ("*7295551234", ForwardAlwaysOn("95551234")),
        ("%2A72202", ForwardAlwaysOn("202")),  # an escaped star in the Request-URI
        ("*72", ForwardAlwaysOn("")),
        ("*73", ForwardAlwaysOff()),
        ("*78", DndOn()),
        ("*79", DndOff()),
        ("202", None),
        ("*7", None),
        ("*730", None),
        ("95551234", None),
        ("", None),
    ],
)
def test_the_default_codes(dialled: str, command: object) -> None:
    assert parse_feature_code(dialled, DEFAULTS) == command


def test_configured_codes_replace_the_defaults() -> None:
    codes = FeatureCodes(forward_on="#21", forward_off="#22", dnd_on="*8", dnd_off="*9")
    assert parse_feature_code("#21203", codes) == ForwardAlwaysOn("203")
    assert parse_feature_code("%2322", codes) == ForwardAlwaysOff()
    assert parse_feature_code("*78", codes) is None
    assert check_codes(codes) == []


def test_the_defaults_are_usable() -> None:
    assert check_codes(DEFAULTS) == []


@pytest.mark.parametrize(
    ("codes", "message"),
    [
        (FeatureCodes(dnd_on="78"), "* or #"),
        (FeatureCodes(dnd_on="*"), "* or #"),
        (FeatureCodes(dnd_on="*7a"), "* or #"),
        (FeatureCodes(dnd_on="*73"), "clashes"),
        (FeatureCodes(forward_on="*7"), "clashes"),  # *7 would swallow *73, *78, *79
    ],
)
def test_unusable_codes_are_explained(codes: FeatureCodes, message: str) -> None:
    errors = check_codes(codes)
    assert errors and all(message in e for e in errors[:1])
    assert len(errors) == len(set(errors))
