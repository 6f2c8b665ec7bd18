"""Which RTP ports of the configured range are free: even ports for RTP, the odd one above
for RTCP (RFC 3550 §11: "RTP SHOULD use an even destination port number and the corresponding
RTCP stream SHOULD use the next higher (odd) destination port number").

Bookkeeping only (no sockets): the edge binds what this hands out, and gives back a port the
OS says is busy. Ports come round in order, least recently released first, so a port just freed
is the last to be reused: late packets of a finished call do not land in a new one.
"""

from __future__ import annotations

from collections import deque


class PortsExhausted(RuntimeError):
    """Every RTP port pair of the range is in use: no new media session until one closes."""


class PortAllocator:
    """Even RTP ports in ``[low, high]`` whose RTCP port (+1) is in the range too."""

    __slots__ = ("_free", "_in_use", "high", "low")

    def __init__(self, low: int, high: int) -> None:
        first = low + (low & 1)
        if not 1 <= low <= high <= 65535 or first + 1 > high:
            raise ValueError(f"port range {low}-{high} holds no RTP/RTCP pair")
        self.low = low
        self.high = high
        self._free: deque[int] = deque(range(first, high, 2))
        self._in_use: set[int] = set()

    @property
    def capacity(self) -> int:
        """How many RTP/RTCP pairs the range holds."""
        return len(self._free) + len(self._in_use)

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    def allocate(self) -> int:
        """An even RTP port not in use (its RTCP port is one higher)."""
        if not self._free:
            raise PortsExhausted(
                f"all {self.capacity} RTP port pairs of {self.low}-{self.high} are in use"
            )
        port = self._free.popleft()
        self._in_use.add(port)
        return port

    def release(self, port: int) -> None:
        """Give back a port from :meth:`allocate` (also one that turned out busy in the OS:
        it goes to the back of the queue and is tried again after all the others)."""
        if port not in self._in_use:
            raise ValueError(f"port {port} was not allocated")
        self._in_use.remove(port)
        self._free.append(port)
