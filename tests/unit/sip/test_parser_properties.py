"""Properties of the SIP parser (hypothesis).

Total: any bytes give a Request, a Response or a SipParseError, never another
exception, whether the bytes are random, SIP-shaped, or a valid message cut,
flipped, stuffed with CR/LF/NUL/quotes/angle brackets or huge values. Faithful:
``parse(bytes(m))`` keeps every header (names as written, order, values) and the
body, for generated well-formed messages exactly as they were written.
"""

from __future__ import annotations

import contextlib
import ipaddress
import string
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.sip.errors import SipParseError
from pbx.sip.headers import (
    Headers,
    header_key,
    parse_cseq,
    parse_expires,
    parse_name_addr,
    parse_params,
    parse_token_list,
    parse_via,
    split_comma_list,
)
from pbx.sip.message import (
    MAX_MESSAGE_SIZE,
    Message,
    Request,
    Response,
    make_response,
    make_response_from_fields,
    parse_message,
)
from pbx.sip.uri import SipUri, parse_sip_uri, parse_uri
from tests.unit.sip.sipdata import fixture_bytes, fixture_names

TOTAL = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# ---------------------------------------------------------------------------
# What every outcome must satisfy


def check_outcome(data: bytes, stream: bool) -> Message | None:
    """Parse ``data``; check the invariants of whichever outcome it gives."""
    try:
        message = parse_message(data, stream=stream)
    except SipParseError as exc:
        check_error(exc)
        return None
    check_message(message)
    return message


def check_error(exc: SipParseError) -> None:
    assert exc.status in (400, 414, 505, 513)
    assert isinstance(exc.reason, str) and exc.reason
    assert all(isinstance(n, str) and isinstance(v, str) for n, v in exc.headers)
    if exc.method is None:
        assert exc.headers == ()
    # Whatever the edge builds from the fields parses back, and no field smuggles a line.
    response = make_response_from_fields(exc.headers, exc.status, exc.reason)
    if response is not None:
        data = bytes(response)
        head = data[: data.index(b"\r\n\r\n")]
        assert b"\n" not in head.replace(b"\r\n", b"")
        assert b"\r" not in head.replace(b"\r\n", b"")


VIEWS: list[Callable[[Message], object]] = [
    lambda m: m.vias,
    lambda m: m.top_via,
    lambda m: m.from_,
    lambda m: m.to,
    lambda m: m.call_id,
    lambda m: m.cseq,
    lambda m: m.contacts,
    lambda m: m.contact_star,
    lambda m: m.routes,
    lambda m: m.record_routes,
    lambda m: m.content_type,
    lambda m: m.option_tags("require"),
    lambda m: m.headers.values("via"),
    lambda m: m.headers.values("contact"),
    lambda m: m.max_forwards if isinstance(m, Request) else None,
]


def check_message(message: Message) -> None:
    for view in VIEWS:
        with contextlib.suppress(SipParseError):
            view(message)
    # parse(bytes(m)) keeps every header and the body (Content-Length is rewritten).
    again = parse_message(bytes(message), stream=True)
    assert type(again) is type(message)
    assert drop_length(again) == drop_length(message)
    assert again.body == message.body
    if isinstance(message, Request):
        assert isinstance(again, Request)
        assert again.method == message.method
        assert str(again.uri) == str(message.uri)
        # A response built to any request we accepted parses too (§8.2.6).
        for status in (100, 200, 404):
            response = make_response(message, status, to_tag="t1")
            parsed = parse_message(bytes(response), stream=True)
            assert isinstance(parsed, Response)
            assert parsed.call_id == message.call_id
            assert [v.branch for v in parsed.vias] == [v.branch for v in message.vias]
    else:
        assert isinstance(again, Response)
        assert (again.status, again.reason) == (message.status, message.reason)


def drop_length(message: Message) -> list[tuple[str, str]]:
    return [(n, v) for n, v in message.headers if header_key(n) != "content-length"]


# ---------------------------------------------------------------------------
# Total: random and mutated input


@TOTAL
@given(st.binary(max_size=3000), st.booleans())
def test_random_bytes(data: bytes, stream: bool) -> None:
    check_outcome(data, stream)


