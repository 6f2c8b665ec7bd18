"""The state of one call through the B2BUA: the caller's leg (A) and the callee branches (B).

Plain mutable records owned by the call service; each leg keeps its own dialog (RFC 3261 §12),
so the two sides never see each other's Call-ID, tags or Contact.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from pbx.calls.media_plan import LegMedia
from pbx.calls.session_timer import SessionTimer
from pbx.sip.dialog import Dialog
from pbx.sip.message import Request, Response
from pbx.sip.sdp import SessionDescription
from pbx.sip.transaction import ClientKey, LegacyServerKey, ServerKey
from pbx.store.records import Binding
from pbx.transport.flow import Destination, Flow

ServerTxKey = ServerKey | LegacyServerKey


class CallState(enum.Enum):
    ROUTING = "routing"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDED = "ended"


@dataclass(slots=True, kw_only=True, eq=False)
class Branch:
    """One INVITE to one registered contact of the callee (parallel forking)."""

    key: ClientKey
    invite: Request
    binding: Binding
    destination: Destination
    dialog: Dialog | None = None
    final_status: int | None = None
    rseq_acked: int = 0
    allows_update: bool = False
    """Its 2xx listed UPDATE in Allow (RFC 3311 §5.1: otherwise no UPDATE is sent to it)."""


@dataclass(slots=True, kw_only=True, eq=False)
class Forwarded:
    """A request we relayed into the other leg, waiting for its final response."""

    call: Call
    from_side: str
    """'a' or 'b': where the original came from (its response goes back there)."""
    server_key: ServerTxKey | None
    """None for the switch's own requests (session refresh)."""
    request: Request | None
    offer: SessionDescription | None


@dataclass(slots=True, kw_only=True, eq=False)
class InDialogAck:
    """Our ACK for the 2xx to a re-INVITE we crossed into leg ``to_side``: every copy of that
    2xx gets it again (RFC 3261 §13.2.2.4). When the re-INVITE had no SDP, the 2xx carried the
    offer (``offer``): the ACK then waits for the answer in the ACK of the phone that sent the
    re-INVITE (its CSeq ``answer_seq``), and carries it (RFC 3264 §4, §13.2.1)."""

    call: Call
    to_side: str
    seq: int
    """The CSeq number of the INVITE we sent, which the ACK repeats."""
    offer: SessionDescription | None = None
    answer_seq: int = 0
    ack: Request | None = None
    """None while the answer is awaited."""


@dataclass(slots=True, kw_only=True, eq=False)
class Call:
    caller: str
    callee: str
    a_invite: Request
    a_key: ServerTxKey
    a_flow: Flow
    a_tag: str
    b_call_id: str
    b_from_tag: str
    started_at: float
    via_line: bool = False
    dial: str | None = None
    state: CallState = CallState.ROUTING
    a_dialog: Dialog | None = None
    branches: dict[ClientKey, Branch] = field(default_factory=dict)
    answered: Branch | None = None
    relay: Any = None
    offer_a: SessionDescription | None = None
    """The caller's offer; None for a late offer (INVITE without SDP)."""
    offer_to_a: SessionDescription | None = None
    """A late offer's counterpart: the switch's offer in the 200, answered in the ACK."""
    awaiting_ack_answer: bool = False
    timer_a: SessionTimer | None = None
    """The session timer agreed with the caller (RFC 4028), if it asked for one."""
    sdp_version: int = 1
    answered_at: float | None = None
    end_reason: str | None = None
    final_status: int | None = None
    leg_a: LegMedia | None = None
    leg_b: LegMedia | None = None
    early_media_sent: bool = False
    ringing_sent: bool = False
    a_reliable: bool = False
    a_rseq: int = 0
    a_unacked: Response | None = None
    """The reliable provisional sent to the caller that awaits its PRACK (RFC 3262 §3)."""
    a_queued: list[tuple[int, list[tuple[str, str]], bytes]] = field(default_factory=list)
    """Reliable provisionals waiting for that PRACK: one is outstanding at a time."""
    ok_held: bytes | None = None
    """The 200's SDP for the caller, held until a reliable 183 with SDP is PRACKed."""
    ok_to_a: Response | None = None
    timers: dict[str, Any] = field(default_factory=dict)
    awaiting_reoffer_answer: InDialogAck | None = None
    """A re-INVITE without SDP drew an offer from the other leg; its answer is awaited."""
    last_sdp_to: dict[str, bytes] = field(default_factory=dict)

    @property
    def a_call_id(self) -> str:
        return self.a_invite.call_id
