"""The one error type of the SIP core: who is at fault and what to answer.

A parse or validation failure knows the status code and reason phrase of the
response it deserves (RFC 3261 §21.4.1: 400 with a reason that says what was
wrong), so the edge can answer without inspecting the exception further.
"""

from __future__ import annotations

from collections.abc import Sequence


class SipError(Exception):
    """A peer sent something we cannot accept.

    ``status``/``reason`` form the response line to send back (when the message
    was a request and enough of it parsed to answer). ``headers`` holds the
    header fields that did parse, as ``(name, value)`` pairs, so the edge can
    copy Via/From/To/Call-ID/CSeq into a 400; it is empty for garbage.
    ``method`` is the request method when the start line was a request line
    (never answer a response or an ACK). ``extra_headers`` go into the answer,
    e.g. ``Unsupported`` with a 420 or ``Min-Expires`` with a 423.
    """

    def __init__(
        self,
        reason: str,
        *,
        status: int = 400,
        headers: Sequence[tuple[str, str]] = (),
        extra_headers: Sequence[tuple[str, str]] = (),
        method: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = tuple(headers)
        self.extra_headers = tuple(extra_headers)
        self.method = method

    def __repr__(self) -> str:
        return f"SipError(status={self.status}, reason={self.reason!r})"


class SipParseError(SipError):
    """The bytes do not follow the SIP grammar (RFC 3261 §25)."""
