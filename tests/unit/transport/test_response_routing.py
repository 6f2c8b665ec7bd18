"""RFC 3261 §18.2.1/§18.2.2 and RFC 3581: stamping Via and routing responses."""

from __future__ import annotations

import pytest

from pbx.sip.headers import parse_via
from pbx.sip.message import Request, parse_message
from pbx.transport.flow import Destination, Flow
from pbx.transport.response_routing import response_destination, stamp_received


def request(via: str, extra_via: str = "") -> Request:
    data = (
        "OPTIONS sip:pbx.example SIP/2.0\r\n"
        f"Via: {via}{extra_via}\r\n"
        "From: <sip:1001@pbx.example>;tag=f\r\nTo: <sip:pbx.example>\r\n"
        "Call-ID: r1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    message = parse_message(data)
    assert isinstance(message, Request)
    return message


UDP_FROM_NAT = Flow(transport="UDP", local=("192.0.2.1", 5060), remote=("203.0.113.9", 40123))


def test_same_address_without_rport_is_left_alone() -> None:
    req = request("SIP/2.0/UDP 203.0.113.9:5060;branch=z9hG4bK1")
    assert stamp_received(req, UDP_FROM_NAT) is req


def test_different_address_gets_received() -> None:
    req = stamp_received(request("SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1"), UDP_FROM_NAT)
    assert req.top_via.received == "203.0.113.9"
    assert req.top_via.rport is None
    # §18.2.2: received, no rport -> the sent-by port.
    assert response_destination(req.top_via, UDP_FROM_NAT) == Destination(
        transport="UDP", host="203.0.113.9", port=5060
    )


def test_rport_gets_the_source_port_and_received_even_when_equal() -> None:
    # RFC 3581 §4: with rport, received is added even if it equals sent-by.
    req = stamp_received(
        request("SIP/2.0/UDP 203.0.113.9:5060;rport;branch=z9hG4bK1"), UDP_FROM_NAT
    )
    assert req.top_via.rport == 40123
    assert req.top_via.received == "203.0.113.9"
    assert response_destination(req.top_via, UDP_FROM_NAT).port == 40123


def test_only_the_top_via_changes_even_in_a_comma_list() -> None:
    req = request(
        "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK1",
        ", SIP/2.0/UDP proxy.example;branch=z9hG4bK0",
    )
    stamped = stamp_received(req, UDP_FROM_NAT)
    assert len(stamped.vias) == 2
    assert stamped.vias[1] == req.vias[1]
    assert stamped.top_via.rport == 40123


def test_domain_sent_by_gets_received() -> None:
    req = stamp_received(request("SIP/2.0/UDP phone.example;branch=z9hG4bK1"), UDP_FROM_NAT)
    assert req.top_via.received == "203.0.113.9"
    assert response_destination(req.top_via, UDP_FROM_NAT).port == 5060


def test_ipv6_source() -> None:
    flow = Flow(transport="UDP", local=("::1", 5060), remote=("2001:db8::7", 5070))
    req = stamp_received(request("SIP/2.0/UDP [2001:db8::7]:5070;rport;branch=z9hG4bK1"), flow)
    assert req.top_via.received == "2001:db8::7"
    assert response_destination(req.top_via, flow) == Destination(
        transport="UDP", host="2001:db8::7", port=5070
    )
    # The same address written differently is the same address.
    same = request("SIP/2.0/UDP [2001:0db8::0007]:5070;branch=z9hG4bK1")
    assert stamp_received(same, flow) is same


def test_tcp_response_goes_back_on_the_connection() -> None:
    flow = Flow(transport="TCP", local=("192.0.2.1", 5060), remote=("203.0.113.9", 51000))
    via = parse_via("SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK1")
    assert response_destination(via, flow) == Destination(
        transport="TCP", host="203.0.113.9", port=51000
    )


@pytest.mark.parametrize(
    ("via", "expected"),
    [
        ("SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1", ("10.0.0.5", 5060)),
        ("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;maddr=239.1.1.1", ("239.1.1.1", 5070)),
        ("SIP/2.0/TLS 10.0.0.5;branch=z9hG4bK1", ("10.0.0.5", 5061)),
        (
            "SIP/2.0/UDP 10.0.0.5;received=198.51.100.1;rport=1234;branch=z9hG4bK1",
            ("198.51.100.1", 1234),
        ),
    ],
)
def test_destination_without_flow(via: str, expected: tuple[str, int]) -> None:
    assert response_destination(parse_via(via), None).address == expected
