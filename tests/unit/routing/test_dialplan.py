from __future__ import annotations

import pytest

from pbx.routing.dialplan import LinePlan, matches, route_dialled

EXTENSIONS = {"201", "202"}


def route(dialled: str, *, allowed: bool = True, **plan: object):  # type: ignore[no-untyped-def]
    return route_dialled(
        dialled, plan=LinePlan(**plan), is_extension=EXTENSIONS.__contains__,  # type: ignore[arg-type]
        outbound_allowed=allowed,
    )  # fmt: skip


def test_extensions_first() -> None:
    assert route("201").kind == "extension"


def test_the_outside_prefix_sends_the_rest_to_the_line() -> None:
    r = route("95550100")
    assert (r.kind, r.target) == ("line", "5550100")


def test_without_permission_a_call_out_is_403() -> None:
    assert route("95550100", allowed=False).status == 403


@pytest.mark.parametrize("dialled", ["9011441234567", "919005551234", "9900123"])
def test_international_and_premium_prefixes_are_blocked_by_default(dialled: str) -> None:
    r = route(dialled)
    assert (r.kind, r.status, r.reason) == ("reject", 403, "Blocked Prefix")


def test_the_admin_can_unblock() -> None:
    assert route("9011441234567", blocked_prefixes=()).kind == "line"


@pytest.mark.parametrize(("country", "number"), [("US", "911"), ("UK", "999"), ("DE", "112")])
def test_emergency_numbers_always_go_out(country: str, number: str) -> None:
    for dialled in (number, "9" + number):
        r = route(dialled, allowed=False, country=country)
        assert (r.kind, r.target) == ("line", number)


def test_patterns_without_a_prefix() -> None:
    assert route("5550100", outbound_patterns=("NXXXXXX",)).target == "5550100"
    assert route("1234", outbound_patterns=("NXXXXXX",)).status == 404
    assert matches("1NXXNXXXXXX", "12125551234") and not matches("1NXXNXXXXXX", "10125551234")
    assert matches("0.", "0123") and not matches("0.", "0")


def test_unknown_numbers_are_404() -> None:
    assert route("777").status == 404
