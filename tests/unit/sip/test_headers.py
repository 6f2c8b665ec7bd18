"""Header fields (RFC 3261 §7.3, §20): names, the field list, lists, parameters, typed values."""

from __future__ import annotations

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.headers import (
    COMPACT_FORMS,
    MAX_CSEQ,
    CSeq,
    Headers,
    NameAddress,
    Via,
    canonical_name,
    find_param,
    format_params,
    header_key,
    parse_cseq,
    parse_expires,
    parse_name_addr,
    parse_name_addr_list,
    parse_params,
    parse_token_list,
    parse_via,
    parse_via_list,
    set_param,
    split_comma_list,
)
from pbx.sip.uri import AbsoluteUri, SipUri, parse_uri

# ---------------------------------------------------------------------------
# Names


@pytest.mark.parametrize(
    ("compact", "long"),
    [
        ("v", "via"),
        ("f", "from"),
        ("t", "to"),
        ("i", "call-id"),
        ("m", "contact"),
        ("l", "content-length"),
        ("c", "content-type"),
        ("e", "content-encoding"),
        ("k", "supported"),
        ("s", "subject"),
        ("o", "event"),
        ("r", "refer-to"),
        ("u", "allow-events"),
        ("x", "session-expires"),
        ("b", "referred-by"),
    ],
)
def test_compact_forms(compact: str, long: str) -> None:
    assert COMPACT_FORMS[compact] == long
    assert header_key(compact) == long
    assert header_key(compact.upper()) == long
    assert header_key(long.upper()) == long


def test_unknown_names_are_their_own_key() -> None:
    assert header_key("X-Custom-Thing") == "x-custom-thing"
    assert header_key("z") == "z"


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("call-id", "Call-ID"),
        ("i", "Call-ID"),
        ("CSEQ", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("v", "Via"),
        ("record-route", "Record-Route"),
        ("x-my-header", "X-My-Header"),
        ("rack", "RAck"),
    ],
)
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical


# ---------------------------------------------------------------------------
# The field list

FIELDS = [
    ("v", "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"),
    ("Via", "SIP/2.0/UDP b.example.com;branch=z9hG4bK2, SIP/2.0/UDP c.example.com;branch=z9hG4bK3"),
    ("From", "<sip:a@example.com>;tag=1"),
    ("X-Odd", "one"),
    ("CALL-ID", "abc"),
    ("x-odd", "two"),
]


def test_lookup_by_any_spelling() -> None:
    headers = Headers(FIELDS)
    assert headers.get("Via") == "SIP/2.0/UDP a.example.com;branch=z9hG4bK1"
    assert headers.get("V") == headers.get("via")
    assert headers.get("i") == "abc"
    assert headers.get("call-id") == "abc"
    assert headers.get("X-ODD") == "one"
    assert headers.get("missing") is None
    assert headers.get_all("via") == [FIELDS[0][1], FIELDS[1][1]]
    assert headers.get_all("x-odd") == ["one", "two"]
    assert headers.get_all("missing") == []
    assert headers.count("VIA") == 2
    assert headers.count("nothing") == 0
    assert "v" in headers and "Call-Id" in headers and "Contact" not in headers
    assert 42 not in headers
    assert list(headers) == FIELDS
    assert len(headers) == len(FIELDS)


def test_values_splits_list_headers_only() -> None:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP b;branch=z9hG4bK2 , SIP/2.0/UDP c;branch=z9hG4bK3"),
            ("v", "SIP/2.0/UDP d;branch=z9hG4bK4"),
            ("Contact", '"Smith, John" <sip:js@a.example.com;x=1,2>;q=0.5, <sip:b@b.example.com>'),
            ("m", ""),
            ("Allow", "INVITE,ACK , ,BYE"),
            ("Date", "Sat, 13 Nov 2010 23:29:00 GMT"),
            ("WWW-Authenticate", 'Digest realm="pbx", nonce="1,2", algorithm=MD5'),
            ("X-Unknown", "a, b"),
        ]
    )
    assert headers.values("via") == [
        "SIP/2.0/UDP b;branch=z9hG4bK2",
        "SIP/2.0/UDP c;branch=z9hG4bK3",
        "SIP/2.0/UDP d;branch=z9hG4bK4",
    ]
    assert headers.values("m") == [
        '"Smith, John" <sip:js@a.example.com;x=1,2>;q=0.5',
        "<sip:b@b.example.com>",
    ]
    assert headers.values("allow") == ["INVITE", "ACK", "BYE"]
    # Not list headers: their commas do not separate values (§7.3.1).
    assert headers.values("date") == ["Sat, 13 Nov 2010 23:29:00 GMT"]
    assert headers.values("www-authenticate") == ['Digest realm="pbx", nonce="1,2", algorithm=MD5']
    assert headers.values("x-unknown") == ["a, b"]
    assert headers.values("missing") == []


