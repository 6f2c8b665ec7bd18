"""The random pool: every value is fresh OS randomness, drawn a chunk at a time."""

from __future__ import annotations

import pytest

from pbx.randomness import RandomPool


class CountingSource:
    """Stands in for os.urandom: counts calls and hands out bytes that never repeat."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self._next = 0

    def __call__(self, count: int) -> bytes:
        self.calls.append(count)
        out = bytes((self._next + i) % 256 for i in range(count))
        self._next += count
        return out


def test_values_are_consecutive_slices_never_reused() -> None:
    source = CountingSource()
    pool = RandomPool(source, chunk=64)
    drawn = b"".join(pool.bytes(8) for _ in range(8))  # exactly one chunk
    assert drawn == bytes(range(64)) and source.calls == [64]
    assert pool.bytes(8) == bytes(range(64, 72))  # the next chunk, not the old one again
    assert source.calls == [64, 64]


def test_a_value_that_does_not_fit_the_rest_of_the_chunk_comes_from_a_new_one() -> None:
    source = CountingSource()
    pool = RandomPool(source, chunk=64)
    pool.bytes(60)
    assert pool.bytes(8) == bytes(range(64, 72))  # the 4 leftover bytes are skipped
    assert pool.bytes(100) == bytes(range(128, 228))  # larger than a chunk: straight through
    assert source.calls == [64, 64, 100]


def test_hex_tags_from_the_real_source_are_distinct() -> None:
    pool = RandomPool()
    tags = {pool.hex(8) for _ in range(5000)}
    assert len(tags) == 5000
    assert all(len(tag) == 16 and int(tag, 16) >= 0 for tag in tags)


def test_chunk_too_small() -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        RandomPool(chunk=8)
