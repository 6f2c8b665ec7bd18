"""Session timers (RFC 4028) as the switch answers them."""

from __future__ import annotations

import pytest

from pbx.calls.session_timer import (
    MIN_SE,
    SessionTimer,
    TooSmall,
    negotiate,
    parse_session_expires,
    refresh_interval,
)
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request, parse_message


def invite(*headers: str) -> Request:
    text = (
        "INVITE sip:202@192.0.2.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKst1\r\n"
        "From: <sip:201@192.0.2.1>;tag=a\r\nTo: <sip:202@192.0.2.1>\r\n"
        "Call-ID: st@test\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        + "".join(h + "\r\n" for h in headers)
        + "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def test_no_session_expires_means_no_timer() -> None:
    assert negotiate(invite("Supported: timer")) is None


def test_a_phone_that_supports_timers_refreshes_itself() -> None:
    timer = negotiate(invite("Supported: timer, 100rel", "Session-Expires: 1800"))
    assert timer == SessionTimer(interval=1800, refresher="uac", require=True)
    assert timer.headers() == [("Session-Expires", "1800;refresher=uac"), ("Require", "timer")]


def test_the_refresher_asked_for_is_kept_and_compact_forms_are_read() -> None:
    timer = negotiate(invite("k: timer", "x: 600;refresher=uas"))
    assert timer == SessionTimer(interval=600, refresher="uas", require=True)


def test_a_phone_without_timer_support_leaves_the_refresh_to_the_switch() -> None:
    timer = negotiate(invite("Session-Expires: 900"))
    assert timer == SessionTimer(interval=900, refresher="uas", require=False)
    assert timer.headers() == [("Session-Expires", "900;refresher=uas")]


def test_under_our_minimum_is_422_with_our_min_se() -> None:
    too_small = negotiate(invite("Supported: timer", "Session-Expires: 60", "Min-SE: 60"))
    assert too_small == TooSmall(MIN_SE) and too_small.headers() == [("Min-SE", "90")]
    assert isinstance(negotiate(invite("Session-Expires: 90")), SessionTimer)


@pytest.mark.parametrize("value", ["", "abc", "-5", "1e3", "60;refresher=both", "99999999999"])
def test_malformed_session_expires_is_400(value: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_session_expires(value)
    assert caught.value.status == 400


def test_the_switch_checks_at_least_every_half_interval() -> None:
    assert refresh_interval(900.0, None) == 900.0
    assert refresh_interval(900.0, SessionTimer(600, "uac", True)) == 300.0
    assert refresh_interval(900.0, SessionTimer(3600, "uas", False)) == 900.0
