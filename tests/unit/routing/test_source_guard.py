from __future__ import annotations

import pytest

from pbx.routing.source_guard import GuardPolicy, SourceGuard, parse_networks
from pbx.store.records import SourceBan


def guard(**kwargs: object) -> SourceGuard:
    return SourceGuard(GuardPolicy(failure_limit=3, window=60.0, ban_seconds=600.0, **kwargs))  # type: ignore[arg-type]


def test_limit_failures_within_the_window_ban_the_source() -> None:
    g = guard()
    assert g.record_failure("198.51.100.7", 0.0) is None
    assert g.record_failure("198.51.100.7", 10.0) is None
    ban = g.record_failure("198.51.100.7", 20.0)
    assert ban is not None and ban.until == 620.0 and ban.failures == 3
    assert g.is_banned("198.51.100.7", 619.0)
    assert not g.is_banned("198.51.100.8", 21.0)  # another source is untouched
    assert not g.is_banned("198.51.100.7", 620.0)  # the ban ends by itself


def test_failures_older_than_the_window_do_not_count() -> None:
    g = guard()
    g.record_failure("198.51.100.7", 0.0)
    g.record_failure("198.51.100.7", 30.0)
    assert g.record_failure("198.51.100.7", 61.0) is None


def test_allowed_networks_are_never_banned() -> None:
    g = guard(allow=parse_networks("192.168.1.0/24, 10.0.0.7"))
    for t in range(10):
        assert g.record_failure("192.168.1.50", float(t)) is None
        assert g.record_failure("10.0.0.7", float(t)) is None
    assert not g.is_banned("192.168.1.50", 10.0)
    g.replace_bans([SourceBan(address="10.0.0.7", banned_at=0, until=1e9, failures=9, reason="x")])
    assert not g.is_banned("10.0.0.7", 10.0)


def test_stored_bans_are_the_truth_after_a_reload() -> None:
    g = guard()
    g.replace_bans([SourceBan(address="::1", banned_at=0, until=100.0, failures=10, reason="x")])
    assert g.is_banned("::1", 50.0)
    g.replace_bans([])  # `pbx unban ::1`
    assert not g.is_banned("::1", 50.0)


def test_failure_history_is_bounded() -> None:
    g = guard(max_tracked_sources=100)
    for i in range(1000):
        g.record_failure(f"10.1.{i // 256}.{i % 256}", 0.0)
    assert len(g._failures) <= 100


def test_bad_allow_list_entries_are_named() -> None:
    with pytest.raises(ValueError, match="not-an-ip"):
        parse_networks("10.0.0.0/8, not-an-ip")
