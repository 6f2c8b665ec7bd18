"""Feature codes dialled from a phone (``*72<number>``, ``*73``, ``*78``, ``*79``): applied to
the caller's extension, and the phone told how it went.

The answer is what phones handle as "done" and "refused": on success the switch answers 200
with an inactive audio stream (port 9, ``a=inactive``: no RTP either way) and hangs up with BYE
as soon as the ACK is in, so the phone shows a call that connected and ended at once; on a
refusal it answers the status the store gives (404 no such number, 403 not allowed out, 482
forward to itself, 484 no number after ``*72``) with its reason phrase, which phones display.
A 4xx or 6xx for a success would be shown as an error (some phones retry or say "busy"), and a
provisional alone never ends the call. No CDR: it is a setting changed, not a call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pbx.apps.context import Context, legs_deadline, legs_timers
from pbx.calls.leg import Leg
from pbx.calls.leg_incoming import IncomingLeg
from pbx.calls.outputs import CloseRelay, Confirmed, Ended, LegEvent, Output, PeerRequest
from pbx.routing.feature_codes import FeatureCommand
from pbx.sip.sdp import SessionDescription

log = logging.getLogger("pbx.calls")
DISCARD_PORT = 9
"""The port an inactive stream names (RFC 8839's placeholder): nobody sends to it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FeatureCall:
    """The dial plan's verdict: this INVITE is a feature code from extension ``caller``."""

    caller: str
    command: FeatureCommand


@dataclass(eq=False, slots=True, kw_only=True)
class FeatureCodeApp:
    id: str
    ctx: Context
    leg: IncomingLeg
    call: FeatureCall
    wall: Callable[[], float]
    offer: SessionDescription | None = None
    """The INVITE's offer, as admission read it."""
    done: bool = False

    def start(self, now: float) -> list[Output]:
        out = self.leg.start(now)
        outcome = self.ctx.directory.apply_feature(self.call.caller, self.call.command, self.wall())
        log.info(
            "event=feature_code caller=%s command=%s status=%d",
            self.call.caller, type(self.call.command).__name__, outcome.status,
        )  # fmt: skip
        if not outcome.ok:
            self.done = True
            return out + self.leg.reject(outcome.status, now, reason=outcome.reason)
        return out + self.leg.answer(self._inactive_sdp(), now)

    def _inactive_sdp(self) -> bytes:
        """An answer (or, for an INVITE without SDP, an offer) that accepts the call's audio
        as inactive: one codec the phone offered, preferring G.711."""
        offer = self.offer
        formats: tuple[str, ...] = ("0", "8")
        if offer is not None:
            audio = next((m for m in offer.media if m.media_type == "audio"), None)
            if audio is not None and audio.formats:
                usable = [f for f in ("0", "8") if f in audio.formats]
                formats = (usable[0],) if usable else (audio.formats[0],)
        host = self.ctx.local_host(self.leg.transport).strip("[]")
        family = "IP6" if ":" in host else "IP4"
        names = {"0": "PCMU/8000", "8": "PCMA/8000"}
        lines = [
            "v=0",
            f"o=switchboard 1 1 IN {family} {host}",
            "s=-",
            f"c=IN {family} {host}",
            "t=0 0",
            f"m=audio {DISCARD_PORT} RTP/AVP {' '.join(formats)}",
            *(f"a=rtpmap:{f} {names[f]}" for f in formats if f in names),
            "a=inactive",
        ]
        return ("\r\n".join(lines) + "\r\n").encode()

    def on_event(self, event: LegEvent, now: float) -> list[Output]:
        if isinstance(event, Confirmed):
            self.done = True
            return self.leg.hangup(now)
        if isinstance(event, Ended):
            self.done = True
            return []
        if isinstance(event, PeerRequest):
            return self.leg.reply(event.ref, 481, now)
        return []

    def legs(self) -> list[Leg]:
        return [self.leg]

    def relay_ready(self, relay: Any, now: float) -> list[Output]:
        return [CloseRelay(relay=relay)]

    def relay_failed(self, now: float) -> list[Output]:
        return []

    def next_deadline(self) -> float | None:
        return legs_deadline(self.legs(), None)

    def handle_timer(self, now: float) -> list[Output]:
        return legs_timers(self.legs(), now)

    def stop(self, now: float) -> list[Output]:
        self.done = True
        return self.leg.hangup(now)
