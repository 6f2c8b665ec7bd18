"""The client side of Digest: choosing a challenge and answering it."""

from __future__ import annotations

import pytest

from pbx.sip.auth_client import answer_challenge, choose_challenge
from pbx.sip.digest_grammar import (
    DigestAlgorithm,
    DigestChallenge,
    DigestCredentials,
    parse_challenge,
)

REGISTER_URI = "sip:192.168.1.10"


def answer(challenge: DigestChallenge, *, nc: int = 1) -> DigestCredentials:
    return answer_challenge(
        challenge,
        username="201",
        password="s3cret-Passw0rd-xyz",
        method="REGISTER",
        uri=REGISTER_URI,
        cnonce="0a4f113b",
        nc=nc,
    )


def test_rfc2069_challenge_without_qop_is_answered_without_qop() -> None:
    challenge = parse_challenge('Digest realm="r", nonce="n", stale=TRUE')
    assert challenge.qop == () and challenge.stale
    assert challenge.algorithm is DigestAlgorithm.MD5
    assert challenge.to_header_value() == 'Digest realm="r", nonce="n", algorithm=MD5, stale=true'
    credentials = answer(challenge)
    assert credentials.qop is None and credentials.nc is None and credentials.cnonce is None


# --- client helpers ------------------------------------------------------------------------------


def test_choose_challenge_prefers_sha256_and_skips_what_it_cannot_answer() -> None:
    values = [
        'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"',
        'Digest realm="r", nonce="n2", algorithm=SHA-512-256, qop="auth"',
        'Basic realm="r"',
        'Digest realm="r", nonce="n3", algorithm=SHA-256, qop="auth"',
        'Digest realm="r", nonce="n4", algorithm=SHA-256, qop="auth"',
    ]
    chosen = choose_challenge(values)
    assert chosen is not None and chosen.nonce == "n3"
    assert choose_challenge(values[:2]) == parse_challenge(values[0])
    assert choose_challenge(values[1:3]) is None


@pytest.mark.parametrize("nc", [0, 1 << 32])
def test_answer_refuses_out_of_range_nc(nc: int) -> None:
    with pytest.raises(ValueError):
        answer(DigestChallenge(realm="r", nonce="n"), nc=nc)
