"""Whether the switch takes a request it would route on (a call, a MESSAGE): the loop checks of
RFC 3261 §16.3 and the caller's Digest (407, 403, 400), decided without I/O.

Pure and shared, so every element that routes a request from a phone refuses it with the same
answer: the call core and the MESSAGE proxy (``proxy``) differ in what they do next, not in
who they let in. Randomness for a challenge's nonce comes in as a callable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbx.routing.digest_check import Verdict, check_digest, offer_for
from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator
from pbx.sip.message import Request
from pbx.sip.uri import SipUri
from pbx.store.extensions import StoredSecrets

Address = tuple[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """The final response a request gets instead of being routed."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    auth_failed: bool = False
    """Unknown user or wrong password: counts toward banning the source (``source_guard``)."""


def loop_check(request: Request, local: Address) -> Refusal | None:
    """§16.3 step 3 (Max-Forwards 0 is 483) and step 4 in spirit (our own address further
    down the Via means the request came round again: 482). ``local`` is our address on the
    request's transport. May raise SipParseError for a malformed Max-Forwards."""
    max_forwards = request.max_forwards
    if max_forwards is not None and max_forwards == 0:
        return Refusal(status=483)
    for via in request.vias[1:]:
        if via.host_bare == local[0] and (via.port or 5060) == local[1]:
            return Refusal(status=482)
    return None


def authenticate(
    request: Request,
    *,
    authenticator: DigestAuthenticator,
    secrets_of: Callable[[str], StoredSecrets | None],
    now: float,
    new_salt: Callable[[], bytes],
    default_offer: tuple[DigestAlgorithm, ...],
) -> str | Refusal:
    """The authenticated user of ``request``'s Proxy-Authorization, or what to answer: 407 with
    one Proxy-Authenticate per offered algorithm (the caller's own offer, else the box's, as
    the registrar does), 403 for failed credentials, 400 for malformed ones. ``now`` is wall
    time (nonces outlive the process)."""
    check = check_digest(
        request,
        header="proxy-authorization",
        authenticator=authenticator,
        secrets_of=secrets_of,
        now=now,
        default_offer=default_offer,
    )
    if check.verdict is Verdict.OK and check.user is not None:
        return check.user
    if check.verdict is Verdict.MALFORMED:
        return Refusal(status=400, reason="Malformed Proxy-Authorization header")
    if check.verdict is Verdict.FAILED:
        return Refusal(status=403, reason="Forbidden", auth_failed=True)
    caller = request.from_.uri.user if isinstance(request.from_.uri, SipUri) else None
    values = authenticator.challenge_values(
        now=now,
        salt=new_salt(),
        stale=check.verdict is Verdict.STALE,
        offer=offer_for(secrets_of(caller) if caller else None, default_offer),
    )
    return Refusal(
        status=407,
        reason="Proxy Authentication Required",
        headers=tuple(("Proxy-Authenticate", value) for value in values),
    )
