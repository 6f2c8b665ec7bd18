"""Who sent this request: Digest verification of Proxy-Authorization for calls and MESSAGE.

Pure, with the same rules as the registrar: an unknown user and a wrong password give the
same result (FAILED), an expired nonce asks for a fresh challenge (stale), a replay is
challenged again.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from pbx.sip.auth import DigestAuthenticator, DigestOutcome, parse_credentials
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


def check_digest(
    request: Request,
    *,
    header: str,
    authenticator: DigestAuthenticator,
    secrets_of: Callable[[str], StoredSecrets | None],
    now: float,
) -> DigestCheck:
    """Verify the request's ``header`` (Authorization or Proxy-Authorization) for our realm."""
    for value in request.headers.get_all(header):
        try:
            credentials = parse_credentials(value)
        except (SipParseError, ValueError):
            return DigestCheck(Verdict.MALFORMED)
        if credentials.realm != authenticator.realm:
            continue
        secrets = secrets_of(credentials.username)
        ha1 = None if secrets is None else secrets.ha1_for(credentials.algorithm)
        outcome = authenticator.verify(
            credentials, ha1=ha1, method=request.method, request_uri=str(request.uri), now=now
        )
        if outcome is DigestOutcome.OK:
            return DigestCheck(Verdict.OK, credentials.username, credentials.algorithm.value)
        if outcome is DigestOutcome.STALE:
            return DigestCheck(Verdict.STALE)
        if outcome is DigestOutcome.REPLAY:
            return DigestCheck(Verdict.CHALLENGE)
        return DigestCheck(Verdict.FAILED)
    return DigestCheck(Verdict.CHALLENGE)
