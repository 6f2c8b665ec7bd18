"""Cutting a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3, RFC 5626 §3.5.1).

On a stream, Content-Length is the only way to find where a message ends, so
it is mandatory. Between messages a peer may send CRLFs: a double CRLF is an
RFC 5626 keep-alive "ping" that we answer with a single CRLF "pong"; a single
CRLF is ignored (§7.5). Sans-I/O: bytes in, whole messages and pings out.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbx.sip.errors import SipParseError
from pbx.sip.message import MAX_MESSAGE_SIZE

MAX_HEADER_SECTION = 16384
"""A header section longer than this without its blank line ends the connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeepAlivePing:
    """The peer sent CRLFCRLF: answer with ``PONG`` (RFC 5626 §4.4.1)."""


PONG = b"\r\n"

StreamItem = bytes | KeepAlivePing


class StreamFramer:
    """Accumulates stream bytes and yields each complete message's bytes.

    ``feed`` raises SipParseError when the stream cannot be framed any more
    (no Content-Length, an oversized message): the caller closes the
    connection, since the next message boundary is unknown.
    """

    __slots__ = ("_buffer", "_max_message_size")

    def __init__(self, *, max_message_size: int = MAX_MESSAGE_SIZE) -> None:
        self._buffer = bytearray()
        self._max_message_size = max_message_size

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[StreamItem]:
        buffer = self._buffer
        buffer += data
        items: list[StreamItem] = []
        while buffer:
            # Keep-alives and stray line breaks between messages.
            if buffer[0] in (0x0D, 0x0A):
                if buffer.startswith(b"\r\n\r\n"):
                    del buffer[:4]
                    items.append(KeepAlivePing())
                    continue
                if bytes(buffer) in (b"\r", b"\r\n", b"\r\n\r"):
                    break  # wait: this may become a ping
                del buffer[: 2 if buffer.startswith(b"\r\n") else 1]
                continue
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(buffer) > MAX_HEADER_SECTION:
                    raise SipParseError("Header section too long", status=513)
                break
            length = _content_length(bytes(buffer[:end]))
            total = end + 4 + length
            if total > self._max_message_size:
                raise SipParseError("Message too large", status=513)
            if len(buffer) < total:
                break
            items.append(bytes(buffer[:total]))
            del buffer[:total]
        return items


def _content_length(head: bytes) -> int:
    """The Content-Length (or compact ``l``) value of a header section."""
    found: int | None = None
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        lname = name.strip().lower()
        if lname in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit() or len(text) > 10:
                raise SipParseError("Malformed Content-Length header")
            number = int(text)
            if found is not None and found != number:
                raise SipParseError("Conflicting Content-Length headers")
            found = number
    if found is None:
        raise SipParseError("Missing Content-Length header")
    return found