def test_with_added_at_the_end_and_on_top() -> None:
    headers = Headers(FIELDS)
    added = headers.with_added("X-New", "1")
    assert list(added)[-1] == ("X-New", "1")
    on_top = headers.with_added("Via", "SIP/2.0/TCP pbx.example.com;branch=z9hG4bKtop", first=True)
    assert list(on_top)[0] == ("Via", "SIP/2.0/TCP pbx.example.com;branch=z9hG4bKtop")
    assert list(on_top)[1:] == FIELDS
    assert on_top.get("via") == "SIP/2.0/TCP pbx.example.com;branch=z9hG4bKtop"
    # "first" goes before the first field of that name, not necessarily at the top.
    before_odd = headers.with_added("x-ODD", "zero", first=True)
    assert before_odd.get_all("x-odd") == ["zero", "one", "two"]
    assert list(before_odd)[3] == ("x-ODD", "zero")
    # ... and at the very top when there is none yet.
    assert list(Headers([("From", "x")]).with_added("Via", "y", first=True)) == [
        ("Via", "y"),
        ("From", "x"),
    ]
    # The lookup keys follow the fields.
    assert on_top.count("v") == 3
    assert list(headers) == FIELDS  # the original is untouched


def test_with_set_replaces_in_place() -> None:
    headers = Headers(FIELDS)
    one = headers.with_set("x-odd", "only")
    assert one.get_all("x-odd") == ["only"]
    assert list(one)[3] == ("X-Odd", "only")  # the first field's place and spelling
    assert len(one) == len(FIELDS) - 1
    appended = headers.with_set("Max-Forwards", "70")
    assert list(appended)[-1] == ("Max-Forwards", "70")
    assert headers.with_set("i", "new").get("Call-ID") == "new"
    assert list(headers) == FIELDS


def test_without() -> None:
    headers = Headers(FIELDS)
    assert headers.without("via").count("v") == 0
    assert list(headers.without("V")) == [f for f in FIELDS if f[0] not in ("v", "Via")]
    assert list(headers.without("nothing")) == FIELDS
    first_gone = headers.without_first("via")
    assert first_gone.get_all("via") == [FIELDS[1][1]]
    assert headers.without_first("nothing") is headers
    assert list(headers) == FIELDS


def test_equality_and_hash() -> None:
    assert Headers(FIELDS) == Headers(list(FIELDS))
    assert hash(Headers(FIELDS)) == hash(Headers(FIELDS))
    assert Headers(FIELDS) != Headers(FIELDS[1:])
    assert Headers(FIELDS) != FIELDS
    assert "X-Odd" in repr(Headers(FIELDS))


# ---------------------------------------------------------------------------
# Comma lists and parameters


@pytest.mark.parametrize(
    ("value", "parts"),
    [
        ("a, b ,c", ["a", "b", "c"]),
        ("a,,b,", ["a", "b"]),
        ('"x, y" <sip:a@b>, <sip:c@d>', ['"x, y" <sip:a@b>', "<sip:c@d>"]),
        ('"a \\" , b" <sip:a@b>;p=1, c', ['"a \\" , b" <sip:a@b>;p=1', "c"]),
        ('"a \\\\", <sip:x@y>', ['"a \\\\"', "<sip:x@y>"]),
        ("<sip:a@b;x=1,2>;q=1, <sip:c@d>", ["<sip:a@b;x=1,2>;q=1", "<sip:c@d>"]),
        ('<sip:a@b>;p="1,2", <sip:c@d>', ['<sip:a@b>;p="1,2"', "<sip:c@d>"]),
        ('"<,>" <sip:a@b>', ['"<,>" <sip:a@b>']),
        ("", []),
    ],
)
def test_split_comma_list(value: str, parts: list[str]) -> None:
    assert split_comma_list(value) == parts


