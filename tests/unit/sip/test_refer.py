"""REFER's pieces: Refer-To (RFC 3515 §2.1) with an embedded Replaces (RFC 3891), Referred-By
(RFC 3892), and the NOTIFY's Event, Subscription-State and message/sipfrag body (RFC 3420)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.sip.dialog import DialogId
from pbx.sip.errors import SipParseError
from pbx.sip.headers import parse_name_addr, parse_via
from pbx.sip.message import Request, make_request, parse_message
from pbx.sip.refer import (
    MAX_EMBEDDED_HEADERS,
    MAX_SIPFRAG_SIZE,
    SIPFRAG_CONTENT_TYPE,
    Event,
    SipFrag,
    SubscriptionState,
    escape_hvalue,
    is_sipfrag,
    parse_event,
    parse_refer_to,
    parse_referred_by,
    parse_sipfrag,
    parse_subscription_state,
    refer_event,
    refer_notify,
    refer_status_of_notify,
    refer_to,
    refer_to_of_request,
    referred_by,
    status_frag,
)
from pbx.sip.replaces import Replaces, parse_replaces
from pbx.sip.uri import AbsoluteUri, SipUri, parse_sip_uri

# ---------------------------------------------------------------------------
# Refer-To, on RFC 3515 §2.1's examples


def test_rfc_example_addr_spec() -> None:
    value = parse_refer_to("sip:alice@atlanta.example.com")
    assert str(value.target) == "sip:alice@atlanta.example.com"
    assert value.replaces is None and value.embedded_headers == ()
    assert value.method == "INVITE"


def test_rfc_example_with_an_embedded_replaces() -> None:
    value = parse_refer_to(
        "<sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3B"
        "to-tag%3D12345%3Bfrom-tag%3D5FFE-3994>"
    )
    assert str(value.target) == "sip:dave@denver.example.org"  # the headers are not the target
    assert value.replaces == Replaces(call_id="12345@192.168.118.3", to_tag="12345",
                                      from_tag="5FFE-3994")  # fmt: skip
    assert value.embedded_headers == ()


def test_rfc_example_with_a_method() -> None:
    value = parse_refer_to("<sip:carol@cleveland.example.org;method=SUBSCRIBE>")
    assert value.method == "SUBSCRIBE"
    assert str(value.target) == "sip:carol@cleveland.example.org;method=SUBSCRIBE"


def test_rfc_example_with_another_scheme() -> None:
    value = parse_refer_to("http://www.ietf.org")
    assert isinstance(value.target, AbsoluteUri) and value.method == "INVITE"


def test_what_baresip_and_linphone_send() -> None:
    # baresip 1.0: "Refer-To: sip:203@127.0.0.1:5060"; linphone: "<sip:203@127.0.0.1>"
    for text in ("sip:203@127.0.0.1:5060", "<sip:203@127.0.0.1>", '"Ext 203" <sip:203@h>'):
        target = parse_refer_to(text).target
        assert isinstance(target, SipUri) and target.user == "203"


def test_what_linphone_sends_for_an_attended_transfer() -> None:
    # linphonec 5.1 "transfer 1 --to-call 2": lower-case escapes, from-tag first.
    value = parse_refer_to(
        "<sip:203@127.0.0.1?Replaces=b10KcziEy7%3bfrom-tag%3ds9-KcgNIq%3bto-tag%3dab20bf6f73f580eb>"
    )
    assert value.replaces == Replaces(call_id="b10KcziEy7", to_tag="ab20bf6f73f580eb",
                                      from_tag="s9-KcgNIq")  # fmt: skip
    assert value.replaces.matches(DialogId("b10KcziEy7", "ab20bf6f73f580eb", "s9-KcgNIq"))


def test_other_embedded_headers_are_kept_unescaped() -> None:
    value = parse_refer_to(
        "<sip:bob@biloxi.example.net?Accept-Contact=sip:bobsdesk.biloxi.example.net"
        "&Subject=hello%20there&Replaces=c%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>;x=1"
    )
    assert value.embedded_headers == (
        ("Accept-Contact", "sip:bobsdesk.biloxi.example.net"),
        ("Subject", "hello there"),
    )
    assert value.replaces is not None and value.replaces.call_id == "c@h"
    assert value.address.param("x") == "1"


def test_replaces_is_found_whatever_its_case() -> None:
    value = parse_refer_to("<sip:c@h?replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>")
    assert value.replaces is not None and value.replaces.from_tag == "2"


def test_building_an_attended_transfer_refer_to() -> None:
    # Bob's consultation dialog with Carol (Bob's view): Carol must find it as hers.
    consult = DialogId("consult@bob", local_tag="bob-1", remote_tag="carol-2")
    made = refer_to(parse_sip_uri("sip:carol@h"), replaces=Replaces.naming(consult))
    assert str(made) == (
        "<sip:carol@h?Replaces=consult%40bob%3Bto-tag%3Dcarol-2%3Bfrom-tag%3Dbob-1>"
    )
    again = parse_refer_to(str(made))
    assert again == made
    assert again.replaces is not None
    assert again.replaces.matches(DialogId("consult@bob", "carol-2", "bob-1"))


def test_a_blind_refer_to_is_bracketed() -> None:
    assert str(refer_to(parse_sip_uri("sip:203@h"), display_name="Ext 203")) == (
        '"Ext 203" <sip:203@h>'
    )
    with pytest.raises(ValueError):
        refer_to(AbsoluteUri(scheme="tel", text="tel:+1"), replaces=parse_replaces(
            "a;to-tag=1;from-tag=2"))  # fmt: skip


def test_escaping_keeps_what_hvalue_allows() -> None:
    assert escape_hvalue("a@b;c=d e%") == "a%40b%3Bc%3Dd%20e%25"
    assert escape_hvalue("x-_.!~*'()[]/?:+$") == "x-_.!~*'()[]/?:+$"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sip:c@h?Replaces=x",  # a URI with headers needs angle brackets
        "<sip:c@h?Replaces=x>",  # no tags
        "<sip:c@h?Replaces=a%3Bto-tag%3D1>",  # no from-tag
        "<sip:c@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&Replaces=b%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        "<sip:c@h?Replaces>",
        "<sip:c@h",
        "<sip:c@h?" + "&".join(f"h{i}=v" for i in range(MAX_EMBEDDED_HEADERS + 1)) + ">",
        "<sip:c@h?Replaces=%FF%FE%3Bto-tag%3D1%3Bfrom-tag%3D2>",
    ],
)
def test_malformed_refer_to_is_a_400(text: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_refer_to(text)
    assert caught.value.status == 400


def test_a_refer_needs_exactly_one_refer_to() -> None:
    # RFC 3515 §2.4.1: zero or more than one Refer-To value is a 400.
    assert refer_to_of_request(["<sip:a@h>"]).target == parse_sip_uri("sip:a@h")
    for values in ([], ["<sip:a@h>", "<sip:b@h>"], ["<sip:a@h>, <sip:b@h>"]):
        with pytest.raises(SipParseError) as caught:
            refer_to_of_request(values)
        assert caught.value.status == 400


def test_refer_to_from_a_whole_message_compact_form() -> None:
    raw = (
        b"REFER sip:switch@127.0.0.1 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
        b"Max-Forwards: 70\r\nFrom: <sip:201@h>;tag=a\r\nTo: <sip:202@h>;tag=b\r\n"
        b"Call-ID: x@h\r\nCSeq: 3 REFER\r\n"
        b"r: <sip:203@h?Replaces=c%40h%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\n"
        b"b: <sip:201@h>\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(raw)
    assert isinstance(message, Request)
    value = refer_to_of_request(message.headers.get_all("Refer-To"))
    assert value.replaces is not None and value.replaces.to_tag == "1"
    by = message.headers.get("Referred-By")
    assert by is not None and str(parse_referred_by(by).address.uri) == "sip:201@h"


# ---------------------------------------------------------------------------
# Referred-By (RFC 3892 §3)


def test_referred_by_rfc_example_with_cid() -> None:
    # RFC 3892 §3's example: a referrer URI and the cid of its token body
    value = parse_referred_by(
        '<sip:referrer@referrer.example>;cid="20398823.2UWQFN309shb3@referrer.example"'
    )
    assert value.cid == "20398823.2UWQFN309shb3@referrer.example"
    assert parse_referred_by(str(value)) == value


def test_referred_by_compact_rfc_example() -> None:
    value = parse_referred_by("sip:r@ref.example")
    assert value.cid is None and str(value) == "sip:r@ref.example"


def test_referred_by_built_from_a_from_drops_the_tag() -> None:
    made = referred_by(parse_name_addr('"Alice" <sip:201@h>;tag=abc', "From"))
    assert str(made) == '"Alice" <sip:201@h>'


@pytest.mark.parametrize(
    "text", ["", "<sip:r@h>;cid=abc", '<sip:r@h>;cid="no-at-sign"', "<sip:r@h>;cid", "<>"]
)
def test_malformed_referred_by_is_a_400(text: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_referred_by(text)
    assert caught.value.status == 400


# ---------------------------------------------------------------------------
# Event and Subscription-State


def test_refer_event() -> None:
    assert str(refer_event(93809824)) == "refer;id=93809824"
    parsed = parse_event("refer;id=93809824")
    assert parsed == refer_event(93809824)
    assert parsed.same_subscription(parse_event("REFER ;id=93809824"))
    assert not parsed.same_subscription(parse_event("refer;id=1"))
    assert not parsed.same_subscription(parse_event("refer"))
    assert parse_event("presence.winfo;x=1") == Event(package="presence.winfo",
                                                      params=(("x", "1"),))  # fmt: skip


@pytest.mark.parametrize("text", ["", ";id=1", "refer;id", "refer;id=1;id=2", "ref er", "a..b"])
def test_malformed_event_is_a_400(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_event(text)


def test_subscription_states() -> None:
    active = parse_subscription_state("active;expires=60")
    assert active == SubscriptionState(state="active", expires=60)
    assert not active.terminated
    done = parse_subscription_state("terminated;reason=noresource")
    assert done.terminated and done.reason == "noresource" and done.expires is None
    assert str(done) == "terminated;reason=noresource"
    odd = parse_subscription_state("terminated ; reason=giveup; retry-after=30; x")
    assert (odd.retry_after, odd.params) == (30, (("x", None),))
    assert parse_subscription_state(str(odd)) == odd


@pytest.mark.parametrize(
    "text", ["", "active;expires=soon", "active;expires", "active;expires=1;expires=2",
             "terminated;reason", "act ive"],
)  # fmt: skip
def test_malformed_subscription_state_is_a_400(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_subscription_state(text)


# ---------------------------------------------------------------------------
# message/sipfrag


@pytest.mark.parametrize(
    ("status", "line"),
    [
        (100, b"SIP/2.0 100 Trying\r\n"),
        (180, b"SIP/2.0 180 Ringing\r\n"),
        (200, b"SIP/2.0 200 OK\r\n"),
        (486, b"SIP/2.0 486 Busy Here\r\n"),
        (603, b"SIP/2.0 603 Decline\r\n"),
    ],
)
def test_status_frags(status: int, line: bytes) -> None:
    frag = status_frag(status)
    assert bytes(frag) == line
    assert parse_sipfrag(line) == frag
    assert frag.final is (status >= 200)


def test_rfc_3515_example_body_is_twenty_bytes() -> None:
    # RFC 3515 §4's NOTIFY: "Content-Length: 20" for "SIP/2.0 100 Trying" and its CRLF.
    assert len(bytes(status_frag(100))) == 20


def test_sipfrag_without_final_crlf_and_with_headers() -> None:
    assert parse_sipfrag(b"SIP/2.0 200 OK") == SipFrag(status=200, reason="OK")
    frag = parse_sipfrag(b"SIP/2.0 503 Service Unavailable\r\nRetry-After: 10\r\n"
                         b" ;x=1\r\n\r\nignored body")  # fmt: skip
    assert frag.headers == (("Retry-After", "10 ;x=1"),)
    assert parse_sipfrag(bytes(frag)) == frag


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"INVITE sip:a@h SIP/2.0\r\n",  # RFC 3515 §2.4.5: must begin with a Status-Line
        b"SIP/3.0 200 OK\r\n",
        b"SIP/2.0 99 Low\r\n",
        b"SIP/2.0 700 High\r\n",
        b"SIP/2.0 200 OK\r\nno colon here\r\n",
        b"SIP/2.0 200 OK\r\n" + b"A: b\r\n" * 40,
        b"SIP/2.0 200 \xff\r\n",
        b"SIP/2.0 200 OK" + b" " * MAX_SIPFRAG_SIZE,
    ],
)
def test_malformed_sipfrag_is_a_400(body: bytes) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_sipfrag(body)
    assert caught.value.status == 400


def test_content_type() -> None:
    assert is_sipfrag(SIPFRAG_CONTENT_TYPE)
    assert is_sipfrag("Message/SipFrag")
    assert not is_sipfrag("application/sdp") and not is_sipfrag(None)


# ---------------------------------------------------------------------------
# The NOTIFY of the implicit subscription


def test_provisional_notify_keeps_the_subscription_active() -> None:
    notify = refer_notify(7, 100, expires=45)
    assert notify.header_fields() == (
        ("Event", "refer;id=7"),
        ("Subscription-State", "active;expires=45"),
    )
    assert notify.body == b"SIP/2.0 100 Trying\r\n"
    assert notify.content_type == "message/sipfrag;version=2.0"


@pytest.mark.parametrize("status", [200, 486, 487, 603])
def test_final_notify_terminates_it(status: int) -> None:
    notify = refer_notify(7, status)
    assert dict(notify.header_fields())["Subscription-State"] == "terminated;reason=noresource"


def test_a_notify_built_then_read_back() -> None:
    notify = refer_notify(12, 180)
    request = make_request(
        "NOTIFY", parse_sip_uri("sip:201@127.0.0.1:5070"),
        via=parse_via("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn1"),
        from_=parse_name_addr("<sip:switch@h>;tag=s", "From"),
        to=parse_name_addr("<sip:201@h>;tag=p", "To"), call_id="x@h", cseq=2,
        headers=notify.header_fields(), body=notify.body, content_type=notify.content_type,
    )  # fmt: skip
    parsed = parse_message(bytes(request))
    assert isinstance(parsed, Request)
    event, state, frag = refer_status_of_notify(
        parsed.headers.get("o"), parsed.headers.get("Subscription-State"),
        parsed.content_type, parsed.body,
    )  # fmt: skip
    assert event == refer_event(12) and not state.terminated and frag.status == 180


@pytest.mark.parametrize(
    ("event", "state", "ctype"),
    [
        (None, "active", SIPFRAG_CONTENT_TYPE),
        ("presence", "active", SIPFRAG_CONTENT_TYPE),
        ("refer", None, SIPFRAG_CONTENT_TYPE),
        ("refer", "active", "text/plain"),
    ],
)
def test_a_notify_missing_a_piece_is_a_400(
    event: str | None, state: str | None, ctype: str
) -> None:
    with pytest.raises(SipParseError):
        refer_status_of_notify(event, state, ctype, b"SIP/2.0 100 Trying\r\n")


# ---------------------------------------------------------------------------
# Round trips

_TOKEN = st.text(
    st.characters(codec="ascii", categories=["Lu", "Ll", "Nd"], include_characters="-.!%*_+`'~"),
    min_size=1, max_size=16,
)  # fmt: skip
_USER = st.text(st.characters(codec="ascii", categories=["Lu", "Ll", "Nd"]), min_size=1,
                max_size=12)  # fmt: skip
_WORD = st.text(
    st.characters(codec="ascii", categories=["Lu", "Ll", "Nd"],
                  include_characters="-.!%*_+`'~()<>:\\\"/[]?{}"),
    min_size=1, max_size=24,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    user=_USER,
    call_id=_WORD,
    to_tag=_TOKEN,
    from_tag=_TOKEN,
    early=st.booleans(),
    name=st.one_of(
        st.none(),
        st.text(st.characters(codec="ascii", min_codepoint=32, max_codepoint=126), max_size=12),
    ),
)
def test_refer_to_round_trip(
    user: str, call_id: str, to_tag: str, from_tag: str, early: bool, name: str | None
) -> None:  # fmt: skip
    replaces = Replaces(call_id=call_id, to_tag=to_tag, from_tag=from_tag, early_only=early)
    made = refer_to(parse_sip_uri(f"sip:{user}@pbx.example"), replaces=replaces,
                    display_name=name)  # fmt: skip
    again = parse_refer_to(str(made))
    assert again.replaces == replaces
    assert again.target == made.target
    assert again.address.display_name == name


@settings(max_examples=200, deadline=None)
@given(cseq=st.integers(min_value=1, max_value=2**31 - 1),
       status=st.integers(min_value=100, max_value=699),
       reason=st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF,
                                    exclude_characters="\x7f"), max_size=30))  # fmt: skip
def test_notify_round_trip(cseq: int, status: int, reason: str) -> None:
    notify = refer_notify(cseq, status, reason.strip(" \t"))
    fields = dict(notify.header_fields())
    event, state, frag = refer_status_of_notify(
        fields["Event"], fields["Subscription-State"], notify.content_type, notify.body
    )
    assert event.id == str(cseq)
    assert state.terminated is (status >= 200)
    assert (frag.status, frag.reason) == (status, reason.strip(" \t"))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_refer_to_or_a_400(text: str) -> None:
    try:
        value = parse_refer_to(text)
    except SipParseError as exc:
        assert exc.status in (400, 414)
    else:
        assert parse_refer_to(str(value)).target == value.target


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_a_sipfrag_or_a_400(body: bytes) -> None:
    try:
        frag = parse_sipfrag(body)
    except SipParseError as exc:
        assert exc.status == 400
    else:
        assert parse_sipfrag(bytes(frag)).status == frag.status
