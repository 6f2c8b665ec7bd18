"""Loading the SIP message fixtures of ``tests/data/sip`` (one message per file, CRLF exact)."""

from __future__ import annotations

from pathlib import Path

from pbx.sip.errors import SipParseError
from pbx.sip.message import Message, Request, Response, parse_message

DATA = Path(__file__).resolve().parents[2] / "data" / "sip"


def fixture_bytes(name: str) -> bytes:
    return (DATA / name).read_bytes()


def fixture_names() -> list[str]:
    return sorted(path.name for path in DATA.glob("*.sip"))


def load(name: str, *, stream: bool = False) -> Message:
    return parse_message(fixture_bytes(name), stream=stream)


def load_request(name: str) -> Request:
    message = load(name)
    assert isinstance(message, Request)
    return message


def load_response(name: str) -> Response:
    message = load(name)
    assert isinstance(message, Response)
    return message


def parse_error(data: bytes, *, stream: bool = False) -> SipParseError:
    """The SipParseError that ``data`` must raise (fails the test when it parses)."""
    try:
        message = parse_message(data, stream=stream)
    except SipParseError as exc:
        return exc
    raise AssertionError(f"parsed, expected SipParseError: {message!r}")


def fixture_error(name: str, *, stream: bool = False) -> SipParseError:
    return parse_error(fixture_bytes(name), stream=stream)