def test_split_comma_list_unterminated_quote() -> None:
    with pytest.raises(SipParseError, match="quoted"):
        split_comma_list('"a, <sip:x@y>, b')


def test_parse_params() -> None:
    assert parse_params(";a=1;b;C=x.y-z", "Test") == (("a", "1"), ("b", None), ("C", "x.y-z"))
    assert parse_params(" ; a = 1 ;  b ", "Test") == (("a", "1"), ("b", None))
    assert parse_params(';q="a;b=c";r=[2001:db8::1]', "Test") == (
        ("q", '"a;b=c"'),
        ("r", "[2001:db8::1]"),
    )
    assert parse_params(";received=2001:db8::1", "Via") == (("received", "2001:db8::1"),)
    assert parse_params("", "Test") == ()


@pytest.mark.parametrize(
    "text",
    [
        ";",
        ";;",
        "a=1",
        ";a=",
        ";=1",
        ";a b=1",
        ";a=<x>",
        ';a="x',
        ";a=1 2",
        ";a=1;;b",
        '; a="x" junk',
    ],
)
def test_parse_params_malformed(text: str) -> None:
    with pytest.raises(SipParseError, match="Test"):
        parse_params(text, "Test")


def test_find_and_set_param() -> None:
    params = parse_params(';tag=abc;Expires=60;lr;d="quo\\"ted"', "T")
    assert find_param(params, "TAG") == "abc"
    assert find_param(params, "expires") == "60"
    assert find_param(params, "lr") == ""
    assert find_param(params, "d") == 'quo"ted'
    assert find_param(params, "none") is None
    replaced = set_param(params, "expires", "0")
    assert replaced[1] == ("Expires", "0")
    assert set_param(params, "new", None)[-1] == ("new", None)
    assert format_params(replaced) == ';tag=abc;Expires=0;lr;d="quo\\"ted"'


# ---------------------------------------------------------------------------
# Via (§20.42)


def test_via_usual_form() -> None:
    via = parse_via("SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK77;rport;received=198.51.100.1")
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "UDP",
        "192.0.2.4",
        5060,
    )
    assert via.branch == "z9hG4bK77"
    assert via.rport is True
    assert via.received == "198.51.100.1"
    assert via.maddr is None
    assert str(via) == "SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bK77;rport;received=198.51.100.1"


def test_via_with_whitespace_and_lower_case() -> None:
    via = parse_via("sip / 2.0 / tcp   Host.Example.COM : 5070 ; branch = z9hG4bKx ; rport = 5071")
    assert (via.protocol, via.transport, via.host, via.port) == (
        "SIP/2.0",
        "TCP",
        "Host.Example.COM",
        5070,
    )
    assert via.host_bare == "host.example.com"
    assert via.branch == "z9hG4bKx"
    assert via.rport == 5071


def test_via_ipv6() -> None:
    via = parse_via("SIP/2.0/TLS [2001:db8::5]:5061;branch=z9hG4bKv6;received=[2001:db8::6]")
    assert (via.host, via.host_bare, via.port) == ("[2001:db8::5]", "2001:db8::5", 5061)
    assert via.received == "[2001:db8::6]"
    assert parse_via("SIP/2.0/UDP [::1];branch=z9hG4bK1").port is None


def test_via_with_param() -> None:
    via = parse_via("SIP/2.0/UDP h;branch=z9hG4bK1;rport")
    stamped = via.with_param("received", "192.0.2.1").with_param("rport", "5062")
    assert stamped.params == (("branch", "z9hG4bK1"), ("rport", "5062"), ("received", "192.0.2.1"))
    assert stamped.rport == 5062
    assert via.rport is True


def test_via_built_and_printed() -> None:
    via = Via(transport="TCP", host="pbx.example.com", params=(("branch", "z9hG4bKb"),))
    assert str(via) == "SIP/2.0/TCP pbx.example.com;branch=z9hG4bKb"
    assert parse_via(str(via)) == via


