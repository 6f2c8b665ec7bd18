"""Who sent this request: Digest verification of Proxy-Authorization for calls and MESSAGE.

Pure, with the same rules as the registrar: an unknown user and a wrong password give the
same result (FAILED), an expired nonce asks for a fresh challenge (stale), a replay is
challenged again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator, DigestOutcome, parse_credentials
from pbx.sip.digest_grammar import is_digest_scheme
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request
from pbx.store.extensions import StoredSecrets


class Verdict(enum.Enum):
    OK = "ok"
    CHALLENGE = "challenge"
    STALE = "stale"
    FAILED = "failed"
    MALFORMED = "malformed"


@dataclass(frozen=True, slots=True)
class DigestCheck:
    verdict: Verdict
    user: str | None = None
    algorithm: str | None = None


def offer_for(
    secrets: StoredSecrets | None, default: tuple[DigestAlgorithm, ...]
) -> tuple[DigestAlgorithm, ...]:
    """The algorithms an extension is challenged with: its own choice, else the box's default
    (an unknown user gets the default too, so it is challenged like a known one)."""
    if secrets is None or secrets.algorithms is None:
        return default
    return secrets.algorithms


def check_digest(
    request: Request,
    *,
    header: str,
    authenticator: DigestAuthenticator,
    secrets_of: Callable[[str], StoredSecrets | None],
    now: float,
    default_offer: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,),
) -> DigestCheck:
    """Verify the request's ``header`` (Authorization or Proxy-Authorization) for our realm;
    an answer in an algorithm the extension is not offered fails like a wrong password."""
    for value in request.headers.get_all(header):
        if not is_digest_scheme(value):
            continue  # another scheme: challenged as if absent (RFC 4475 §3.3.7)
        try:
            credentials = parse_credentials(value)
        except (SipParseError, ValueError):
            return DigestCheck(Verdict.MALFORMED)
        if credentials.realm != authenticator.realm:
            continue
        secrets = secrets_of(credentials.username)
        ha1 = None if secrets is None else secrets.ha1_for(credentials.algorithm)
        outcome = authenticator.verify(
            credentials, ha1=ha1, method=request.method, request_uri=str(request.uri), now=now,
            offer=offer_for(secrets, default_offer),
        )  # fmt: skip
        if outcome is DigestOutcome.OK:
            return DigestCheck(Verdict.OK, credentials.username, credentials.algorithm.value)
        if outcome is DigestOutcome.STALE:
            return DigestCheck(Verdict.STALE)
        if outcome is DigestOutcome.REPLAY:
            return DigestCheck(Verdict.CHALLENGE)
        return DigestCheck(Verdict.FAILED)
    return DigestCheck(Verdict.CHALLENGE)
