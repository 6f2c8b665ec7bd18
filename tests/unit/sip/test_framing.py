"""Cutting a TCP byte stream into messages (RFC 3261 §18.3, RFC 5626 §3.5.1)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.sip.errors import SipParseError
from pbx.sip.framing import MAX_HEADER_SECTION, KeepAlivePing, StreamFramer

BODY = b"v=0\r\n"
MSG_WITH_BODY = (
    b"MESSAGE sip:1002@pbx SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK1\r\n"
    b"From: <sip:1001@pbx>;tag=a\r\nTo: <sip:1002@pbx>\r\nCall-ID: c1\r\nCSeq: 1 MESSAGE\r\n"
    b"Content-Length: 5\r\n\r\n" + BODY
)
MSG_COMPACT = (
    b"OPTIONS sip:pbx SIP/2.0\r\nv: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2\r\n"
    b"f: <sip:1001@pbx>;tag=a\r\nt: <sip:pbx>\r\ni: c2\r\nCSeq: 2 OPTIONS\r\nl: 0\r\n\r\n"
)


def test_two_messages_in_one_segment() -> None:
    framer = StreamFramer()
    assert framer.feed(MSG_WITH_BODY + MSG_COMPACT) == [MSG_WITH_BODY, MSG_COMPACT]
    assert framer.buffered == 0


@given(st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30))
def test_any_segmentation_gives_the_same_messages(cuts: list[int]) -> None:
    stream = MSG_WITH_BODY + b"\r\n\r\n" + MSG_COMPACT + MSG_WITH_BODY
    framer = StreamFramer()
    items: list[object] = []
    pos = 0
    for size in cuts:
        items += framer.feed(stream[pos : pos + size])
        pos += size
    items += framer.feed(stream[pos:])
    assert items == [MSG_WITH_BODY, KeepAlivePing(), MSG_COMPACT, MSG_WITH_BODY]


def test_double_crlf_is_a_ping_single_crlf_is_ignored() -> None:
    framer = StreamFramer()
    assert framer.feed(b"\r\n\r\n") == [KeepAlivePing()]
    assert framer.feed(b"\r\n") == []  # might still become a ping
    assert framer.feed(MSG_COMPACT) == [MSG_COMPACT]


def test_missing_content_length_cannot_be_framed() -> None:
    framer = StreamFramer()
    with pytest.raises(SipParseError, match="Missing Content-Length"):
        framer.feed(MSG_COMPACT.replace(b"l: 0\r\n", b""))


def test_bad_content_length() -> None:
    with pytest.raises(SipParseError, match="Content-Length"):
        StreamFramer().feed(MSG_COMPACT.replace(b"l: 0", b"l: -5"))
    with pytest.raises(SipParseError, match="Conflicting"):
        StreamFramer().feed(MSG_COMPACT.replace(b"l: 0\r\n", b"l: 0\r\nContent-Length: 3\r\n"))


def test_oversized_message_and_endless_headers_are_refused() -> None:
    framer = StreamFramer(max_message_size=100)
    with pytest.raises(SipParseError) as info:
        framer.feed(MSG_WITH_BODY)
    assert info.value.status == 513
    with pytest.raises(SipParseError, match="Header section too long"):
        StreamFramer().feed(b"OPTIONS sip:x SIP/2.0\r\nX: " + b"a" * (MAX_HEADER_SECTION + 10))


def test_body_waits_for_all_its_bytes() -> None:
    framer = StreamFramer()
    assert framer.feed(MSG_WITH_BODY[:-2]) == []
    assert framer.feed(MSG_WITH_BODY[-2:]) == [MSG_WITH_BODY]