@pytest.mark.parametrize(
    "value",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/2.0 192.0.2.1",
        "SIP/2.0/UDP 192.0.2.1:",
        "SIP/2.0/UDP 192.0.2.1:99999",
        "SIP/2.0/UDP 192.0.2.1:123456",
        "SIP/2.0/UDP 192.0.2.1:\u00b2",
        "SIP/2.0/UDP 192.0.2.1:\u0665\u0660",
        "SIP/2.0/UDP 192.0.2.\u0661",
        "SIP/2.0/UDP ho_st",
        "SIP/2.0/UDP [2001:db8::1",
        "SIP/2.0/UDP [zz::1]",
        "SIP/2.0/UDP 192.0.2.1;branch=",
        "SIP/2.0/UDP 192.0.2.1;branch",
        "SIP/2.0/UDP 192.0.2.1;rport=70000",
        "SIP/2.0/UDP 192.0.2.1;rport=x",
        "SIP/2.0/UDP 192.0.2.1;;",
        "SIP/2.0/UDP 192.0.2.1 junk",
        "SIP/2.0/UDP\u00a0192.0.2.1",
    ],
)
def test_via_malformed(value: str) -> None:
    with pytest.raises(SipParseError, match="Via"):
        parse_via(value)


def test_via_list() -> None:
    vias = parse_via_list(
        ["SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/TCP b;branch=z9hG4bK2", "SIP/2.0/UDP c"]
    )
    assert [v.host for v in vias] == ["a", "b", "c"]
    assert vias[2].branch is None


# ---------------------------------------------------------------------------
# name-addr / addr-spec (§20.10)


def test_name_addr_with_quoted_display_name() -> None:
    na = parse_name_addr(
        '"Alice \\"Al\\" Smith" <sip:alice@atlanta.example.com;transport=tcp>;tag=88sja8x'
    )
    assert na.display_name == 'Alice "Al" Smith'
    assert isinstance(na.uri, SipUri)
    assert na.uri.transport == "tcp"  # inside <>: a URI parameter
    assert na.params == (("tag", "88sja8x"),)
    assert na.tag == "88sja8x"
    assert na.bracketed


def test_name_addr_with_token_display_name() -> None:
    na = parse_name_addr("Bob  Q. Public <sip:bob@biloxi.example.com>")
    assert na.display_name == "Bob  Q. Public"
    assert na.tag is None


def test_addr_spec_parameters_belong_to_the_header() -> None:
    """§20.10: without <>, ";params" after the URI are header parameters."""
    na = parse_name_addr("sip:alice@atlanta.example.com;tag=1928;transport=tcp")
    assert isinstance(na.uri, SipUri)
    assert na.uri.params == ()
    assert na.params == (("tag", "1928"), ("transport", "tcp"))
    assert not na.bracketed
    assert na.display_name is None
    assert str(na) == "sip:alice@atlanta.example.com;tag=1928;transport=tcp"


def test_display_name_with_angle_brackets_and_commas_inside_quotes() -> None:
    na = parse_name_addr('"Smith <home>, John" <sip:js@example.com>;tag=9')
    assert na.display_name == "Smith <home>, John"
    assert str(na.uri) == "sip:js@example.com"
    assert na.tag == "9"


def test_display_name_with_utf8_and_whitespace() -> None:
    na = parse_name_addr('  "Zoë Ağa"\t<sip:zoe@example.com>  ')
    assert na.display_name == "Zoë Ağa"
    assert str(na.uri) == "sip:zoe@example.com"


def test_uri_headers_inside_angle_brackets() -> None:
    """regescrt: escaped headers are fine in a bracketed Contact URI."""
    na = parse_name_addr("<sip:1001@192.0.2.4?Route=%3Csip:edge.example.com%3E>;expires=60")
    assert isinstance(na.uri, SipUri)
    assert na.uri.headers == (("Route", "%3Csip:edge.example.com%3E"),)
    assert na.param("expires") == "60"


