"""A bridge: two legs joined, with their media through one relay session.

It crosses what one leg's peer sends in the dialog to the other leg: re-INVITE and UPDATE with
their SDP rewritten to the relay (a re-INVITE without SDP gets the other leg's offer in its 2xx
and the answer in its ACK goes on in our ACK, RFC 3264 §4), INFO and MESSAGE as they are. A
bridge does not end calls: when a leg ends, its owner decides. Breaking it (a transfer) leaves
both legs as they are for the owner to join elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol
from zlib import crc32

from pbx.calls.leg import Leg
from pbx.calls.media_plan import (
    LegMedia,
    NoCommonMedia,
    answer_to_caller,
    offer_to_callee,
    parse_body,
)
from pbx.calls.outputs import LegEvent, Output, PeerAck, PeerRequest, RequestAnswered
from pbx.sip.errors import SipParseError
from pbx.sip.sdp import SessionDescription

CROSSED = ("INVITE", "UPDATE", "INFO", "MESSAGE")
"""In-dialog methods a bridge carries to the other leg; REFER and NOTIFY are the owner's."""


class Relay(Protocol):
    """The media relay's session for one bridge, with its two sides named by leg id."""

    def local_address(self, leg: str) -> tuple[str, int]: ...
    def update(self, leg: str, **kwargs: Any) -> None: ...
    def stats(self) -> dict[str, Any]: ...


def session_id_of(name: str) -> str:
    """The SDP session id (RFC 8866 o=) of everything the switch offers for call ``name``:
    stable across the call's offers, so a phone sees one session whose version goes up."""
    return str(crc32(name.encode()))


@dataclass(slots=True, kw_only=True)
class _Crossing:
    """A request from ``origin``'s peer (its ``ref``) sent on to the other leg."""

    origin: Leg
    ref: int
    method: str
    offer: SessionDescription | None


@dataclass(slots=True, kw_only=True)
class _AwaitedAnswer:
    """A re-INVITE without SDP: the other leg's offer went in our 2xx to ``origin``; its
    answer, in ``origin``'s ACK, goes on in our ACK to ``target`` (ref ``target_ref``)."""

    origin: Leg
    target: Leg
    target_ref: int
    offer: SessionDescription