SIP_PIECES = [
    b"INVITE ",
    b"OPTIONS ",
    b"SIP/2.0 ",
    b"SIP/2.0",
    b"sip:",
    b"sips:",
    b"tel:",
    b"a@b",
    b"[2001:db8::1]",
    b"192.0.2.1",
    b":5060",
    b" 200 OK",
    b"\r\n",
    b"\r\n\r\n",
    b"\n",
    b"\r",
    b"\r\n ",
    b"\t",
    b" ",
    b":",
    b";",
    b",",
    b"=",
    b"<",
    b">",
    b'"',
    b"\\",
    b"%",
    b"?",
    b"&",
    b"\x00",
    b"\xff",
    b"\xc2\xb2",
    b"\xd9\xa1",
    b"Via: SIP/2.0/UDP ",
    b"v: ",
    b"From: ",
    b"To: ",
    b"f: ",
    b"t: ",
    b"Call-ID: ",
    b"CSeq: 1 INVITE",
    b"Content-Length: ",
    b"l: ",
    b"Contact: ",
    b"m: *",
    b"Max-Forwards: ",
    b";branch=z9hG4bK",
    b";tag=",
    b";rport",
    b";received=",
    b";lr",
    b"0",
    b"65536",
    b"2147483648",
]


@TOTAL
@given(
    st.lists(st.sampled_from(SIP_PIECES) | st.binary(max_size=6), max_size=80).map(b"".join),
    st.booleans(),
)
def test_sip_shaped_bytes(data: bytes, stream: bool) -> None:
    check_outcome(data, stream)


