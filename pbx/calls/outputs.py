"""What legs and applications ask the edge to do, and what legs tell their owner.

Legs are sans-I/O: they never touch the transaction layer, the transport or the clock. They
return these frozen records; the call core carries out the transaction ones and hands the
events to the application that owns the leg.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from pbx.sip.message import Request, Response
from pbx.sip.transaction import ClientKey, LegacyServerKey, ServerKey
from pbx.transport.flow import Destination, Flow

ServerTxKey: TypeAlias = ServerKey | LegacyServerKey


# -- to the transaction layer and the transport ----------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Respond:
    """Send ``response`` on the server transaction ``key``."""

    key: ServerTxKey
    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class StartClient:
    """Send ``request`` in a new client transaction (its top Via branch is the key) for leg
    ``leg``, which gets its responses."""

    request: Request
    destination: Destination
    leg: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelClient:
    """§9.1: CANCEL the INVITE of client transaction ``key``."""

    key: ClientKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Transmit:
    """Send outside any transaction: an ACK for a 2xx, a 2xx resent by the UAS core
    (§13.3.1.4). A response goes to ``flow`` (the §18.2.2 rules pick the address)."""

    message: Request | Response
    destination: Destination | None = None
    flow: Flow | None = None


Action: TypeAlias = Respond | StartClient | CancelClient | Transmit


# -- from a leg to its owner ---------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """An outgoing leg got a provisional response (101-199); ``sdp`` is its early answer."""

    leg: str
    status: int
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Answered:
    """An outgoing leg got its 2xx (ACKed already); ``sdp`` is the answer in it."""

    leg: str
    sdp: bytes | None
    response: Response


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirmed:
    """An incoming leg got the ACK for its 2xx; ``sdp`` is a late offer's answer in it."""

    leg: str
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Failed:
    """An outgoing leg's INVITE got a final non-2xx (or none: 408); ``contacts`` for a 3xx."""

    leg: str
    status: int
    reason: str
    contacts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Ended:
    """The leg ended by itself: the peer's BYE or CANCEL, or a give-up (no ACK, no PRACK, a
    failed session check). Not sent for an end the owner asked for with ``hangup``."""

    leg: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerRequest:
    """The peer sent a request in the dialog that the owner decides on (re-INVITE, UPDATE,
    INFO, REFER, NOTIFY, MESSAGE). Answer it with ``Leg.reply(ref, ...)``; ``sdp`` is the
    offer of a re-INVITE/UPDATE (None for a re-INVITE without one: our 2xx must offer)."""

    leg: str
    ref: int
    request: Request
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAck:
    """The ACK for our 2xx to the peer's re-INVITE ``ref``; ``sdp`` answers the offer our 2xx
    carried when the re-INVITE had none (RFC 3264 §4)."""

    leg: str
    ref: int
    sdp: bytes | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestAnswered:
    """The final response to a request the owner sent in the dialog (``Leg.send``).
    For a re-INVITE whose 2xx carries an offer (ours had none) the owner must answer it with
    ``Leg.ack(ref, sdp)``; otherwise the leg has ACKed already."""

    leg: str
    ref: int
    method: str
    status: int
    response: Response | None
    """None when the request timed out or could not be sent (``status`` 408)."""


LegEvent: TypeAlias = (
    Progress | Answered | Confirmed | Failed | Ended | PeerRequest | PeerAck | RequestAnswered
)


# -- from an application to the edge -------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class OpenRelay:
    """Bind a media relay session for application ``app``; the edge answers with
    ``relay_ready`` (or ``relay_failed``) on the core."""

    app: str
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseRelay:
    relay: object


@dataclass(frozen=True, slots=True, kw_only=True)
class Persist:
    """A row for the store's one writer: ``row`` is an ActiveCall (the call in progress,
    saved) or a CallRecord (the call is over: its CDR, and it leaves the calls in progress)."""

    row: object


AppOutput: TypeAlias = OpenRelay | CloseRelay | Persist
Output: TypeAlias = Action | LegEvent | AppOutput
