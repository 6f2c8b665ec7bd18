"""The Digest header grammar: what phones send, what is refused (400), and totality."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.sip.auth import DigestAuthenticator, DigestOutcome
from pbx.sip.digest_grammar import (
    MAX_AUTH_HEADER_LENGTH,
    MAX_AUTH_PARAMS,
    DigestAlgorithm,
    DigestChallenge,
    DigestCredentials,
    parse_challenge,
    parse_credentials,
)
from pbx.sip.errors import SipParseError

SECRET = bytes(range(32))
REALM = "switchboard"
T0 = 1_700_000_000.0

# --- the dataclasses refuse what cannot be sent -------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"realm": "a\r\nb"},
        {"nonce": ""},
        {"opaque": "x\x00"},
        {"qop": ("auth-int",)},
        {"qop": ("AUTH",)},
        {"qop": ("a b",)},
    ],
)
def test_challenge_refuses_bad_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"realm": REALM, "nonce": "n"}
    fields.update(kwargs)
    with pytest.raises(ValueError):
        DigestChallenge(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"username": ""},
        {"uri": "a\nb"},
        {"response": "C" * 32},
        {"response": "c" * 64},
        {"qop": "auth-int", "cnonce": "c", "nc": "00000001"},
        {"qop": "auth"},
        {"nc": "00000001"},
        {"qop": "auth", "cnonce": "c", "nc": "1"},
        {"algorithm": DigestAlgorithm.MD5_SESS},
    ],
)
def test_credentials_refuse_bad_fields(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "username": "u",
        "realm": "r",
        "nonce": "n",
        "uri": "sip:x",
        "response": "c" * 32,
    }
    fields.update(kwargs)
    with pytest.raises(ValueError):
        DigestCredentials(**fields)  # type: ignore[arg-type]


# --- parsing: tolerance --------------------------------------------------------------------------


def test_parser_tolerates_what_phones_send() -> None:
    response = "a" * 64
    header = (
        '  digest\tUSERNAME = "2\\"0\\\\1" ,Realm=switchboard,  nonce ="n",,'
        f' uri="sip:pbx.lan" , response="{response.upper()}", Algorithm = "sha-256",'
        ' cnonce="x y", QOP="Auth", NC="0000000A", opaque="", x-vendor=1, x-vendor="2",'
    )
    credentials = parse_credentials(header)
    assert credentials == DigestCredentials(
        username='2"0\\1',
        realm="switchboard",
        nonce="n",
        uri="sip:pbx.lan",
        response=response,
        algorithm=DigestAlgorithm.SHA_256,
        cnonce="x y",
        qop="auth",
        nc="0000000A",
        opaque="",
    )
    assert credentials.nonce_count == 10
    # Formatting escapes again and parses back to the same value.
    assert parse_credentials(credentials.to_header_value()) == credentials


def test_parser_drops_nc_without_qop_and_keeps_unicode() -> None:
    header = (
        'Digest username="Zoë", realm="r", nonce="n", uri="sip:x", '
        f'response="{"0" * 32}", nc=00000001'
    )
    credentials = parse_credentials(header)
    assert credentials.username == "Zoë"
    assert credentials.nc is None and credentials.qop is None


@pytest.mark.parametrize(
    ("algorithm_text", "algorithm"),
    [
        ("MD5", DigestAlgorithm.MD5),
        ("md5-SESS", DigestAlgorithm.MD5_SESS),
        ("SHA-256", DigestAlgorithm.SHA_256),
        ('"SHA-256-sess"', DigestAlgorithm.SHA_256_SESS),
    ],
)
def test_parser_reads_algorithms(algorithm_text: str, algorithm: DigestAlgorithm) -> None:
    header = (
        f'Digest username="u", realm="r", nonce="n", uri="sip:x", cnonce="c", '
        f'response="{"b" * algorithm.hex_length}", algorithm={algorithm_text}'
    )
    assert parse_credentials(header).algorithm is algorithm


# --- parsing: refusals ---------------------------------------------------------------------------

GOOD_FIELDS = {
    "username": '"201"',
    "realm": '"switchboard"',
    "nonce": '"abc"',
    "uri": '"sip:pbx.lan"',
    "response": '"' + "c" * 32 + '"',
    "cnonce": '"xyz"',
    "qop": "auth",
    "nc": "00000001",
}


def header_with(**changes: str | None) -> str:
    fields = dict(GOOD_FIELDS)
    for name, value in changes.items():
        if value is None:
            del fields[name]
        else:
            fields[name] = value
    return "Digest " + ", ".join(f"{name}={value}" for name, value in fields.items())


def test_good_fields_parse() -> None:
    assert parse_credentials(header_with()).username == "201"


@pytest.mark.parametrize(
    ("header", "reason_part"),
    [
        (header_with(username=None), "missing username"),
        (header_with(realm=None), "missing realm"),
        (header_with(nonce=None), "missing nonce"),
        (header_with(uri=None), "missing uri"),
        (header_with(response=None), "missing response"),
        (header_with(nc=None), "without nc and cnonce"),
        (header_with(cnonce=None), "without nc and cnonce"),
        (header_with(nc="1"), "nc"),
        (header_with(nc="0000000g"), "nc"),
        (header_with(response='"' + "c" * 31 + '"'), "response"),
        (header_with(response='"' + "z" * 32 + '"'), "response"),
        (header_with(algorithm="SHA-512-256"), "unsupported algorithm"),
        (header_with(algorithm="SHA-256"), "response"),  # an MD5-length response
        (header_with(qop="auth-int"), "unsupported qop"),
        (header_with(algorithm="MD5-sess", qop=None, nc=None, cnonce=None), "cnonce"),
        (header_with(username='""'), "empty"),
        (header_with(uri='""'), "empty"),
        (header_with(userhash="true"), "userhash"),
        (header_with() + ', nonce="again"', "repeated nonce"),
        ('Digest realm="r", username="unterminated', "unterminated"),
        ('Digest realm="r", username="ends in backslash\\', "unterminated"),
        (header_with(username='"a"b'), "expected ','"),
        (header_with(nc=""), "empty parameter value"),
        (header_with(username='"a\r\nVia: x"'), "control character"),
        (header_with(username='"a\\\x00"'), "control character"),
        (header_with().replace("Digest", "Basic", 1), "not Digest"),
        (header_with().replace("Digest ", "Digest,", 1), "not Digest"),
        ("", "not Digest"),
        ("Digest", "no parameters"),
        ("Digest  , ,", "no parameters"),
        ("Digest username", "expected '='"),
        ("Digest =x", "parameter name"),
        (header_with() + ", " + "x=1, " * MAX_AUTH_PARAMS, "too many parameters"),
        (header_with(username='"' + "u" * MAX_AUTH_HEADER_LENGTH + '"'), "too long"),
        ('Digest username="\ud800"', "control character"),
    ],
)
def test_malformed_credentials_are_400(header: str, reason_part: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_credentials(header)
    assert caught.value.status == 400
    assert reason_part in caught.value.reason
    assert caught.value.reason.startswith("Bad digest credentials: ")
    assert "\r" not in caught.value.reason and "\n" not in caught.value.reason


@pytest.mark.parametrize(
    ("header", "reason_part"),
    [
        ('Digest nonce="n"', "missing realm"),
        ('Digest realm="r"', "missing nonce"),
        ('Digest realm="r", nonce=""', "empty nonce"),
        ('Digest realm="r", nonce="n", algorithm=SHA-512-256', "unsupported algorithm"),
        ('Digest realm="r", nonce="n", qop="auth-int"', "no supported qop"),
        ('Digest realm="r", nonce="n", qop="auth, a/b"', "malformed qop"),
        ('Basic realm="r"', "not Digest"),
    ],
)
def test_malformed_challenges_are_refused(header: str, reason_part: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_challenge(header)
    assert reason_part in caught.value.reason


# --- properties ----------------------------------------------------------------------------------

FRAGMENTS = [
    "Digest ",
    "digest\t",
    "Basic ",
    "username=",
    "realm=",
    "nonce=",
    "uri=",
    "response=",
    "algorithm=",
    "cnonce=",
    "qop=",
    "nc=",
    "opaque=",
    "userhash=",
    "stale=",
    '"',
    "\\",
    ",",
    " ",
    "=",
    "\t",
    "\r\n",
    "\x00",
    "\ud800",
    "é",
    "auth",
    "auth-int",
    "MD5",
    "SHA-256-sess",
    "00000001",
    '"' + "a" * 32 + '"',
    '"' + "b" * 64 + '"',
    '"sip:pbx.lan"',
    '"201"',
    '"r"',
    "true",
]


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Parameter lists close to real ones: known names in any case, mostly good values, some bad.
param_value = st.one_of(
    st.sampled_from(list(GOOD_FIELDS.values()) + ["auth", "MD5", "sha-256", '"auth"', "true"]),
    st.text(max_size=12).map(_quoted),
    st.from_regex(r"[A-Za-z0-9:@.;=/-]{0,12}", fullmatch=True),
)
param_name = st.sampled_from(
    sorted({*GOOD_FIELDS, "algorithm", "opaque", "userhash", "stale", "domain", "x-y"})
).flatmap(lambda name: st.sampled_from([name, name.upper(), name.title()]))
separator = st.sampled_from([", ", ",", " , ", ",, ", "\t,"])
digest_header = st.builds(
    lambda scheme, params, seps: (
        scheme
        + "".join(
            f"{name}{eq}{value}{sep}"
            for (name, eq, value), sep in zip(params, seps + [""] * len(params), strict=False)
        )
    ),
    st.sampled_from(["Digest ", "digest\t", "DIGEST  ", " Digest ", "Basic "]),
    st.lists(st.tuples(param_name, st.sampled_from(["=", " = ", "= "]), param_value), max_size=12),
    st.lists(separator, max_size=12),
)
good_header_variant = st.builds(
    lambda drop, extra: header_with(**dict.fromkeys(drop)) + extra,
    st.sets(st.sampled_from(sorted(GOOD_FIELDS)), max_size=2),
    st.sampled_from(["", ", algorithm=MD5", ', opaque="o"', ", algorithm=MD5-sess", ","]),
)
header_like = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),
    digest_header,
    good_header_variant,
)


@settings(max_examples=500)
@given(header_like)
def test_parse_credentials_is_total(header: str) -> None:
    try:
        credentials = parse_credentials(header)
    except SipParseError as error:
        assert error.status == 400
        return
    assert parse_credentials(credentials.to_header_value()) == credentials
    outcome = DigestAuthenticator(realm=REALM, secret=SECRET).verify(
        credentials, ha1=None, method="REGISTER", request_uri=credentials.uri, now=T0
    )
    assert outcome in (DigestOutcome.FAILED, DigestOutcome.WRONG_REALM)


@settings(max_examples=500)
@given(header_like)
def test_parse_challenge_is_total(header: str) -> None:
    try:
        challenge = parse_challenge(header)
    except SipParseError:
        return
    assert parse_challenge(challenge.to_header_value()) == challenge