@dataclass(eq=False, slots=True, kw_only=True)
class Bridge:
    legs: tuple[Leg, Leg]
    relay: Relay
    session_id: str
    sdp_version: int = 1
    media: dict[str, LegMedia] = field(default_factory=dict)
    """What each relay side was last told, by leg id."""
    failed: str | None = None
    """Set when a crossing could not be completed: the owner should end the call."""
    _crossings: dict[tuple[str, int], _Crossing] = field(default_factory=dict)
    _awaited: dict[tuple[str, int], _AwaitedAnswer] = field(default_factory=dict)

    @classmethod
    def join(cls, first: Leg, second: Leg, relay: Relay, *, name: str) -> Bridge:
        return cls(legs=(first, second), relay=relay, session_id=session_id_of(name))

    def other(self, leg: Leg) -> Leg:
        first, second = self.legs
        return second if leg is first else first

    def has(self, leg_id: str) -> bool:
        return any(leg.id == leg_id for leg in self.legs)

    # -- media ---------------------------------------------------------------------------
    def configure(self, media: dict[str, LegMedia]) -> None:
        """Tell the relay where each side sends and what it uses."""
        for leg_id, leg_media in media.items():
            self.media[leg_id] = leg_media
            self.relay.update(
                leg_id,
                remote=leg_media.remote,
                audio_pt=leg_media.audio_pt,
                encoding=leg_media.encoding,
                dtmf_pt=leg_media.dtmf_pt,
            )

    def offer_to(self, leg: Leg, offer: SessionDescription) -> bytes:
        """``offer`` rewritten for ``leg``: the relay's address on its side, our next version
        (NoCommonMedia when nothing in it can flow)."""
        host, port = self.relay.local_address(leg.id)
        self.sdp_version += 1
        rewritten = offer_to_callee(
            offer, address=host, port=port, session_id=self.session_id, version=self.sdp_version
        )
        return rewritten.serialize().encode()

    def answer_for(
        self, offerer: Leg, offer: SessionDescription, answer: SessionDescription
    ) -> bytes | None:
        """Our answer to ``offerer``'s ``offer`` from the other side's ``answer``; the relay
        is set for both. None when they share nothing."""
        host, port = self.relay.local_address(offerer.id)
        try:
            sdp, media_offerer, media_answerer = answer_to_caller(
                offer, answer, address=host, port=port, session_id=self.session_id,
                version=self.sdp_version,
            )  # fmt: skip
        except NoCommonMedia:
            return None
        self.configure({offerer.id: media_offerer, self.other(offerer).id: media_answerer})
        return sdp.serialize().encode()

    # -- crossing ------------------------------------------------------------------------
    def handle(self, event: LegEvent, now: float) -> list[Output] | None:
        """Carry ``event`` across if it is the bridge's business; None when it is not."""
        if isinstance(event, PeerRequest) and event.request.method in CROSSED:
            leg = self._leg(event.leg)
            return self._cross(leg, event, now) if leg is not None else None
        if isinstance(event, RequestAnswered):
            crossing = self._crossings.pop((event.leg, event.ref), None)
            return None if crossing is None else self._answered(crossing, event, now)
        if isinstance(event, PeerAck):
            awaited = self._awaited.pop((event.leg, event.ref), None)
            return None if awaited is None else self._ack_answer(awaited, event, now)
        return None

    def _leg(self, leg_id: str) -> Leg | None:
        return next((leg for leg in self.legs if leg.id == leg_id), None)

    def _cross(self, leg: Leg, event: PeerRequest, now: float) -> list[Output]:
        request, target = event.request, self.other(leg)
        try:
            offer = parse_body(request.content_type, request.body)
        except SipParseError:
            return leg.reply(event.ref, 400, now, reason="Malformed SDP")
        body, content_type = request.body, request.content_type
        if offer is not None and request.method in ("INVITE", "UPDATE"):
            try:
                body = self.offer_to(target, offer)
            except NoCommonMedia:
                return leg.reply(event.ref, 488, now)
            content_type = "application/sdp"
        headers = [(n, v) for n, v in request.headers if n.lower() in ("info-package", "event")]
        ref, out = target.send(
            request.method, now, body=body, content_type=content_type, headers=headers
        )
        self._crossings[(target.id, ref)] = _Crossing(
            origin=leg, ref=event.ref, method=request.method, offer=offer
        )
        return out

    def _answered(self, crossing: _Crossing, event: RequestAnswered, now: float) -> list[Output]:
        origin, target = crossing.origin, self.other(crossing.origin)
        response, status = event.response, event.status
        out: list[Output] = []
        body = b""
        if response is not None and 200 <= status < 300 and crossing.offer is not None:
            try:
                answer = parse_body(response.content_type, response.body)
            except SipParseError:
                answer = None
            if answer is not None:
                body = self.answer_for(origin, crossing.offer, answer) or b""
        elif response is not None and crossing.method == "INVITE" and status < 300:
            if response.body:
                crossed = self._offer_across(origin, response)
                if crossed is None:
                    # §13.2.2.4: an offer we cannot take is ACKed, then the session ends.
                    out += target.ack(event.ref, b"", now)
                    out += origin.reply(crossing.ref, 488, now)
                    self.failed = "no usable SDP in the other leg's offer"
                    return out
                offer, body = crossed
                self._awaited[(origin.id, crossing.ref)] = _AwaitedAnswer(
                    origin=origin, target=target, target_ref=event.ref, offer=offer
                )
        elif response is not None and response.body and response.content_type:
            body = response.body
        reason = response.reason if response is not None else None
        out += origin.reply(crossing.ref, status, now, reason=reason, body=body)
        return out

    def _offer_across(self, leg: Leg, response: Any) -> tuple[SessionDescription, bytes] | None:
        try:
            offer = parse_body(response.content_type, response.body)
            if offer is None:
                return None
            return offer, self.offer_to(leg, offer)
        except (NoCommonMedia, SipParseError):
            return None

    def _ack_answer(self, awaited: _AwaitedAnswer, event: PeerAck, now: float) -> list[Output]:
        """The answer in ``origin``'s ACK to the offer we crossed from ``target``."""
        answer = None
        try:
            parsed = parse_body("application/sdp", event.sdp) if event.sdp else None
            if parsed is not None:
                answer = self.answer_for(awaited.target, awaited.offer, parsed)
        except SipParseError:
            answer = None
        if answer is None:
            self.failed = "no usable answer to the other leg's offer"
            return awaited.target.ack(awaited.target_ref, b"", now)
        return awaited.target.ack(awaited.target_ref, answer, now)
