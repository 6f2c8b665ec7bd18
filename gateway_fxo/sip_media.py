"""The gateway's SDP: one PCMU stream on the call's RTP port, offered or answered (RFC 3264)."""

from __future__ import annotations

import secrets

from pbx.media.offer_answer import answer_for, make_offer
from pbx.sip.sdp import PCMU, SessionDescription


def offer_sdp(address: str, port: int) -> bytes:
    offer = make_offer(
        codecs=[PCMU],
        address=address,
        port=port,
        session_id=secrets.token_hex(4),
        session_version=1,
        telephone_event=None,
    )
    return offer.serialize().encode()


def answer_sdp(offer: bytes, address: str, port: int) -> bytes:
    """Our answer to the switch's offer: PCMU on ``port`` for audio, every other stream off."""
    parsed = SessionDescription.parse(offer)
    answer = answer_for(
        parsed,
        supported=[PCMU],
        telephone_event=False,
        address=address,
        ports=[port if m.media_type == "audio" else 0 for m in parsed.media],
        session_id=secrets.token_hex(4),
        session_version=1,
    )
    return answer.serialize().encode()


def remote_of(sdp: SessionDescription) -> tuple[str, int] | None:
    """Where the peer wants our audio: the first audio stream's address and port."""
    for media in sdp.media:
        if media.media_type == "audio" and media.port:
            address = sdp.connection_address_of(media)
            return (address, media.port) if address else None
    return None