def test_name_addr_with_other_scheme() -> None:
    na = parse_name_addr("<tel:+1-212-555-0101>;tag=t")
    assert isinstance(na.uri, AbsoluteUri)
    assert na.tag == "t"
    plain = parse_name_addr("tel:+1-212-555-0101")
    assert isinstance(plain.uri, AbsoluteUri)
    assert not plain.bracketed


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        '"unterminated <sip:a@b>',
        '"quoted" junk <sip:a@b>',
        "Bell, Alexander <sip:a@b>",
        "a@b <sip:a@b>",
        "<sip:a@b",
        "<>",
        "< sip:a@b >",
        "<sip:a@b >",
        "<sip:a@b> junk",
        "<sip:a@b>;",
        "<sip:a@b>;tag",  # a flag is fine: see below
        "sip:a@b c",
        "sip:a@b?subject=x",
        "sip:a@b,c@d",
        "<not a uri>",
        "<sip:a b@c>",
    ],
)
def test_name_addr_malformed(value: str) -> None:
    if value == "<sip:a@b>;tag":
        assert parse_name_addr(value).tag == ""
        return
    with pytest.raises(SipParseError):
        parse_name_addr(value, "To")


def test_name_addr_errors_name_the_header() -> None:
    with pytest.raises(SipParseError, match="Contact"):
        parse_name_addr('"x <sip:a@b>', "Contact")


def test_name_addr_printing_brackets_when_needed() -> None:
    uri = parse_uri("sip:alice@host;transport=tcp")
    bare = NameAddress(uri=uri, bracketed=False, params=(("tag", "1"),))
    # A URI with ";" must be bracketed, or its parameter would become the header's.
    assert str(bare) == "<sip:alice@host;transport=tcp>;tag=1"
    assert parse_name_addr(str(bare)) == NameAddress(uri=uri, params=(("tag", "1"),))
    named = NameAddress(display_name='Say "hi"', uri=parse_uri("sip:a@b"))
    assert str(named) == '"Say \\"hi\\"" <sip:a@b>'
    assert parse_name_addr(str(named)).display_name == 'Say "hi"'
    assert str(NameAddress(uri=parse_uri("sip:a@b"), bracketed=False)) == "sip:a@b"


def test_with_tag() -> None:
    na = parse_name_addr("<sip:a@b>;tag=old;x=1")
    assert na.with_tag("new").params == (("tag", "new"), ("x", "1"))
    assert parse_name_addr("<sip:a@b>").with_tag("t").tag == "t"
    assert na.with_param("x", None).param("x") == ""


def test_name_addr_list() -> None:
    contacts = parse_name_addr_list(
        ['"A, B" <sip:a@a.example.com>;q=0.7, sip:b@b.example.com;expires=60', "<sip:c@c>"],
        "Contact",
    )
    assert [str(c.uri) for c in contacts] == [
        "sip:a@a.example.com",
        "sip:b@b.example.com",
        "sip:c@c",
    ]
    assert contacts[0].display_name == "A, B"
    assert contacts[1].param("expires") == "60"


# ---------------------------------------------------------------------------
# CSeq, tokens, Expires


def test_cseq() -> None:
    assert parse_cseq("4711 INVITE") == CSeq(seq=4711, method="INVITE")
    assert parse_cseq("  0009   ACK ") == CSeq(seq=9, method="ACK")
    assert parse_cseq(f"{MAX_CSEQ} BYE").seq == 2**31 - 1
    assert str(CSeq(seq=1, method="OPTIONS")) == "1 OPTIONS"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "INVITE",
        "1",
        "1INVITE",
        "-1 INVITE",
        "1.5 INVITE",
        f"{2**31} INVITE",
        "36893488147419103232 INVITE",
        "1 IN VITE",
        "1 INVITE;x",
        "\u0661 INVITE",
        "\u00b2 INVITE",
        "1\u00a0INVITE",
    ],
)
def test_cseq_malformed(value: str) -> None:
    with pytest.raises(SipParseError, match="CSeq"):
        parse_cseq(value)


def test_token_list() -> None:
    assert parse_token_list(["100rel, timer", " replaces ,", ""]) == ["100rel", "timer", "replaces"]


def test_expires() -> None:
    assert parse_expires(" 3600 ") == 3600
    assert parse_expires("0") == 0
    assert parse_expires("9" * 30) == 2**32 - 1
    for bad in ["", "-1", "1.5", "soon", "\u00b2", "\u0661\u0662"]:
        with pytest.raises(SipParseError, match="Expires"):
            parse_expires(bad)
