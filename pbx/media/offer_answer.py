"""The offer/answer model (RFC 3264) on top of SDP: build an offer, answer one, and read what was
agreed. The media server uses these; :mod:`pbx.sip.sdp` only parses and serializes descriptions.

Pure: descriptions in, descriptions out; session ids, versions, addresses and ports are arguments.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace

from pbx.sip.errors import SipError
from pbx.sip.sdp import (
    DTMF_EVENTS,
    RTP_AVP,
    TELEPHONE_EVENT,
    Attribute,
    Codec,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
)

# RFC 4733 §7.1.1: a telephone-event without an events parameter means 0-15.
_DEFAULT_EVENTS = "0-15"
_EVENT_RANGE_RE = re.compile(r"([0-9]{1,3})(?:-([0-9]{1,3}))?")


def make_offer(
    *,
    codecs: Sequence[Codec],
    address: str,
    port: int,
    session_id: str,
    session_version: int,
    telephone_event: Codec | None = TELEPHONE_EVENT,
    ptime: int | None = 20,
    direction: Direction = Direction.SENDRECV,
    username: str = "-",
) -> SessionDescription:
    """An offer of one audio stream, ``codecs`` in preference order (RFC 3264 §5.1), each with
    an rtpmap (required for dynamic types, recommended for static ones)."""
    offered = [*codecs, telephone_event] if telephone_event else list(codecs)
    if not codecs or len({c.payload_type for c in offered}) != len(offered):
        raise ValueError("an offer needs codecs with distinct payload types")
    attributes = [Attribute(name=d, value=v) for c in offered for d, v in _codec_lines(c)]
    if ptime is not None:
        attributes.append(Attribute(name="ptime", value=str(ptime)))
    attributes.append(Attribute(name=direction.value))
    media = MediaDescription(
        media_type="audio",
        port=port,
        formats=tuple(str(c.payload_type) for c in offered),
        attributes=tuple(attributes),
    )
    return _description(address, session_id, session_version, username, (media,))


def answer_for(
    offer: SessionDescription,
    *,
    supported: Sequence[Codec],
    telephone_event: bool,
    address: str,
    ports: Sequence[int],
    session_id: str,
    session_version: int,
    username: str = "-",
) -> SessionDescription:
    """The answer to ``offer`` (RFC 3264 §6): one m= line per offered one, in the same order.

    ``ports`` has one entry per offered m= line (0 refuses that stream). ``supported`` are the
    codecs the media server handles, matched by encoding name, clock rate and channels (its
    telephone-event entries are ignored: ``telephone_event`` decides). An accepted stream lists
    the offer's supported codecs in the offer's order with the offer's payload types and fmtp,
    plus telephone-event at a clock rate in use. Every port 0 means nothing was acceptable: answer
    the INVITE with 488 instead (RFC 3261 §13.3.1.1).
    """
    if len(ports) != len(offer.media):
        raise ValueError(f"{len(ports)} ports for {len(offer.media)} m= lines")
    media = tuple(
        _answer_media(offer, offered, port, supported, telephone_event)
        for offered, port in zip(offer.media, ports, strict=True)
    )
    return _description(address, session_id, session_version, username, media)


def negotiated_codecs(
    offer: SessionDescription, answer: SessionDescription
) -> tuple[tuple[Codec, ...], ...]:
    """Per m= line, the answer's codecs that the offer also listed: what may flow (RFC 3264 §7).

    Payload types are the answer's; () for a rejected stream. An answer with a different number
    of m= lines breaks RFC 3264 §6 and raises :class:`SipError`.
    """
    if len(answer.media) != len(offer.media):
        raise SipError(
            f"SDP: answer has {len(answer.media)} m= lines, offer has {len(offer.media)}"
        )
    result: list[tuple[Codec, ...]] = []
    for offered, answered in zip(offer.media, answer.media, strict=True):
        offered_codecs = offered.codecs if offered.port and answered.port else ()
        result.append(
            tuple(c for c in answered.codecs if any(c.same_format(o) for o in offered_codecs))
        )
    return tuple(result)


def _description(
    address: str,
    session_id: str,
    session_version: int,
    username: str,
    media: tuple[MediaDescription, ...],
) -> SessionDescription:
    connection = Connection.for_address(address)
    origin = Origin(
        username=username,
        session_id=session_id,
        session_version=session_version,
        address_type=connection.address_type,
        address=connection.address,
    )
    return SessionDescription(origin=origin, connection=connection, media=media)


def _codec_lines(codec: Codec) -> list[tuple[str, str]]:
    lines = [("rtpmap", codec.rtpmap)]
    if codec.fmtp is not None:
        lines.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    return lines


def _is_voice(codec: Codec) -> bool:
    """A codec that carries the call's audio, not only digits or comfort noise (RFC 3389)."""
    return codec.encoding_name.lower() not in ("telephone-event", "cn")


