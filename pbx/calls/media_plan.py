"""How a call's SDP is rewritten so that its media flows through the switch's relay.

Pure. The caller's offer becomes a new offer to the callee naming the relay's leg-b address;
the callee's answer becomes the answer to the caller naming leg a. When the two phones share
no G.711 law, each side keeps its own and the relay transcodes (both laws are offered to the
callee so this rarely happens). G.722 (wideband) is offered on when the caller offers it and
carried as it is when both phones take it; it is never transcoded, so a call is G.722 on both
legs or G.711 on both. What each relay leg must do is returned alongside. A caller
that sends no offer (a late offer) gets the switch's offer in the 200 and answers in its ACK.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx.media.offer_answer import answer_for, make_offer
from pbx.sip.errors import SipError
from pbx.sip.sdp import (
    G722,
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Direction,
    MediaDescription,
    SessionDescription,
)

G711 = (PCMU, PCMA)
CARRIED = (G722, PCMU, PCMA)
"""What the relay carries: G.722 as it is, G.711 either law (transcoded between the laws)."""


class NoCommonMedia(SipError):
    """Nothing in the offer can flow: the INVITE gets 488 (RFC 3261 §13.3.1.1)."""

    def __init__(self, reason: str = "Not Acceptable Here") -> None:
        super().__init__(reason, status=488)


@dataclass(frozen=True, slots=True, kw_only=True)
class LegMedia:
    """What a relay leg needs: where the phone said to send, and the payload types it uses."""

    remote: tuple[str, int] | None
    """From the phone's SDP; None when it is on hold with no address (the relay latches)."""
    audio_pt: int
    encoding: str
    dtmf_pt: int | None


def audio_of(sdp: SessionDescription) -> MediaDescription:
    for media in sdp.media:
        if media.media_type.lower() == "audio" and media.port:
            return media
    raise NoCommonMedia()


def _g711(codecs: tuple[Codec, ...]) -> list[Codec]:
    return [c for c in codecs if any(c.same_format(g) for g in G711)]


def _carried(codecs: tuple[Codec, ...]) -> list[Codec]:
    return [c for c in codecs if any(c.same_format(g) for g in CARRIED)]


def _remote(sdp: SessionDescription, media: MediaDescription) -> tuple[str, int] | None:
    connection = sdp.connection_of(media)
    if connection is None or connection.is_hold or not media.port:
        return None
    return (connection.address, media.port)


def _leg(
    sdp: SessionDescription, media: MediaDescription, codec: Codec, dtmf_from: tuple[Codec, ...]
) -> LegMedia:
    """A relay leg sending ``codec`` to where ``media`` of ``sdp`` says, DTMF as ``dtmf_from``."""
    return LegMedia(
        remote=_remote(sdp, media),
        audio_pt=codec.payload_type,
        encoding=codec.encoding_name.upper(),
        dtmf_pt=_dtmf(dtmf_from),
    )


def _dtmf(codecs: tuple[Codec, ...]) -> int | None:
    for codec in codecs:
        if codec.is_telephone_event and codec.clock_rate == 8000:
            return codec.payload_type
    return None


def offer_to_callee(
    offer: SessionDescription,
    *,
    address: str,
    port: int,
    session_id: str,
    version: int,
) -> SessionDescription:
    """The caller's audio codecs we can carry, in its order, then the other G.711 law (for
    transcoding) when it offered G.711 at all."""
    media = audio_of(offer)
    codecs = _carried(media.codecs)
    if not codecs:
        raise NoCommonMedia()
    # Static payload types keep their numbers; dynamic ones are ours to choose anyway.
    offered = list(dict.fromkeys(next(g for g in CARRIED if c.same_format(g)) for c in codecs))
    if any(c in G711 for c in offered):
        offered += [law for law in G711 if law not in offered]
    direction = offer.direction_of(media)
    connection = offer.connection_of(media)
    if connection is not None and connection.is_hold:
        direction = Direction.of(sends=False, receives=direction.receives)
    return _relay_offer(offered, address, port, session_id, version, direction)


def _relay_offer(
    codecs: list[Codec],
    address: str,
    port: int,
    session_id: str,
    version: int,
    direction: Direction = Direction.SENDRECV,
) -> SessionDescription:
    """An offer naming a relay leg: ``codecs``, then telephone-event, from "switchboard"."""
    return make_offer(
        codecs=codecs,
        address=address,
        port=port,
        session_id=session_id,
        session_version=version,
        telephone_event=TELEPHONE_EVENT,
        direction=direction,
        username="switchboard",
    )


