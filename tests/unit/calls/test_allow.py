"""Reading what a phone allows (RFC 3261 §20.5), which decides how the switch checks a leg."""

from __future__ import annotations

from pbx.calls.leg import allows
from pbx.sip.message import Response, parse_message


def ok(*allow: str) -> Response:
    fields = "".join(f"Allow: {value}\r\n" for value in allow)
    message = parse_message(
        (
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-al1\r\n"
            "From: <sip:201@192.0.2.1>;tag=a\r\nTo: <sip:202@192.0.2.1>;tag=b\r\n"
            f"Call-ID: al1@test\r\nCSeq: 1 INVITE\r\n{fields}Content-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Response)
    return message


def test_update_listed_in_one_or_several_allow_fields() -> None:
    assert allows(ok("INVITE, ACK, BYE, UPDATE"), "UPDATE")
    assert allows(ok("INVITE, ACK", " UPDATE "), "UPDATE")
    assert not allows(ok("INVITE, ACK, update"), "UPDATE")  # case-sensitive (RFC 3261 §7.1)


def test_no_allow_or_no_update_means_no_update() -> None:
    assert not allows(ok(), "UPDATE")
    assert not allows(ok("INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATES"), "UPDATE")
