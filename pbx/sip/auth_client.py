"""The client side of Digest authentication (RFC 7616 §3.4, RFC 8760): pick the best challenge
a server offered and compute the credentials that answer it. The line gateway registers to the
switch with these. Sans-I/O: the password, the cnonce (the caller's randomness) and the nonce count
are arguments.
"""

from __future__ import annotations

from collections.abc import Iterable

from pbx.sip.auth import compute_ha1, compute_response
from pbx.sip.digest_grammar import (
    DigestAlgorithm,
    DigestChallenge,
    DigestCredentials,
    parse_challenge,
)
from pbx.sip.errors import SipParseError


def answer_challenge(
    challenge: DigestChallenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    cnonce: str,
    nc: int = 1,
) -> DigestCredentials:
    """Credentials answering ``challenge`` for a request (``nc`` counts uses of this nonce).

    Uses qop=auth when offered, else an RFC 2069 answer. ``cnonce`` is the caller's randomness.
    """
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError("nc must be in 1..0xFFFFFFFF")
    algorithm = challenge.algorithm
    qop = "auth" if challenge.qop else None
    nc_text = f"{nc:08x}" if qop is not None else None
    cnonce_used = cnonce if qop is not None or algorithm.is_session else None
    ha1 = compute_ha1(
        username=username, realm=challenge.realm, password=password, algorithm=algorithm
    )
    response = compute_response(
        algorithm=algorithm,
        ha1=ha1,
        nonce=challenge.nonce,
        method=method,
        uri=uri,
        qop=qop,
        nc=nc_text,
        cnonce=cnonce_used,
    )
    return DigestCredentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=response,
        algorithm=algorithm,
        cnonce=cnonce_used,
        qop=qop,
        nc=nc_text,
        opaque=challenge.opaque,
    )


def choose_challenge(values: Iterable[str]) -> DigestChallenge | None:
    """The best challenge among header values: SHA-256 before MD5, then the server's order.

    Values we cannot parse or answer are skipped (RFC 8760: a client uses the first it supports).
    """
    best: DigestChallenge | None = None
    for value in values:
        try:
            challenge = parse_challenge(value)
        except SipParseError:
            continue
        if best is None or (
            best.algorithm.base is DigestAlgorithm.MD5
            and challenge.algorithm.base is DigestAlgorithm.SHA_256
        ):
            best = challenge
    return best