def answer_to_caller(
    offer: SessionDescription,
    callee_answer: SessionDescription,
    *,
    address: str,
    port: int,
    session_id: str,
    version: int,
) -> tuple[SessionDescription, LegMedia, LegMedia]:
    """The answer for the caller, and the relay settings for leg a (caller) and b (callee)."""
    caller_media = audio_of(offer)
    callee_media = audio_of(callee_answer)
    callee_codecs = _carried(callee_media.codecs)
    caller_codecs = _carried(caller_media.codecs)
    if not callee_codecs or not caller_codecs:
        raise NoCommonMedia()
    chosen = callee_codecs[0]
    # The caller keeps the callee's codec when it offered it; otherwise its own first G.711
    # law (transcoded). G.722 is never transcoded.
    same = [c for c in caller_codecs if c.same_format(chosen)]
    laws = _g711(tuple(caller_codecs))
    if same:
        caller_codec = same[0]
    elif chosen.same_format(G722) or not laws:
        raise NoCommonMedia()
    else:
        caller_codec = laws[0]
    callee_dtmf = _dtmf(callee_media.codecs)
    answer = answer_for(
        offer,
        supported=[caller_codec],
        telephone_event=callee_dtmf is not None,
        address=address,
        ports=[port if m is caller_media else 0 for m in offer.media],
        session_id=session_id,
        session_version=version,
        username="switchboard",
    )
    leg_a = _leg(offer, caller_media, caller_codec, audio_of(answer).codecs)
    leg_b = _leg(callee_answer, callee_media, chosen, callee_media.codecs)
    return answer, leg_a, leg_b


def switch_offer(*, address: str, port: int, session_id: str, version: int) -> SessionDescription:
    """The switch's own offer to the callee when the caller sent none (a late offer, RFC 3261
    §13.2.1): both G.711 laws and telephone-event, so any phone can answer it."""
    return _relay_offer(list(G711), address, port, session_id, version)


def offer_to_late_caller(
    callee_answer: SessionDescription,
    *,
    address: str,
    port: int,
    session_id: str,
    version: int,
) -> tuple[SessionDescription, LegMedia, LegMedia]:
    """For a caller that sent no offer: the offer its 200 carries (the callee's law first, then
    the other one, which the relay would transcode), leg b's settings, and leg a's until the
    caller's answer arrives in the ACK (the callee's law; the relay latches the address)."""
    callee_media = audio_of(callee_answer)
    callee_codecs = _g711(callee_media.codecs)
    if not callee_codecs:
        raise NoCommonMedia()
    chosen = callee_codecs[0]
    law = next(g for g in G711 if chosen.same_format(g))
    offer = _relay_offer(
        [law, *(g for g in G711 if g is not law)], address, port, session_id, version
    )
    leg_b = _leg(callee_answer, callee_media, chosen, callee_media.codecs)
    leg_a = LegMedia(
        remote=None,
        audio_pt=law.payload_type,
        encoding=law.encoding_name.upper(),
        dtmf_pt=TELEPHONE_EVENT.payload_type,
    )
    return offer, leg_a, leg_b


def late_caller_leg(offer: SessionDescription, answer: SessionDescription) -> LegMedia:
    """Leg a's settings from the caller's answer in its ACK to our offer (RFC 3264 §6: the
    answer names a subset of what we offered)."""
    offered = _g711(audio_of(offer).codecs)
    media = audio_of(answer)
    agreed = [c for c in _g711(media.codecs) if any(c.same_format(o) for o in offered)]
    if not agreed:
        raise NoCommonMedia()
    codec = next(o for o in offered if agreed[0].same_format(o))
    return _leg(answer, media, codec, media.codecs)


def parse_body(content_type: str | None, body: bytes) -> SessionDescription | None:
    """The SDP of a message body, None without one; SipParseError (400) when it is broken."""
    if not body or content_type is None:
        return None
    if content_type.split(";")[0].strip().lower() != "application/sdp":
        return None
    return SessionDescription.parse(body)


def relay_answer(
    offer: SessionDescription, *, address: str, port: int, session_id: str, version: int
) -> tuple[SessionDescription, LegMedia]:
    """Our answer to a phone's offer from one relay side alone, with no other SDP to follow (a
    phone taking a call over, RFC 3891): its first G.711 law, which the relay transcodes toward
    the other side if that one uses the other law. NoCommonMedia when it offers no G.711."""
    media = audio_of(offer)
    codecs = _g711(media.codecs)
    if not codecs:
        raise NoCommonMedia()
    answer = answer_for(
        offer,
        supported=[codecs[0]],
        telephone_event=True,
        address=address,
        ports=[port if m is media else 0 for m in offer.media],
        session_id=session_id,
        session_version=version,
    )
    return answer, _leg(offer, media, codecs[0], media.codecs)
