"""Cryptographic randomness drawn from the OS a few kilobytes at a time.

The switch makes tags, branches and nonce salts thousands of times a second (two per
registration at least); one getrandom() system call per value cost more than building the
rest of the response. The bytes are the OS's CSPRNG output either way (RFC 3261 §19.3 asks
for cryptographically random tags); only the number of calls changes. Not shared between
processes: a forked child must make its own pool.
"""

from __future__ import annotations

import os
from collections.abc import Callable

DEFAULT_CHUNK = 4096


class RandomPool:
    """Hands out slices of a buffer refilled from ``source`` (os.urandom) when it runs low."""

    __slots__ = ("_buffer", "_chunk", "_offset", "_source")

    def __init__(
        self, source: Callable[[int], bytes] = os.urandom, chunk: int = DEFAULT_CHUNK
    ) -> None:
        if chunk < 64:
            raise ValueError("the chunk must hold at least 64 bytes")
        self._source = source
        self._chunk = chunk
        self._buffer = b""
        self._offset = 0

    def bytes(self, count: int) -> bytes:
        """``count`` fresh random bytes; never the same bytes twice."""
        if count > self._chunk:
            return self._source(count)
        end = self._offset + count
        if end > len(self._buffer):
            self._buffer = self._source(self._chunk)
            self._offset, end = 0, count
        value = self._buffer[self._offset : end]
        self._offset = end
        return value

    def hex(self, count: int) -> str:
        """``count`` random bytes as 2·count lowercase hex digits (tags, branches)."""
        return self.bytes(count).hex()
