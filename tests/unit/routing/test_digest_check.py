"""Proxy-Authorization for calls and MESSAGE: the same offer and scheme rules as REGISTER."""

from __future__ import annotations

import pytest

from pbx.routing.digest_check import Verdict, check_digest, offer_for
from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator
from pbx.sip.message import Request, parse_message
from pbx.store.extensions import StoredSecrets

MD5, SHA_256 = DigestAlgorithm.MD5, DigestAlgorithm.SHA_256
AUTH = DigestAuthenticator(realm="switchboard", secret=b"digest-check-tests-secret-0123456")


def invite(proxy_authorization: str) -> Request:
    message = parse_message(
        (
            "INVITE sip:202@192.0.2.1 SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 198.51.100.21:5060;branch=z9hG4bK-dc1\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:201@192.0.2.1>;tag=a1\r\nTo: <sip:202@192.0.2.1>\r\n"
            "Call-ID: dc1@test\r\nCSeq: 1 INVITE\r\nContact: <sip:201@198.51.100.21>\r\n"
            f"Proxy-Authorization: {proxy_authorization}\r\nContent-Length: 0\r\n\r\n"
        ).encode()
    )
    assert isinstance(message, Request)
    return message


@pytest.mark.parametrize(
    ("credentials", "verdict"),
    [
        ("NoOneKnowsThisScheme opaque-data=here", Verdict.CHALLENGE),  # as if absent
        ("Digest username=", Verdict.MALFORMED),  # a broken Digest stays a 400
    ],
)
def test_only_digest_credentials_are_judged(credentials: str, verdict: Verdict) -> None:
    check = check_digest(
        invite(credentials),
        header="proxy-authorization",
        authenticator=AUTH,
        secrets_of=lambda _: None,
        now=1_800_000_000.0,
    )
    assert check.verdict is verdict


def test_the_offer_is_the_extension_choice_else_the_default() -> None:
    own = StoredSecrets("0" * 32, "0" * 64, (SHA_256,))
    plain = StoredSecrets("0" * 32, "0" * 64)
    assert offer_for(own, (MD5,)) == (SHA_256,)
    assert offer_for(plain, (MD5,)) == (MD5,)
    assert offer_for(None, (MD5,)) == (MD5,)
