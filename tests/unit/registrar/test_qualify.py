from __future__ import annotations

import itertools

import pytest

from pbx.registrar.location import Location
from pbx.registrar.qualify import Qualifier
from pbx.sip.message import parse_message
from pbx.store.records import Binding


def make(location: Location) -> Qualifier:
    tokens = itertools.count(1)
    return Qualifier(
        location=location,
        interval=30.0,
        local_host=lambda transport: ("192.0.2.1", 5060),
        new_token=lambda: f"tok{next(tokens):06d}",
    )


PHONE = Binding(
    aor="201",
    binding_key="k",
    contact="sip:201@10.0.0.21:5062",
    expires_at=10_000.0,
    received_host="203.0.113.9",
    received_port=61000,
    transport="UDP",
    call_id="c",
    cseq=1,
    registered_at=0.0,
    path=("<sip:edge@192.0.2.50;lr>",),
)


def test_a_new_binding_is_probed_within_the_first_interval_then_every_interval() -> None:
    qualifier = make(Location([PHONE]))
    assert qualifier.due(0.0) == []
    first_at = qualifier.next_deadline()
    assert first_at is not None and 1.0 <= first_at <= 30.0
    [probe] = qualifier.due(first_at)
    assert qualifier.due(first_at + 29.0) == []  # one probe in flight, next not due
    qualifier.answered(probe.request.top_via.branch, 200, first_at + 0.05)
    assert len(qualifier.due(first_at + 30.0)) == 1


def test_the_probe_goes_to_the_received_address_and_follows_the_path() -> None:
    qualifier = make(Location([PHONE]))
    qualifier.due(0.0)
    start = qualifier.next_deadline()
    assert start is not None
    [probe] = qualifier.due(start)
    request = parse_message(bytes(probe.request))
    assert request.method == "OPTIONS"
    assert str(request.uri) == "sip:201@10.0.0.21:5062"
    assert (probe.destination.host, probe.destination.port) == ("203.0.113.9", 61000)
    assert request.headers.get_all("route") == ["<sip:edge@192.0.2.50;lr>"]
    assert request.top_via.branch is not None and request.top_via.branch.startswith("z9hG4bK")


def test_an_answer_gives_the_round_trip_time() -> None:
    qualifier = make(Location([PHONE]))
    qualifier.due(0.0)
    start = qualifier.next_deadline()
    assert start is not None
    [probe] = qualifier.due(start)
    branch = probe.request.top_via.branch
    assert qualifier.answered(branch, 100, start + 0.01) is None  # provisional: keep waiting
    result = qualifier.answered(branch, 405, start + 0.025)  # any final answer: it is there
    assert result is not None and result.reachable and result.rtt_ms == pytest.approx(25.0)
    assert qualifier.answered(branch, 200, start + 0.03) is None  # only once


def test_a_timeout_marks_the_phone_unreachable() -> None:
    qualifier = make(Location([PHONE]))
    qualifier.due(0.0)
    start = qualifier.next_deadline()
    assert start is not None
    [probe] = qualifier.due(start)
    result = qualifier.failed(probe.request.top_via.branch, start + 32.0)
    assert result is not None and not result.reachable and result.rtt_ms is None


def test_gone_bindings_are_forgotten() -> None:
    location = Location([PHONE])
    qualifier = make(location)
    qualifier.due(0.0)
    location.remove("201", "k")
    assert qualifier.due(100.0) == [] and qualifier.next_deadline() is None
