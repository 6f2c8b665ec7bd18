"""SIP/SIPS and absolute URIs (RFC 3261 §19.1, §25.1)."""

from __future__ import annotations

import pytest

from pbx.sip.errors import SipParseError
from pbx.sip.uri import MAX_URI_LENGTH, AbsoluteUri, SipUri, parse_sip_uri, parse_uri


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def test_every_part() -> None:
    uri = sip(
        "sips:alice:secret@atlanta.example.com:5061;transport=tcp;lr;maddr=239.255.255.1"
        "?subject=project%20x&priority=urgent"
    )
    assert uri.scheme == "sips"
    assert uri.secure
    assert (uri.user, uri.password) == ("alice", "secret")
    assert (uri.host, uri.port) == ("atlanta.example.com", 5061)
    assert uri.params == (("transport", "tcp"), ("lr", None), ("maddr", "239.255.255.1"))
    assert uri.headers == (("subject", "project%20x"), ("priority", "urgent"))
    assert uri.transport == "tcp"
    assert uri.loose_route
    assert uri.hostport == "atlanta.example.com:5061"


def test_host_only() -> None:
    uri = sip("sip:pbx.example.com")
    assert (uri.user, uri.password, uri.host, uri.port) == (None, None, "pbx.example.com", None)
    assert uri.params == () and uri.headers == ()
    assert not uri.secure
    assert uri.transport is None
    assert not uri.loose_route
    assert uri.hostport == "pbx.example.com"


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.example.com",
        "sip:alice:@atlanta.example.com",
        "sip:alice:pw@atlanta.example.com;transport=TCP",
        "sips:1002@192.0.2.10:5061",
        "sip:+1-212-555-1212:1234@gateway.example.com;user=phone",
        "sip:[2001:db8::1]",
        "sip:alice@[2001:db8::1]:5060;transport=udp",
        "sip:[::ffff:192.0.2.1]:5070",
        "sip:host.example.com.",
        "sip:a;b=c@host",
        "sip:user;par=u%40example.net@example.com",
        "sip:%61lice@host;%6C%72",
        "sip:host;flag;name=value;other=[2001:db8::1]",
        "sip:host?a=b&c=&d=%3C%3E",
        "sip:host:0",
        "sip:host:65535",
        "sip:x-y.z--w.example",
    ],
)
def test_str_gives_back_the_text(text: str) -> None:
    uri = sip(text)
    assert str(uri) == text
    assert parse_sip_uri(str(uri)) == uri


def test_scheme_is_case_insensitive_and_written_lower() -> None:
    uri = sip("SIP:Alice@Atlanta.Example.COM")
    assert uri.scheme == "sip"
    assert uri.host == "Atlanta.Example.COM"  # kept as written
    assert uri.host_bare == "atlanta.example.com"
    assert str(uri) == "sip:Alice@Atlanta.Example.COM"
    assert sip("Sips:bob@b.example").secure


def test_ipv6_reference() -> None:
    uri = sip("sip:1001@[2001:DB8::9:1]:5070")
    assert uri.host == "[2001:DB8::9:1]"
    assert uri.host_bare == "2001:db8::9:1"
    assert uri.port == 5070
    assert uri.hostport == "[2001:DB8::9:1]:5070"


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:@host",
        "sip:alice@",
        "sip:alice@host:",
        "sip:alice@host:port",
        "sip:alice@host:65536",
        "sip:alice@host:123456",
        "sip:alice@host:-1",
        "sip:alice@host:+80",
        "sip:alice@host:5060:5061",
        "sip:alice@ho_st",
        "sip:alice@-host.example.com",
        "sip:alice@host-.example.com",
        "sip:alice@host..example.com",
        "sip:alice@256.0.0.1",
        "sip:alice@1.2.3",
        "sip:alice@1.2.3.4.5",
        "sip:alice@[2001:db8::1",
        "sip:alice@2001:db8::1",
        "sip:alice@[2001:db8::g]",
        "sip:alice@[]",
        "sip:alice@[2001:db8::1]x",
        "sip:alice@[2001:db8::1]:",
        "sip:alice@[fe80::1%eth0]",
        "sip:alice@[fe80::1%25eth0]",
        "sip:al ice@host",
        "sip:alice@ho st",
        "sip:al<ice@host",
        'sip:al"ice@host',
        "sip:al%4ice@host",
        "sip:al%ice@host",
        "sip:alice:p@ss@host",
        "sip:alice@host;",
        "sip:alice@host;=v",
        "sip:alice@host;n=",
        "sip:alice@host;n=v w",
        "sip:alice@host;n=<v>",
        "sip:alice@host?",
        "sip:alice@host?a",
        "sip:alice@host?=b",
        "sip:alice@host?a=b&",
        "sip:alice@host?a=b c",
        "sip:alice@host?a=<b>",
        "sip:alice@h\u00f6st.example.com",
        "sip:alice@192.0.2.\u0661",
        "sip:alice@host:\u0665\u0660\u0666\u0660",
        "sip:alice@host:\u00b2",
        "sip:\x00@host",
        "sips",
    ],
)
def test_malformed_sip_uris(text: str) -> None:
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 400
    assert info.value.reason


