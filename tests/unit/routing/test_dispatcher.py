"""What the switch answers (RFC 3261 §8.2, §11, §12.2.2, §15.1.2, §9.2)."""

from __future__ import annotations

import itertools

import pytest

from pbx.routing.dispatcher import Capabilities, RequestDispatcher
from pbx.sip.message import Request, Response, parse_message


def make(
    method: str = "OPTIONS",
    *,
    uri: str = "sip:pbx.example",
    extra: str = "",
    to_tag: str | None = None,
    cseq_method: str | None = None,
) -> Request:
    to = "<sip:pbx.example>" + (f";tag={to_tag}" if to_tag else "")
    data = (
        f"{method} {uri} SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK77\r\nMax-Forwards: 70\r\n"
        f"From: <sip:1001@pbx.example>;tag=f1\r\nTo: {to}\r\nCall-ID: d1\r\n"
        f"CSeq: 5 {cseq_method or method}\r\nTimestamp: 54\r\n{extra}Content-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


@pytest.fixture()
def dispatcher() -> RequestDispatcher:
    tags = (f"tag{n}" for n in itertools.count())
    return RequestDispatcher(
        capabilities=Capabilities(supported=("path",)), new_tag=lambda: next(tags)
    )


def answer(dispatcher: RequestDispatcher, request: Request) -> Response:
    response = dispatcher.handle(request)
    assert response is not None
    return response


def test_options_200_lists_capabilities_and_copies_headers(dispatcher: RequestDispatcher) -> None:
    req = make()
    res = answer(dispatcher, req)
    assert res.status == 200 and res.reason == "OK"
    assert res.headers.values("allow") == ["OPTIONS", "ACK", "CANCEL", "BYE"]
    assert res.headers.get("accept") == "application/sdp"
    assert res.headers.get("supported") == "path"
    # §8.2.6.2: Via, From, Call-ID, CSeq copied; To gets our tag.
    assert res.headers.get_all("via") == req.headers.get_all("via")
    assert res.headers.get("from") == req.headers.get("from")
    assert res.call_id == req.call_id and res.cseq == req.cseq
    assert res.to.tag == "tag0"
    assert "timestamp" not in res.headers  # only a 100 copies it (§8.2.6.1)


def test_ack_gets_no_answer(dispatcher: RequestDispatcher) -> None:
    assert dispatcher.handle(make("ACK")) is None


@pytest.mark.parametrize(
    ("method", "status"),
    [
        ("INVITE", 404),
        ("MESSAGE", 404),
        ("REGISTER", 404),
        ("BYE", 481),
        ("PRACK", 481),
        ("UPDATE", 481),
        ("INFO", 481),
        ("CANCEL", 481),
        ("SUBSCRIBE", 405),
        ("NOTIFY", 405),
        ("PUBLISH", 405),
        ("REFER", 405),
        ("FOO", 501),
        ("X-CUSTOM.1", 501),
    ],
)
def test_methods_not_served_yet(dispatcher: RequestDispatcher, method: str, status: int) -> None:
    res = answer(dispatcher, make(method))
    assert res.status == status
    # §20.5: 405 must carry Allow; we add it to 501 as well.
    assert ("allow" in res.headers) == (status in (405, 501))


def test_in_dialog_request_for_unknown_dialog_is_481(dispatcher: RequestDispatcher) -> None:
    assert answer(dispatcher, make("INVITE", to_tag="remote")).status == 481
    assert answer(dispatcher, make("OPTIONS", to_tag="remote")).status == 481


def test_unsupported_require_is_420_with_unsupported(dispatcher: RequestDispatcher) -> None:
    res = answer(dispatcher, make(extra="Require: path, foo, 100rel\r\n"))
    assert res.status == 420
    assert res.headers.get("unsupported") == "foo, 100rel"
    # Supported option tags pass.
    assert answer(dispatcher, make(extra="Require: path\r\n")).status == 200


def test_cancel_ignores_require(dispatcher: RequestDispatcher) -> None:
    assert answer(dispatcher, make("CANCEL", extra="Require: foo\r\n")).status == 481


def test_unknown_uri_scheme_is_416(dispatcher: RequestDispatcher) -> None:
    assert answer(dispatcher, make("INVITE", uri="mailto:a@b.example")).status == 416


def test_max_forwards_zero_is_483_except_options(dispatcher: RequestDispatcher) -> None:
    req = make("INVITE").headers.with_set("Max-Forwards", "0")
    from dataclasses import replace

    invite = replace(make("INVITE"), headers=req)
    assert answer(dispatcher, invite).status == 483
    options = replace(make(), headers=make().headers.with_set("Max-Forwards", "0"))
    assert answer(dispatcher, options).status == 200


def test_services_take_over_their_method() -> None:
    seen: list[str] = []

    def register(request: Request, flow: object) -> Response | None:
        seen.append(request.method)
        return None

    dispatcher = RequestDispatcher(
        capabilities=Capabilities(), new_tag=lambda: "t", services={"REGISTER": register}
    )
    assert dispatcher.handle(make("REGISTER")) is None
    assert seen == ["REGISTER"]