def _answer_media(
    offer: SessionDescription,
    offered: MediaDescription,
    port: int,
    supported: Sequence[Codec],
    telephone_event: bool,
) -> MediaDescription:
    codecs: list[Codec] = []
    # Only plain RTP audio: video, T.38 (udptl), SRTP and AVPF are refused (RFC 3264 §6).
    if (
        port
        and offered.port
        and offered.media_type.lower() == "audio"
        and offered.proto.upper() == RTP_AVP
    ):
        local = [s for s in supported if not s.is_telephone_event]
        # RFC 3264 §6.1: keep the offer's order and payload type numbers, so both directions
        # use the same codec; the fmtp that configures a codec is echoed as offered.
        codecs = [c for c in offered.codecs if any(c.same_format(s) for s in local)]
        if telephone_event:
            codecs += _telephone_events(offered.codecs, {c.clock_rate for c in codecs})
    if not any(_is_voice(c) for c in codecs):
        # RFC 3264 §6: a rejected stream keeps its m= line, with port 0
        return MediaDescription(
            media_type=offered.media_type, port=0, proto=offered.proto, formats=offered.formats
        )
    attributes = [Attribute(name=n, value=v) for c in codecs for n, v in _codec_lines(c)]
    ptime = offered.attribute("ptime")
    if ptime is not None:
        attributes.append(Attribute(name="ptime", value=ptime))
    direction = offer.direction_of(offered)
    connection = offer.connection_of(offered)
    if connection is not None and connection.is_hold:  # RFC 3264 §8.4: it receives nothing
        direction = Direction.of(sends=direction.sends, receives=False)
    attributes.append(Attribute(name=direction.mirrored().value))
    return MediaDescription(
        media_type=offered.media_type,
        port=port,
        proto=offered.proto,
        formats=tuple(str(c.payload_type) for c in codecs),
        attributes=tuple(attributes),
    )


def _telephone_events(offered: Iterable[Codec], clock_rates: set[int]) -> list[Codec]:
    """One telephone-event per clock rate in use (RFC 4733 §2.1 ties it to the audio clock),
    listing the DTMF events both sides handle."""
    result: list[Codec] = []
    for codec in offered:
        if codec.is_telephone_event and codec.clock_rate in clock_rates:
            offered_events = _events(codec.fmtp or _DEFAULT_EVENTS)
            common = sorted(offered_events & _events(DTMF_EVENTS))
            if common:
                result.append(replace(codec, fmtp=_event_ranges(common)))
                clock_rates = clock_rates - {codec.clock_rate}
    return result


def _events(text: str) -> set[int]:
    """The events of an RFC 4733 events list (``0-15,66,70``); nothing for a malformed one."""
    events: set[int] = set()
    for item in text.replace(" ", "").split(","):
        match = _EVENT_RANGE_RE.fullmatch(item)
        if match is None:
            return set()
        first, last = int(match[1]), int(match[2] or match[1])
        events.update(range(first, min(last, 255) + 1))
    return events


def _event_ranges(events: list[int]) -> str:
    ranges: list[list[int]] = []
    for event in events:
        if ranges and ranges[-1][1] == event - 1:
            ranges[-1][1] = event
        else:
            ranges.append([event, event])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
