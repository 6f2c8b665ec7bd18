"""Whether a new INVITE may start a call at all: the checks before any leg exists.

Max-Forwards (483), a loop through ourselves (482), who is calling (Digest: 407, 403, 400),
the SDP (400), and the session timer asked for (422, 400). Pure: the wall clock comes in as
``wall`` and the nonce salt from the injected ``new_salt``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbx.calls.media_plan import parse_body
from pbx.calls.session_timer import SessionTimer, TooSmall, negotiate
from pbx.routing.digest_check import Verdict, check_digest, offer_for
from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request
from pbx.sip.uri import SipUri
from pbx.store.extensions import StoredSecrets


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """The answer to a request that starts nothing."""

    status: int
    reason: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    caller: str
    timer: SessionTimer | None


@dataclass(slots=True, kw_only=True)
class Admission:
    authenticator: DigestAuthenticator
    secrets_of: Callable[[str], StoredSecrets | None]
    record_failure: Callable[[str, float], None]
    new_salt: Callable[[], bytes]
    default_offer: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,)

    def precheck(self, request: Request, local: tuple[str, int]) -> Refusal | None:
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards == 0:
            return Refusal(status=483)
        for via in request.vias[1:]:
            # §16.3 step 4 in spirit: our own address further down the Via means a loop.
            if via.host_bare == local[0] and (via.port or 5060) == local[1]:
                return Refusal(status=482)
        return None

    def authenticate(self, request: Request, source_host: str, wall: float) -> str | Refusal:
        """The authenticated caller, or what to answer instead."""
        check = check_digest(
            request,
            header="proxy-authorization",
            authenticator=self.authenticator,
            secrets_of=self.secrets_of,
            now=wall,
            default_offer=self.default_offer,
        )
        if check.verdict is Verdict.OK and check.user is not None:
            return check.user
        if check.verdict is Verdict.MALFORMED:
            return Refusal(status=400, reason="Malformed Proxy-Authorization header")
        if check.verdict is Verdict.FAILED:
            self.record_failure(source_host, wall)
            return Refusal(status=403, reason="Forbidden")
        caller = request.from_.uri.user if isinstance(request.from_.uri, SipUri) else None
        values = self.authenticator.challenge_values(
            now=wall,
            salt=self.new_salt(),
            stale=check.verdict is Verdict.STALE,
            offer=offer_for(self.secrets_of(caller) if caller else None, self.default_offer),
        )
        return Refusal(
            status=407,
            reason="Proxy Authentication Required",
            headers=tuple(("Proxy-Authenticate", v) for v in values),
        )

    @staticmethod
    def session(request: Request) -> SessionTimer | None | Refusal:
        """RFC 4028 for an INVITE: the timer to answer with (None when none was asked) or a
        refusal: 422 under Min-SE, 400 when malformed; a malformed SDP body is a 400 too."""
        try:
            parse_body(request.content_type, request.body)
        except SipParseError:
            return Refusal(status=400, reason="Malformed SDP")
        try:
            timer = negotiate(request)
        except SipParseError as exc:
            return Refusal(status=exc.status, reason=exc.reason)
        if isinstance(timer, TooSmall):
            return Refusal(
                status=422, reason="Session Interval Too Small", headers=tuple(timer.headers())
            )
        return timer
