"""What a finished transaction keeps of a message: its bytes, and the message rebuilt from them.

A transaction that has its final answer lives on for up to 64*T1 (Timers D, J, L, M) only
to absorb retransmissions, and for that it needs the bytes it would send again (the last
response on a server transaction, the ACK on a client INVITE transaction), not the parsed
message with its typed views: a parsed response is several kilobytes of small objects, its
bytes a few hundred (issue 12: at 400 calls a second the 32 s window held ~8 KB a transaction).

A resend is rare, so the message for the ``SendMessage`` output is rebuilt from the bytes only
then. It is rebuilt, not parsed: the bytes are our own serialization (``bytes(message)``),
so the start line and the ``Name: value`` lines are split as written and nothing is checked
again; serializing the rebuilt message gives the same bytes (the transport may also send
``SendMessage.data`` as it is).
"""

from __future__ import annotations

from pbx.sip.headers import Headers
from pbx.sip.message import Message, Request, Response
from pbx.sip.uri import parse_uri


def message_from_wire(data: bytes) -> Message:
    """The message whose ``bytes()`` are ``data``, for bytes made by ``bytes(message)``."""
    head, _, body = data.partition(b"\r\n\r\n")
    start, *lines = head.decode().split("\r\n")
    fields = []
    for line in lines:
        name, _, value = line.partition(": ")
        fields.append((name, value))
    headers = Headers(fields)
    first, second, third = start.split(" ", 2)
    if first.startswith("SIP/"):
        return Response(status=int(second), reason=third, version=first, headers=headers, body=body)
    return Request(method=first, uri=parse_uri(second), version=third, headers=headers, body=body)
