"""The RTP port allocator: even RTP ports with RTCP above, no port handed out twice, least
recently released first, and a clear error when the range is used up."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.media.ports import PortAllocator, PortsExhausted


def test_even_ports_with_room_for_rtcp() -> None:
    ports = PortAllocator(10001, 10008)  # 10002, 10004, 10006 (10008's RTCP is outside)
    assert ports.capacity == 3
    assert [ports.allocate() for _ in range(3)] == [10002, 10004, 10006]
    assert ports.in_use == 3


def test_exhausted_range_says_so() -> None:
    ports = PortAllocator(20000, 20003)
    ports.allocate()
    ports.allocate()
    with pytest.raises(PortsExhausted, match="all 2 RTP port pairs of 20000-20003 are in use"):
        ports.allocate()


def test_released_ports_come_back_last() -> None:
    ports = PortAllocator(30000, 30005)
    first = ports.allocate()
    ports.release(first)
    assert ports.allocate() == 30002
    assert ports.allocate() == 30004
    assert ports.allocate() == first


def test_release_of_a_port_not_handed_out() -> None:
    ports = PortAllocator(30000, 30005)
    with pytest.raises(ValueError, match="not allocated"):
        ports.release(30000)
    port = ports.allocate()
    ports.release(port)
    with pytest.raises(ValueError, match="not allocated"):
        ports.release(port)


@pytest.mark.parametrize(("low", "high"), [(10000, 10000), (0, 10), (10001, 10002), (9, 8)])
def test_ranges_without_a_pair_are_refused(low: int, high: int) -> None:
    with pytest.raises(ValueError, match="holds no RTP/RTCP pair"):
        PortAllocator(low, high)


@given(st.lists(st.booleans(), max_size=60))
def test_never_hands_out_a_port_in_use(steps: list[bool]) -> None:
    ports = PortAllocator(40000, 40019)
    held: list[int] = []
    for allocate in steps:
        if allocate and len(held) < ports.capacity:
            port = ports.allocate()
            assert port % 2 == 0 and 40000 <= port < 40019 and port not in held
            held.append(port)
        elif held:
            ports.release(held.pop(0))
        assert ports.in_use == len(held)
