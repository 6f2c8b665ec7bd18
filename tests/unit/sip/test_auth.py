"""Digest authentication: RFC worked examples, a desk phone's REGISTER, and the server's rules."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.sip import auth, digest_grammar
from pbx.sip.auth import (
    NONCE_SALT_LENGTH,
    DigestAlgorithm,
    DigestAuthenticator,
    DigestChallenge,
    DigestCredentials,
    DigestOutcome,
    NonceCountTracker,
    compute_ha1,
    compute_response,
    parse_credentials,
)
from pbx.sip.auth_client import answer_challenge
from pbx.sip.digest_grammar import parse_challenge

SECRET = bytes(range(32))
REALM = "switchboard"
T0 = 1_700_000_000.0  # the fake clock starts here; tests move it by hand
SALT = bytes(range(100, 100 + NONCE_SALT_LENGTH))
REGISTER_URI = "sip:192.168.1.10"

ALL_ALGORITHMS = list(DigestAlgorithm)


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_authenticator(**kwargs: object) -> DigestAuthenticator:
    options: dict[str, object] = {"realm": REALM, "secret": SECRET}
    options.update(kwargs)
    return DigestAuthenticator(**options)  # type: ignore[arg-type]


def challenge_for(
    authenticator: DigestAuthenticator,
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5,
    now: float = T0,
) -> DigestChallenge:
    (challenge,) = (
        c for c in authenticator.challenges(now=now, salt=SALT) if c.algorithm is algorithm.base
    )
    if algorithm.is_session:  # we never offer -sess, but a client may pick it
        return DigestChallenge(
            realm=challenge.realm,
            nonce=challenge.nonce,
            algorithm=algorithm,
            qop=challenge.qop,
            opaque=challenge.opaque,
        )
    return challenge


def answer(
    challenge: DigestChallenge,
    *,
    password: str = "s3cret-Passw0rd-xyz",
    username: str = "201",
    nc: int = 1,
    uri: str = REGISTER_URI,
) -> DigestCredentials:
    return answer_challenge(
        challenge,
        username=username,
        password=password,
        method="REGISTER",
        uri=uri,
        cnonce="0a4f113b",
        nc=nc,
    )


def stored_ha1(algorithm: DigestAlgorithm, password: str = "s3cret-Passw0rd-xyz") -> str:
    return compute_ha1(username="201", realm=REALM, password=password, algorithm=algorithm)


STORED = "use the stored HA1"


def verify(
    authenticator: DigestAuthenticator,
    credentials: DigestCredentials,
    *,
    now: float = T0,
    ha1: str | None = STORED,
    request_uri: str = REGISTER_URI,
) -> DigestOutcome:
    key = stored_ha1(credentials.algorithm.base) if ha1 == STORED else ha1
    return authenticator.verify(
        credentials, ha1=key, method="REGISTER", request_uri=request_uri, now=now
    )


# --- RFC worked examples -------------------------------------------------------------------------

RFC2617_AUTHORIZATION = (
    'Digest username="Mufasa", realm="testrealm@host.com", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
    'nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_SHA256_AUTHORIZATION = (
    'Digest username="Mufasa", realm="http-auth@example.org", uri="/dir/index.html", '
    f'algorithm=SHA-256, nonce="{RFC7616_NONCE}", nc=00000001, cnonce="{RFC7616_CNONCE}", '
    'qop=auth, response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
    f'opaque="{RFC7616_OPAQUE}"'
)


def test_rfc2617_section_3_5_response() -> None:
    ha1 = compute_ha1(
        username="Mufasa",
        realm="testrealm@host.com",
        password="Circle Of Life",
        algorithm=DigestAlgorithm.MD5,
    )
    assert ha1 == md5("Mufasa:testrealm@host.com:Circle Of Life")
    response = compute_response(
        algorithm=DigestAlgorithm.MD5,
        ha1=ha1,
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce="0a4f113b",
    )
    assert response == "6629fae49393a05397450978507c4ef1"


def test_rfc2617_section_3_5_header_parses() -> None:
    credentials = parse_credentials(RFC2617_AUTHORIZATION)
    assert credentials == DigestCredentials(
        username="Mufasa",
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        uri="/dir/index.html",
        response="6629fae49393a05397450978507c4ef1",
        algorithm=DigestAlgorithm.MD5,
        cnonce="0a4f113b",
        qop="auth",
        nc="00000001",
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )
    assert credentials.nonce_count == 1


def test_rfc2617_example_verifies_as_stale_because_the_nonce_is_not_ours() -> None:
    # The response is right for the RFC's nonce, which our secret did not make: stale, not failed.
    authenticator = DigestAuthenticator(realm="testrealm@host.com", secret=SECRET)
    credentials = parse_credentials(RFC2617_AUTHORIZATION)
    ha1 = md5("Mufasa:testrealm@host.com:Circle Of Life")
    wrong = md5("Mufasa:testrealm@host.com:circle of life")
    for password_ha1, outcome in ((ha1, DigestOutcome.STALE), (wrong, DigestOutcome.FAILED)):
        result = authenticator.verify(
            credentials, ha1=password_ha1, method="GET", request_uri="/dir/index.html", now=T0
        )
        assert result is outcome


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        (
            DigestAlgorithm.SHA_256,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
        (DigestAlgorithm.MD5, "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_section_3_9_1_responses(algorithm: DigestAlgorithm, expected: str) -> None:
    ha1 = compute_ha1(
        username="Mufasa",
        realm="http-auth@example.org",
        password="Circle of Life",
        algorithm=algorithm,
    )
    response = compute_response(
        algorithm=algorithm,
        ha1=ha1,
        nonce=RFC7616_NONCE,
        method="GET",
        uri="/dir/index.html",
        qop="auth",
        nc="00000001",
        cnonce=RFC7616_CNONCE,
    )
    assert response == expected


def test_rfc7616_section_3_9_1_headers_parse() -> None:
    credentials = parse_credentials(RFC7616_SHA256_AUTHORIZATION)
    assert credentials.algorithm is DigestAlgorithm.SHA_256
    assert credentials.response == (
        "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
    )
    assert credentials.cnonce == RFC7616_CNONCE
    assert credentials.opaque == RFC7616_OPAQUE
    challenge = parse_challenge(
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    assert challenge == DigestChallenge(
        realm="http-auth@example.org",
        nonce=RFC7616_NONCE,
        algorithm=DigestAlgorithm.SHA_256,
        qop=("auth", "auth-int"),
        opaque=RFC7616_OPAQUE,
    )
    # Answering the parsed challenge gives the RFC's response.
    ours = answer_challenge(
        challenge,
        username="Mufasa",
        password="Circle of Life",
        method="GET",
        uri="/dir/index.html",
        cnonce=RFC7616_CNONCE,
    )
    assert ours == credentials


# --- a desk phone's REGISTER ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "hash_text", "algorithm_param"),
    [
        (DigestAlgorithm.MD5, md5, "algorithm=MD5"),
        (DigestAlgorithm.SHA_256, sha256, 'algorithm="SHA-256"'),  # some phones quote it
    ],
)
def test_desk_phone_register(
    algorithm: DigestAlgorithm, hash_text: Callable[[str], str], algorithm_param: str
) -> None:
    authenticator = make_authenticator()
    values = authenticator.challenge_values(now=T0, salt=SALT)
    (value,) = (v for v in values if f"algorithm={algorithm.value}," in v)
    challenge = parse_challenge(value)
    # What a Yealink-style phone computes, written out with hashlib.
    password = "Xk9#mQ2v!Lp7$wRt"
    ha1 = hash_text(f"201:{REALM}:{password}")
    ha2 = hash_text(f"REGISTER:{REGISTER_URI}")
    response = hash_text(f"{ha1}:{challenge.nonce}:00000001:4c8a6b5e:auth:{ha2}")
    header = (
        f'Digest username="201",realm="{REALM}",nonce="{challenge.nonce}",'
        f'uri="{REGISTER_URI}",response="{response}",{algorithm_param},'
        f'cnonce="4c8a6b5e",qop="auth",nc=00000001,opaque="{challenge.opaque}"'
    )
    credentials = parse_credentials(header)
    stored = compute_ha1(username="201", realm=REALM, password=password, algorithm=algorithm)
    assert stored == ha1
    outcome = authenticator.verify(
        credentials, ha1=stored, method="REGISTER", request_uri=REGISTER_URI, now=T0 + 1
    )
    assert outcome is DigestOutcome.OK
    # The phone's refresh a minute later reuses the nonce with nc=2.
    response2 = hash_text(f"{ha1}:{challenge.nonce}:00000002:4c8a6b5e:auth:{ha2}")
    header2 = header.replace(response, response2).replace("nc=00000001", "nc=00000002")
    outcome = authenticator.verify(
        parse_credentials(header2),
        ha1=stored,
        method="REGISTER",
        request_uri=REGISTER_URI,
        now=T0 + 61,
    )
    assert outcome is DigestOutcome.OK


def test_old_phone_rfc2069_answer_without_qop() -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator)
    ha1 = stored_ha1(DigestAlgorithm.MD5)
    response = md5(f"{ha1}:{challenge.nonce}:{md5('REGISTER:' + REGISTER_URI)}")
    header = (
        f'Digest username="201", realm="{REALM}", nonce="{challenge.nonce}", '
        f'uri="{REGISTER_URI}", response="{response}"'
    )
    credentials = parse_credentials(header)
    assert credentials.qop is None and credentials.nonce_count is None
    assert verify(authenticator, credentials) is DigestOutcome.OK
    # Without nc a nonce cannot be counted, so it is good once; reuse asks for a fresh one.
    assert verify(authenticator, credentials, now=T0 + 10) is DigestOutcome.STALE


# --- challenges ----------------------------------------------------------------------------------


def test_challenge_values_offer_sha256_first_then_md5_with_one_nonce() -> None:
    authenticator = make_authenticator()
    values = authenticator.challenge_values(now=T0, salt=SALT)
    assert len(values) == 2
    sha, md = (parse_challenge(v) for v in values)
    assert sha.algorithm is DigestAlgorithm.SHA_256
    assert md.algorithm is DigestAlgorithm.MD5
    assert sha.nonce == md.nonce and sha.opaque == md.opaque
    assert values[0] == (
        f'Digest realm="{REALM}", nonce="{sha.nonce}", opaque="{sha.opaque}", '
        'algorithm=SHA-256, qop="auth"'
    )
    assert not sha.stale
    stale_values = authenticator.challenge_values(now=T0, salt=SALT, stale=True)
    assert all(v.endswith(", stale=true") for v in stale_values)
    assert all(parse_challenge(v).stale for v in stale_values)


@pytest.mark.parametrize("stale", [False, True])
def test_challenge_text_from_templates_is_that_of_the_challenges(stale: bool) -> None:
    for authenticator in (
        make_authenticator(),
        DigestAuthenticator(realm='N "q"', secret=SECRET, algorithms=[DigestAlgorithm.MD5]),
    ):
        built = authenticator.challenges(now=T0, salt=SALT, stale=stale)
        values = authenticator.challenge_values(now=T0, salt=SALT, stale=stale)
        assert values == [c.to_header_value() for c in built]


def test_nonces_differ_by_salt_and_time_and_carry_their_issue_time() -> None:
    authenticator = make_authenticator()
    a = authenticator.make_nonce(now=T0, salt=SALT)
    b = authenticator.make_nonce(now=T0, salt=bytes(NONCE_SALT_LENGTH))
    c = authenticator.make_nonce(now=T0 + 1, salt=SALT)
    assert len({a, b, c}) == 3
    assert authenticator.nonce_issued_at(a) == T0
    assert authenticator.nonce_issued_at(c) == T0 + 1
    assert authenticator.nonce_issued_at(authenticator.make_nonce(now=T0 + 0.25, salt=SALT)) == (
        T0 + 0.25
    )
    assert all(ch.isalnum() or ch in "-_" for ch in a)  # safe inside any phone's quoted-string


def test_md5_only_offer_and_challenge_formatting_escapes() -> None:
    authenticator = DigestAuthenticator(
        realm='office "main"\\1', secret=SECRET, algorithms=[DigestAlgorithm.MD5]
    )
    (value,) = authenticator.challenge_values(now=T0, salt=SALT)
    assert value.startswith('Digest realm="office \\"main\\"\\\\1", ')
    assert parse_challenge(value).realm == 'office "main"\\1'


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": b"short"},
        {"algorithms": []},
        {"algorithms": [DigestAlgorithm.MD5, DigestAlgorithm.MD5]},
        {"nonce_lifetime": 0},
        {"max_tracked_nonces": 0},
        {"realm": "a\r\nVia: x"},
    ],
)
def test_authenticator_refuses_bad_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_authenticator(**kwargs)


@pytest.mark.parametrize(
    ("now", "salt"),
    [
        (T0, b"short"),
        (-1.0, SALT),
        (float("nan"), SALT),
        (float("inf"), SALT),
        (2.0**64, SALT),
    ],
)
def test_make_nonce_refuses_bad_arguments(now: float, salt: bytes) -> None:
    with pytest.raises(ValueError):
        make_authenticator().make_nonce(now=now, salt=salt)


# --- verification --------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ALL_ALGORITHMS)
def test_round_trip_through_header_text_is_ok(algorithm: DigestAlgorithm) -> None:
    authenticator = make_authenticator()
    credentials = answer(challenge_for(authenticator, algorithm))
    parsed = parse_credentials(credentials.to_header_value())
    assert parsed == credentials
    assert verify(authenticator, parsed, now=T0 + 2) is DigestOutcome.OK
    assert authenticator.tracked_nonces == 1


@pytest.mark.parametrize("algorithm", [DigestAlgorithm.MD5, DigestAlgorithm.SHA_256])
def test_wrong_password_fails(algorithm: DigestAlgorithm) -> None:
    authenticator = make_authenticator()
    credentials = answer(challenge_for(authenticator, algorithm), password="guess")
    assert verify(authenticator, credentials) is DigestOutcome.FAILED
    assert authenticator.tracked_nonces == 0


def test_stale_nonce_with_fake_clock() -> None:
    authenticator = make_authenticator(nonce_lifetime=300.0)
    credentials = answer(challenge_for(authenticator))
    assert verify(authenticator, credentials, now=T0 + 300) is DigestOutcome.OK
    credentials = answer(challenge_for(authenticator), nc=2)
    assert verify(authenticator, credentials, now=T0 + 300.5) is DigestOutcome.STALE
    # The next challenge says stale=true, and answering it works again.
    values = authenticator.challenge_values(now=T0 + 300.5, salt=SALT, stale=True)
    fresh = parse_challenge(values[1])
    assert fresh.stale and fresh.nonce != credentials.nonce
    assert verify(authenticator, answer(fresh), now=T0 + 301) is DigestOutcome.OK


def test_expired_nonce_with_wrong_password_is_a_failure_not_stale() -> None:
    authenticator = make_authenticator()
    credentials = answer(challenge_for(authenticator), password="guess")
    assert verify(authenticator, credentials, now=T0 + 10_000) is DigestOutcome.FAILED


def test_nonce_from_the_future_is_stale() -> None:
    # The clock stepped back after the nonce was issued.
    authenticator = make_authenticator()
    credentials = answer(challenge_for(authenticator, now=T0 + 60))
    assert verify(authenticator, credentials, now=T0) is DigestOutcome.STALE
    assert verify(authenticator, credentials, now=T0 + 57) is DigestOutcome.OK


def _flip(text: str, index: int) -> str:
    replacement = "A" if text[index] != "A" else "B"
    return text[:index] + replacement + text[index + 1 :]


@pytest.mark.parametrize("index", [0, 5, 12, 30, 50])
def test_tampered_nonce(index: int) -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator)
    genuine = answer(challenge)
    tampered = _flip(challenge.nonce, index)
    assert authenticator.nonce_issued_at(tampered) is None
    # An attacker who edits the nonce of a captured request cannot fix the response: failed.
    edited = parse_credentials(genuine.to_header_value().replace(challenge.nonce, tampered))
    assert verify(authenticator, edited) is DigestOutcome.FAILED
    # A phone that knows the password but holds a nonce we did not make is only stale.
    other = DigestChallenge(
        realm=REALM, nonce=tampered, algorithm=challenge.algorithm, opaque=challenge.opaque
    )
    assert verify(authenticator, answer(other)) is DigestOutcome.STALE


def test_nonce_from_another_secret_or_realm_is_not_ours() -> None:
    ours = make_authenticator()
    other_secret = make_authenticator(secret=bytes(32))
    other_realm = make_authenticator(realm="elsewhere")
    for other in (other_secret, other_realm):
        nonce = other.make_nonce(now=T0, salt=SALT)
        assert ours.nonce_issued_at(nonce) is None
    # After a restart with a new secret, a phone's cached nonce earns stale=true, not a failure.
    credentials = answer(challenge_for(other_secret))
    assert verify(ours, credentials) is DigestOutcome.STALE


@pytest.mark.parametrize(
    "nonce",
    ["", "x", "!" * 54, "A" * 54, "A" * 53 + "=", "A" * 55, "é" * 54, "A" * 53 + "B"],
)
def test_garbage_nonces_are_not_ours(nonce: str) -> None:
    assert make_authenticator().nonce_issued_at(nonce) is None


def test_non_canonical_base64_spelling_of_a_nonce_is_not_ours() -> None:
    authenticator = make_authenticator()
    nonce = authenticator.make_nonce(now=T0, salt=SALT)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(nonce[-1])
    # The last character carries 4 spare bits; setting any of them decodes to the same bytes.
    variant = nonce[:-1] + alphabet[last | 1]
    assert variant != nonce
    assert authenticator.nonce_issued_at(variant) is None


def test_replayed_nonce_count() -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator)
    first = answer(challenge, nc=1)
    assert verify(authenticator, first) is DigestOutcome.OK
    assert verify(authenticator, first, now=T0 + 1) is DigestOutcome.REPLAY
    assert verify(authenticator, answer(challenge, nc=2), now=T0 + 2) is DigestOutcome.OK
    assert verify(authenticator, answer(challenge, nc=5), now=T0 + 3) is DigestOutcome.OK
    assert verify(authenticator, answer(challenge, nc=4), now=T0 + 4) is DigestOutcome.REPLAY
    assert verify(authenticator, first, now=T0 + 5) is DigestOutcome.REPLAY
    assert verify(authenticator, answer(challenge, nc=6), now=T0 + 6) is DigestOutcome.OK


def test_nonce_count_zero_is_never_fresh() -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator)
    ha1 = stored_ha1(DigestAlgorithm.MD5)
    response = compute_response(
        algorithm=DigestAlgorithm.MD5,
        ha1=ha1,
        nonce=challenge.nonce,
        method="REGISTER",
        uri=REGISTER_URI,
        qop="auth",
        nc="00000000",
        cnonce="c",
    )
    credentials = DigestCredentials(
        username="201",
        realm=REALM,
        nonce=challenge.nonce,
        uri=REGISTER_URI,
        response=response,
        cnonce="c",
        qop="auth",
        nc="00000000",
    )
    assert verify(authenticator, credentials) is DigestOutcome.REPLAY


def test_wrong_guesses_cannot_burn_a_phones_nonce_count() -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator)
    attack = answer(challenge, password="guess", nc=0xFFFFFFFF)
    assert verify(authenticator, attack) is DigestOutcome.FAILED
    assert verify(authenticator, answer(challenge, nc=1)) is DigestOutcome.OK


def test_wrong_realm() -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator)
    elsewhere = DigestChallenge(realm="Switchboard", nonce=challenge.nonce, opaque=challenge.opaque)
    assert verify(authenticator, answer(elsewhere)) is DigestOutcome.WRONG_REALM


@pytest.mark.parametrize(
    ("digest_uri", "request_uri", "outcome"),
    [
        ("sip:192.168.1.10", "sip:192.168.1.11", DigestOutcome.WRONG_URI),
        ("sip:192.168.1.10", "sip:192.168.1.10;transport=tcp", DigestOutcome.WRONG_URI),
        ("sip:201@pbx.lan", "sip:202@pbx.lan", DigestOutcome.WRONG_URI),
        ("sip:Alice@pbx.lan", "sip:alice@pbx.lan", DigestOutcome.WRONG_URI),
        ("sip:alice@PBX.lan", "SIP:alice@pbx.LAN", DigestOutcome.OK),
        ("sip:PBX.lan", "sip:pbx.lan", DigestOutcome.OK),
        ("sip:pbx.lan", "sip:pbx.lan", DigestOutcome.OK),
        # The server's own address for a request to a user on it (what SIPp sends).
        ("sip:pbx.lan:5060", "sip:201@pbx.lan:5060", DigestOutcome.OK),
        ("sip:other.lan:5060", "sip:201@pbx.lan:5060", DigestOutcome.WRONG_URI),
        ("sip:pbx.lan:5070", "sip:201@pbx.lan:5060", DigestOutcome.WRONG_URI),
    ],
)
def test_digest_uri_must_name_the_request_uri(
    digest_uri: str, request_uri: str, outcome: DigestOutcome
) -> None:
    authenticator = make_authenticator()
    credentials = answer(challenge_for(authenticator), uri=digest_uri)
    assert verify(authenticator, credentials, request_uri=request_uri) is outcome


def test_mismatched_opaque_makes_the_nonce_not_current() -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator)
    for opaque, outcome in (
        ("forged", DigestOutcome.STALE),
        (None, DigestOutcome.OK),  # old phones do not echo opaque
    ):
        edited = DigestChallenge(realm=REALM, nonce=challenge.nonce, opaque=opaque)
        assert verify(authenticator, answer(edited)) is outcome


def test_algorithm_not_offered_fails() -> None:
    authenticator = make_authenticator(algorithms=[DigestAlgorithm.SHA_256])
    sha = challenge_for(authenticator, DigestAlgorithm.SHA_256)
    downgraded = DigestChallenge(realm=REALM, nonce=sha.nonce, opaque=sha.opaque)
    assert verify(authenticator, answer(downgraded)) is DigestOutcome.FAILED
    assert verify(authenticator, answer(sha)) is DigestOutcome.OK


def test_unknown_user_is_indistinguishable_from_a_wrong_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[dict[str, object]] = []
    real = auth.compute_response

    def spy(**kwargs: object) -> str:
        calls.append(kwargs)
        return real(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(auth, "compute_response", spy)
    authenticator = make_authenticator()
    for algorithm in (DigestAlgorithm.MD5, DigestAlgorithm.SHA_256):
        challenge = challenge_for(authenticator, algorithm)
        credentials = answer(challenge, username="999")
        calls.clear()
        wrong = verify(authenticator, credentials, ha1=stored_ha1(algorithm, "other"))
        unknown = verify(authenticator, credentials, ha1=None)
        assert wrong is unknown is DigestOutcome.FAILED
        # Same hashes run: one response computed each time, with an HA1 of the same shape.
        wrong_call, unknown_call = calls
        assert len(str(wrong_call["ha1"])) == len(str(unknown_call["ha1"])) == algorithm.hex_length
        assert {k: v for k, v in wrong_call.items() if k != "ha1"} == {
            k: v for k, v in unknown_call.items() if k != "ha1"
        }
        # Even a response made with the dummy HA1 itself does not let an unknown user in.
        dummy_ha1 = str(unknown_call["ha1"])
        forged = DigestCredentials(
            username="999",
            realm=REALM,
            nonce=credentials.nonce,
            uri=credentials.uri,
            response=real(
                algorithm=algorithm,
                ha1=dummy_ha1,
                nonce=credentials.nonce,
                method="REGISTER",
                uri=credentials.uri,
                qop="auth",
                nc="00000001",
                cnonce="0a4f113b",
            ),
            algorithm=algorithm,
            cnonce="0a4f113b",
            qop="auth",
            nc="00000001",
        )
        assert verify(authenticator, forged, ha1=None) is DigestOutcome.FAILED
        assert len(calls) == 3
    assert authenticator.tracked_nonces == 0


def test_dummy_ha1_depends_on_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # Another box (another secret) has another dummy, so it cannot be precomputed.
    seen: list[str] = []
    real = auth.compute_response

    def spy(**kwargs: object) -> str:
        seen.append(str(kwargs["ha1"]))
        return real(**kwargs)  # type: ignore[arg-type]

    for secret in (SECRET, bytes(32)):
        authenticator = make_authenticator(secret=secret)
        credentials = answer(challenge_for(authenticator))
        monkeypatch.setattr(auth, "compute_response", spy)
        verify(authenticator, credentials, ha1=None)
        monkeypatch.undo()
    assert len(seen) == 2 and seen[0] != seen[1]


def test_stored_ha1_of_the_wrong_shape_is_a_programming_error() -> None:
    authenticator = make_authenticator()
    credentials = answer(challenge_for(authenticator, DigestAlgorithm.SHA_256))
    with pytest.raises(ValueError):
        verify(authenticator, credentials, ha1=stored_ha1(DigestAlgorithm.MD5))
    # Upper-case hex from a store is fine.
    upper = stored_ha1(DigestAlgorithm.SHA_256).upper()
    assert verify(authenticator, credentials, ha1=upper) is DigestOutcome.OK


# --- the nonce-count table -----------------------------------------------------------------------


def test_tracker_forgets_expired_nonces() -> None:
    tracker = NonceCountTracker(lifetime=100.0, capacity=10)
    for index in range(5):
        assert tracker.record(nonce=f"n{index}", issued_at=T0 + index, nc=1, now=T0 + index) is (
            DigestOutcome.OK
        )
    assert len(tracker) == 5
    assert tracker.record(nonce="late", issued_at=T0 + 102, nc=1, now=T0 + 102.5) is (
        DigestOutcome.OK
    )
    assert len(tracker) == 3  # n0, n1, n2 expired
    # A forgotten nonce is stale, never fresh again, even if the clock steps back.
    assert tracker.record(nonce="n0", issued_at=T0, nc=2, now=T0 + 50) is DigestOutcome.STALE


def test_tracker_is_bounded_and_eviction_never_opens_a_replay() -> None:
    tracker = NonceCountTracker(lifetime=1000.0, capacity=3)
    for index in range(3):
        assert tracker.record(nonce=f"n{index}", issued_at=T0 + index, nc=1, now=T0 + 5) is (
            DigestOutcome.OK
        )
    assert tracker.record(nonce="n3", issued_at=T0 + 3, nc=1, now=T0 + 5) is DigestOutcome.OK
    assert len(tracker) == 3
    # n0 was evicted while still live: replaying it is stale (re-challenge), not accepted.
    assert tracker.record(nonce="n0", issued_at=T0, nc=1, now=T0 + 6) is DigestOutcome.STALE
    assert tracker.record(nonce="n0", issued_at=T0, nc=9, now=T0 + 6) is DigestOutcome.STALE
    # Newer nonces are still tracked normally.
    assert tracker.record(nonce="n3", issued_at=T0 + 3, nc=1, now=T0 + 6) is DigestOutcome.REPLAY
    assert tracker.record(nonce="n3", issued_at=T0 + 3, nc=2, now=T0 + 6) is DigestOutcome.OK


def test_tracker_rfc2069_use_spends_the_nonce() -> None:
    tracker = NonceCountTracker(lifetime=100.0, capacity=10)
    assert tracker.record(nonce="a", issued_at=T0, nc=None, now=T0) is DigestOutcome.OK
    assert tracker.record(nonce="a", issued_at=T0, nc=None, now=T0) is DigestOutcome.STALE
    assert tracker.record(nonce="a", issued_at=T0, nc=7, now=T0) is DigestOutcome.REPLAY
    assert tracker.record(nonce="b", issued_at=T0, nc=1, now=T0) is DigestOutcome.OK
    assert tracker.record(nonce="b", issued_at=T0, nc=None, now=T0) is DigestOutcome.STALE


def test_authenticator_table_stays_bounded() -> None:
    authenticator = make_authenticator(max_tracked_nonces=4)
    for index in range(10):
        now = T0 + index / 100  # ten phones within a tenth of a second
        challenge = challenge_for(authenticator, now=now)
        assert verify(authenticator, answer(challenge), now=now) is DigestOutcome.OK
    assert authenticator.tracked_nonces == 4


def test_compute_response_refuses_what_it_cannot_compute() -> None:
    common: dict[str, str] = {
        "ha1": "0" * 32,
        "nonce": "n",
        "method": "REGISTER",
        "uri": "sip:x",
    }
    with pytest.raises(ValueError):
        compute_response(
            algorithm=DigestAlgorithm.MD5_SESS, qop=None, nc=None, cnonce=None, **common
        )
    with pytest.raises(ValueError):
        compute_response(
            algorithm=DigestAlgorithm.MD5, qop="auth-int", nc="00000001", cnonce="c", **common
        )


# --- properties ----------------------------------------------------------------------------------

printable = st.text(
    st.characters(exclude_categories=["Cs", "Cc"]),
    min_size=1,
    max_size=30,
)


@given(
    username=printable,
    password=st.text(st.characters(exclude_categories=["Cs"]), max_size=30),
    uri=printable,
    method=st.sampled_from(["REGISTER", "INVITE", "SUBSCRIBE", "MESSAGE"]),
    algorithm=st.sampled_from(ALL_ALGORITHMS),
    cnonce=st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=30),
    nc=st.integers(min_value=1, max_value=0xFFFFFFFF),
)
def test_any_honest_answer_verifies(
    username: str,
    password: str,
    uri: str,
    method: str,
    algorithm: DigestAlgorithm,
    cnonce: str,
    nc: int,
) -> None:
    authenticator = make_authenticator()
    challenge = challenge_for(authenticator, algorithm)
    credentials = answer_challenge(
        challenge,
        username=username,
        password=password,
        method=method,
        uri=uri,
        cnonce=cnonce,
        nc=nc,
    )
    parsed = parse_credentials(credentials.to_header_value())
    assert parsed == credentials
    ha1 = compute_ha1(username=username, realm=REALM, password=password, algorithm=algorithm)
    verdict = authenticator.verify(parsed, ha1=ha1, method=method, request_uri=uri, now=T0)
    assert verdict is DigestOutcome.OK
    assert authenticator.verify(parsed, ha1=ha1, method=method, request_uri=uri, now=T0) is (
        DigestOutcome.REPLAY
    )


# --- the names other modules import from pbx.sip.auth ---------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "DigestAlgorithm",
        "DigestChallenge",
        "DigestCredentials",
        "MAX_AUTH_HEADER_LENGTH",
        "MAX_AUTH_PARAMS",
        "parse_credentials",
    ],
)
def test_grammar_names_stay_importable_from_auth(name: str) -> None:
    assert getattr(auth, name) is getattr(digest_grammar, name)
    assert name in auth.__all__


def test_server_signatures_stay_the_same() -> None:
    assert str(inspect.signature(parse_credentials)) == "(value: 'str') -> 'DigestCredentials'"
    assert str(inspect.signature(compute_ha1)) == (
        "(*, username: 'str', realm: 'str', password: 'str', algorithm: 'DigestAlgorithm') -> 'str'"
    )


# --- the offer one user was challenged with ----------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "offer", "expected"),
    [
        (DigestAlgorithm.SHA_256, (DigestAlgorithm.SHA_256,), DigestOutcome.OK),
        (DigestAlgorithm.SHA_256_SESS, (DigestAlgorithm.SHA_256,), DigestOutcome.OK),
        (DigestAlgorithm.MD5, (DigestAlgorithm.SHA_256,), DigestOutcome.FAILED),  # downgrade
        (DigestAlgorithm.MD5_SESS, (DigestAlgorithm.SHA_256,), DigestOutcome.FAILED),
        (DigestAlgorithm.MD5, (DigestAlgorithm.SHA_256, DigestAlgorithm.MD5), DigestOutcome.OK),
    ],
)
def test_an_answer_outside_the_users_offer_fails_like_a_wrong_password(
    algorithm: DigestAlgorithm, offer: tuple[DigestAlgorithm, ...], expected: DigestOutcome
) -> None:
    authenticator = make_authenticator()
    credentials = answer(challenge_for(authenticator, algorithm))
    outcome = authenticator.verify(
        credentials, ha1=stored_ha1(algorithm.base), method="REGISTER",
        request_uri=REGISTER_URI, now=T0, offer=offer,
    )  # fmt: skip
    assert outcome is expected