OPTIONS = (
    b"OPTIONS sip:1002@pbx.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.41:5060;branch=z9hG4bKopt1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Desk, 1001" <sip:1001@pbx.example.com>;tag=f1\r\n'
    b"To: <sip:1002@pbx.example.com>\r\n"
    b"Call-ID: opt-1@192.0.2.41\r\n"
    b"CSeq: 7 OPTIONS\r\n"
    b"Contact: <sip:1001@192.0.2.41>;expires=60, sip:x@[2001:db8::1]:5062;q=0.5\r\n"
    b"Route: <sip:edge.example.com;lr>\r\n"
    b"Content-Length: 4\r\n"
    b"\r\n"
    b"body"
)
SEEDS = [OPTIONS] + [fixture_bytes(name) for name in fixture_names()]
SPECIAL = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n ",
    b"\r\n\r\n",
    b"\x00",
    b'"',
    b"\\",
    b"<",
    b">",
    b"[",
    b"]",
    b":",
    b";",
    b",",
    b"=",
    b"@",
    b"?",
    b"%",
    b" ",
    b"\t",
    b"\xff",
    b"\xc2\xb2",
    b"\xd9\xa1",
    b"\xe2\x80\x83",
]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["cut", "flip", "insert", "huge", "delete", "copy"]))
        if op == "cut":
            del data[at:]
        elif op == "flip" and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.sampled_from(SPECIAL))
        elif op == "huge":
            piece = draw(st.sampled_from(SPECIAL + [b"a", b"1", b"a,", b";a=b", b"<sip:a@b>,"]))
            data[at:at] = piece * draw(st.integers(100, MAX_MESSAGE_SIZE // len(piece) + 10))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 20))]
        elif op == "copy" and data:
            start = draw(st.integers(0, len(data) - 1))
            data[at:at] = data[start : start + draw(st.integers(1, 200))]
    return bytes(data)


@settings(TOTAL, max_examples=1000)
@given(mutated(), st.booleans())
def test_mutated_valid_messages(data: bytes, stream: bool) -> None:
    check_outcome(data, stream)


@settings(TOTAL, max_examples=100)
@given(st.sampled_from(SEEDS), st.data())
def test_every_truncation_point_of_a_valid_message(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(seed)))
    check_outcome(seed[:cut], False)
    check_outcome(seed[:cut], True)


# ---------------------------------------------------------------------------
# Faithful: generated well-formed messages

ALNUM = string.ascii_letters + string.digits
TOKEN_CHARS = ALNUM + "-.!%*_+`'~"
tokens = st.text(TOKEN_CHARS, min_size=1, max_size=12)
# unreserved / escaped / user-unreserved
user_text = st.lists(
    st.sampled_from(list(ALNUM + "-_.!~*'()&=+$,;?/"))
    | st.integers(0, 255).map(lambda b: f"%{b:02X}"),
    min_size=1,
    max_size=12,
).map("".join)
password_text = st.lists(
    st.sampled_from(list(ALNUM + "-_.!~*'()&=+$,")) | st.just("%40"), max_size=8
).map("".join)
labels = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
toplabels = st.from_regex(r"[A-Za-z]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
hostnames = st.builds(
    lambda parts, top: ".".join([*parts, top]), st.lists(labels, max_size=3), toplabels
)
ipv4 = st.ip_addresses(v=4).map(str)
ipv6_refs = st.ip_addresses(v=6).map(lambda a: f"[{ipaddress.IPv6Address(a).compressed}]")
hosts = st.one_of(hostnames, ipv4, ipv6_refs)
param_chars = st.lists(
    st.sampled_from(list(ALNUM + "-_.!~*'()[]/:&+$")) | st.just("%3B"), min_size=1, max_size=8
).map("".join)
hnv_chars = st.lists(
    st.sampled_from(list(ALNUM + "-_.!~*'()[]/?:+$")) | st.just("%26"), max_size=8
).map("".join)


@st.composite
def sip_uri_texts(draw: st.DrawFn, *, with_headers: bool = True) -> str:
    text = draw(st.sampled_from(["sip:", "sips:"]))
    if draw(st.booleans()):
        text += draw(user_text)
        if draw(st.booleans()):
            text += ":" + draw(password_text)
        text += "@"
    text += draw(hosts)
    if draw(st.booleans()):
        text += f":{draw(st.integers(0, 65535))}"
    for name, value in draw(st.lists(st.tuples(param_chars, st.none() | param_chars), max_size=3)):
        text += f";{name}" if value is None else f";{name}={value}"
    if with_headers and draw(st.booleans()):
        pairs = draw(st.lists(st.tuples(hnv_chars.filter(bool), hnv_chars), min_size=1, max_size=3))
        text += "?" + "&".join(f"{n}={v}" for n, v in pairs)
    return text


@settings(TOTAL, max_examples=500)
@given(sip_uri_texts())
def test_generated_sip_uris_round_trip(text: str) -> None:
    uri = parse_sip_uri(text)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri
    assert uri.key() == parse_sip_uri(str(uri)).key()


@TOTAL
@given(
    st.text(max_size=60)
    | st.builds(
        lambda a, b: a + b, st.sampled_from(["sip:", "sips:", "tel:", "x:"]), st.text(max_size=60)
    )
)
def test_parse_uri_is_total(text: str) -> None:
    with contextlib.suppress(SipParseError):
        parse_uri(text)


# Header values we generate: visible ASCII and UTF-8 letters with inner single spaces.
value_words = st.text(
    st.characters(
        codec="utf-8",
        exclude_characters="\r\n\x00 \t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0",
        exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"],
    ),
    min_size=1,
    max_size=10,
)
header_values = st.lists(value_words, max_size=5).map(" ".join)
display_names = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=12)


@st.composite
def name_addrs(draw: st.DrawFn, *, tag: bool) -> str:
    uri = draw(sip_uri_texts(with_headers=False))
    if draw(st.booleans()) or any(c in uri for c in ";?,"):
        display = draw(display_names)
        quoted = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
        text = f"{quoted} <{uri}>" if display else f"<{uri}>"
    else:
        text = uri
    if tag:
        text += f";tag={draw(tokens)}"
    return text


AFTER_COLON = [" ", "", "  ", "\t"]
WSP = (" ", "\t")


@st.composite
def messages(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]], bytes, bool]:
    """A well-formed message: its bytes, the header fields it must parse to, its body."""
    is_request = draw(st.booleans())
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "REGISTER", "BYE", "X-Odd.M~"]))

    def name(long: str, compact: str) -> str:
        return draw(st.sampled_from([long, compact, long.upper()]))

    via_params = f";branch=z9hG4bK{draw(tokens)}" + draw(
        st.sampled_from(["", ";rport", ";rport=5"])
    )
    fields = [
        (
            name("Via", "v"),
            f"SIP/2.0/{draw(st.sampled_from(['UDP', 'TCP', 'TLS', 'WS']))} "
            f"{draw(hosts)}{draw(st.sampled_from(['', ':5060']))}{via_params}",
        ),
        (name("From", "f"), draw(name_addrs(tag=True))),
        (name("To", "t"), draw(name_addrs(tag=not is_request))),
        (name("Call-ID", "i"), draw(tokens) + draw(st.sampled_from(["", "@host"]))),
        ("CSeq", f"{draw(st.integers(0, 2**31 - 1))} {method}"),
    ]
    if is_request:
        fields.append(("Max-Forwards", str(draw(st.integers(0, 255)))))
    extra = draw(st.lists(st.tuples(tokens.map(lambda t: "X-" + t), header_values), max_size=6))
    fields += extra
    if draw(st.booleans()):
        fields.append((name("Contact", "m"), draw(name_addrs(tag=False))))
    order = draw(st.permutations(range(len(fields))))
    fields = [fields[i] for i in order]
    body = draw(st.binary(max_size=200))
    with_length = draw(st.booleans()) or bool(body)
    if with_length:
        fields.append((name("Content-Length", "l"), str(len(body))))
    if is_request:
        start = f"{method} {draw(sip_uri_texts(with_headers=False))} SIP/2.0"
    else:
        start = f"SIP/2.0 {draw(st.integers(100, 699))} {draw(header_values)}"
    lines = [start]
    for field_name, value in fields:
        space = draw(st.sampled_from(AFTER_COLON))
        # §7.3.1 folding: a SP of the value (one not followed by more LWS, which
        # unfolding would swallow) may become CRLF SP.
        folds = [i for i, ch in enumerate(value) if ch == " " and value[i + 1 : i + 2] not in WSP]
        fold: bool = draw(st.booleans())
        if folds and fold:
            at = draw(st.sampled_from(folds))
            value = value[:at] + "\r\n " + value[at + 1 :]
        lines.append(f"{field_name}:{space}{value}")
    data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    return data, fields, body, with_length


