"""Flows: which transport and which pair of addresses a message came over.

A flow is what the transport layer hands up with every received message and
what the layers above hand back to say "send it the way it came" (§18.2.2:
responses over a stream go back on the same connection).
"""

from __future__ import annotations

from dataclasses import dataclass

Address = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    """A received message's transport ("UDP", "TCP", "TLS"), our address and the peer's."""

    transport: str
    local: Address
    remote: Address

    @property
    def reliable(self) -> bool:
        """Stream transports retransmit for us (§17: timers A, E, G are not used)."""
        return self.transport != "UDP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    """Where to send a message: transport, host (an IP literal, no brackets) and port."""

    transport: str
    host: str
    port: int

    @property
    def address(self) -> Address:
        return (self.host, self.port)
