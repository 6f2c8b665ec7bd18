from __future__ import annotations

from dataclasses import replace

from pbx.registrar.location import Location
from pbx.store.records import Binding


def binding(aor: str, key: str, expires_at: float) -> Binding:
    return Binding(
        aor=aor,
        binding_key=key,
        contact=f"sip:{aor}@10.0.0.1:{key}",
        expires_at=expires_at,
        received_host="10.0.0.1",
        received_port=5060,
        transport="UDP",
        call_id="c",
        cseq=1,
        registered_at=0.0,
    )


def test_bindings_expire_at_their_time_and_not_before() -> None:
    location = Location([binding("201", "a", 100.0), binding("202", "b", 50.0)])
    assert location.next_deadline() == 50.0
    assert location.expire(49.9) == []
    assert [b.aor for b in location.expire(50.0)] == ["202"]
    assert location.next_deadline() == 100.0 and len(location) == 1


def test_a_refresh_moves_the_expiry() -> None:
    first = binding("201", "a", 100.0)
    location = Location([first])
    location.put(replace(first, expires_at=400.0))
    assert location.expire(200.0) == []
    assert location.next_deadline() == 400.0
    assert [b.expires_at for b in location.bindings_of("201")] == [400.0]


def test_removed_bindings_never_expire_later() -> None:
    location = Location([binding("201", "a", 100.0)])
    assert location.remove("201", "a") is not None
    assert location.next_deadline() is None and location.expire(1000.0) == []
    assert location.aors() == []


def test_the_expiry_heap_stays_bounded_under_refreshes() -> None:
    location = Location()
    for i in range(10_000):
        location.put(binding("201", "a", 100.0 + i))
    assert len(location) == 1
    assert len(location._expiry) < 200


def test_remove_aor_drops_everything_of_an_extension() -> None:
    location = Location([binding("201", "a", 100.0), binding("201", "b", 100.0)])
    assert len(location.remove_aor("201")) == 2 and len(location) == 0


def test_reach_honours_the_contact_unless_the_phone_is_behind_nat() -> None:
    from dataclasses import replace as changed

    from pbx.registrar.location import reach

    lan = changed(binding("201", "a", 100.0), contact="sip:201@10.0.0.1:5062")
    assert reach(lan) == ("10.0.0.1", 5062)  # same IP as the source: the Contact's port
    natted = changed(lan, received_host="203.0.113.9", received_port=61000)
    assert reach(natted) == ("203.0.113.9", 61000)  # private Contact: where it came from
    tcp = changed(lan, transport="TCP", received_port=40000)
    assert reach(tcp) == ("10.0.0.1", 40000)  # streams go back on the connection's address
    default_port = changed(lan, contact="sip:201@10.0.0.1")
    assert reach(default_port) == ("10.0.0.1", 5060)