@settings(TOTAL, max_examples=500)
@given(messages())
def test_generated_messages_parse_to_what_was_written(
    generated: tuple[bytes, list[tuple[str, str]], bytes, bool],
) -> None:
    data, fields, body, with_length = generated
    message = parse_message(data, stream=with_length)
    assert list(message.headers) == fields
    assert message.body == body
    check_message(message)
    if with_length:
        assert bytes(parse_message(bytes(message), stream=True)) == bytes(message)


# ---------------------------------------------------------------------------
# Pieces


@st.composite
def comma_lists(draw: st.DrawFn) -> list[str]:
    return draw(st.lists(name_addrs(tag=draw(st.booleans())), min_size=1, max_size=5))


@TOTAL
@given(comma_lists(), st.sampled_from([",", ", ", " ,", " , "]))
def test_split_comma_list_respects_quotes_and_brackets(parts: list[str], sep: str) -> None:
    assert split_comma_list(sep.join(parts)) == parts


@TOTAL
@given(st.text(max_size=80))
def test_header_pieces_are_total(text: str) -> None:
    for parse in (
        parse_via,
        parse_name_addr,
        lambda t: parse_params(t, "Test"),
        parse_cseq,
        parse_expires,
        split_comma_list,
        lambda t: parse_token_list([t]),
    ):
        with contextlib.suppress(SipParseError):
            parse(text)


NAMES = ["Via", "v", "VIA", "From", "f", "X-A", "x-a", "Call-ID", "i"]


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, str, str, bool]]:
    return draw(
        st.lists(
            st.tuples(
                st.sampled_from(["add", "set", "without", "without_first"]),
                st.sampled_from(NAMES),
                st.text(string.ascii_letters, max_size=3),
                st.booleans(),
            ),
            max_size=12,
        )
    )


@TOTAL
@given(
    st.lists(st.tuples(st.sampled_from(NAMES), st.text(string.ascii_letters, max_size=3))),
    operations(),
)
def test_headers_operations_match_a_list_model(
    start: list[tuple[str, str]], ops: list[tuple[str, str, str, bool]]
) -> None:
    headers = Headers(start)
    model = list(start)
    for op, name, value, first in ops:
        key = header_key(name)
        at = [i for i, (n, _) in enumerate(model) if header_key(n) == key]
        if op == "add":
            headers = headers.with_added(name, value, first=first)
            model.insert(at[0] if first and at else 0 if first else len(model), (name, value))
        elif op == "set":
            headers = headers.with_set(name, value)
            if at:
                model[at[0]] = (model[at[0]][0], value)
                model = [f for i, f in enumerate(model) if i not in at[1:]]
            else:
                model.append((name, value))
        elif op == "without":
            headers = headers.without(name)
            model = [f for f in model if header_key(f[0]) != key]
        else:
            headers = headers.without_first(name)
            if at:
                del model[at[0]]
        assert list(headers) == model
        for probe in NAMES:
            expected = [v for n, v in model if header_key(n) == header_key(probe)]
            assert headers.get_all(probe) == expected
            assert headers.get(probe) == (expected[0] if expected else None)
            assert headers.count(probe) == len(expected)
            assert (probe in headers) == bool(expected)
    assert isinstance(parse_uri("sip:a@b"), SipUri)