@pytest.mark.parametrize("text", ["tel:+12125551212", "sipx:alice@host", "sips", "sip", ""])
def test_parse_sip_uri_refuses_other_schemes(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_sip_uri(text)


def test_too_long_is_414() -> None:
    text = "sip:" + "a" * MAX_URI_LENGTH + "@host"
    with pytest.raises(SipParseError) as info:
        parse_uri(text)
    assert info.value.status == 414
    with pytest.raises(SipParseError) as info:
        parse_uri("tel:" + "1" * MAX_URI_LENGTH)
    assert info.value.status == 414


def test_parameters() -> None:
    uri = sip("sip:alice@host;Transport=TLS;lr;ttl=15;x=1;x=2")
    assert uri.param("transport") == "TLS"
    assert uri.transport == "tls"
    assert uri.param("LR") == ""
    assert uri.param("x") == "1"
    assert uri.param("missing") is None
    assert uri.has_param("TTL")
    assert not uri.has_param("maddr")
    changed = uri.with_param("transport", "udp")
    assert changed.params[-1] == ("transport", "udp")
    assert changed.transport == "udp"
    assert uri.transport == "tls"  # immutable
    assert not uri.without_param("lr").loose_route
    assert uri.without_param("x").param("x") is None
    assert str(sip("sip:host").with_param("lr")) == "sip:host;lr"


# §19.1.4: equivalent URIs, in our own examples.
@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "sip:%61lice@atlanta.example.com;transport=TCP",
            "sip:alice@AtLanTa.Example.COM;Transport=tcp",
        ),
        ("sip:carol@chicago.example.com", "sip:carol@chicago.example.com;newparam=5"),
        ("sip:carol@chicago.example.com;security=on", "sip:carol@chicago.example.com"),
        (
            "sip:biloxi.example.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.example.com",
            "sip:biloxi.example.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.example.com",
        ),
        (
            "sip:alice@atlanta.example.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.example.com?priority=urgent&subject=project%20x",
        ),
        ("SIP:alice@[2001:DB8::1]", "sip:alice@[2001:db8::1]"),
    ],
)
def test_equivalent_uris_have_equal_keys(a: str, b: str) -> None:
    assert sip(a).key() == sip(b).key()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.example.com", "sip:bob@biloxi.example.com:5060"),
        ("sip:bob@biloxi.example.com", "sip:bob@biloxi.example.com;transport=udp"),
        ("sip:bob@biloxi.example.com", "sips:bob@biloxi.example.com"),
        ("sip:bob@biloxi.example.com;user=phone", "sip:bob@biloxi.example.com;user=ip"),
        ("sip:bob@biloxi.example.com;maddr=192.0.2.1", "sip:bob@biloxi.example.com"),
        ("sip:carol@chicago.example.com", "sip:carol@chicago.example.com?Subject=next%20meeting"),
        ("sip:bob:pw@biloxi.example.com", "sip:bob:PW@biloxi.example.com"),
    ],
)
def test_different_uris_have_different_keys(a: str, b: str) -> None:
    assert sip(a).key() != sip(b).key()


@pytest.mark.parametrize(
    ("text", "scheme"),
    [
        ("tel:+1-212-555-0101", "tel"),
        ("urn:service:sos", "urn"),
        ("mailto:front.desk@example.com", "mailto"),
        ("http://www.example.com/photo.jpg", "http"),
        ("soap.beep://192.0.2.103:3002", "soap.beep"),
        ("nobodyKnowsThisScheme:totallyopaquecontent", "nobodyknowsthisscheme"),
        ("X-Custom+1.2-scheme:x", "x-custom+1.2-scheme"),
    ],
)
def test_other_schemes_are_absolute_uris(text: str, scheme: str) -> None:
    uri = parse_uri(text)
    assert isinstance(uri, AbsoluteUri)
    assert uri.scheme == scheme
    assert str(uri) == text
    assert not uri.secure
    assert uri.key() == (scheme, text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice",
        ":alice",
        "1tel:x",
        "tel:",
        "tel:a b",
        "<sip:alice@host>",
        "tel:<1>",
        'tel:"1"',
        "-x:y",
    ],
)
def test_malformed_absolute_uris(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_uri(text)


def test_uri_objects_are_values() -> None:
    a = sip("sip:alice@host;lr")
    b = sip("sip:alice@host;lr")
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    with pytest.raises(AttributeError):
        a.host = "other"  # type: ignore[misc]
