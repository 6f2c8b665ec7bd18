"""Whether a new INVITE may start a call at all: the checks before any leg exists.

The loop checks and the caller's Digest are the ones every routed request gets
(``pbx.routing.admission``, shared with the MESSAGE proxy); an INVITE adds its SDP (400) and
the session timer asked for (422, 400). Pure: the wall clock comes in as ``wall`` and the
nonce salt from the injected ``new_salt``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pbx.calls.media_plan import parse_body
from pbx.calls.session_timer import SessionTimer, TooSmall, negotiate
from pbx.routing.admission import Refusal, authenticate, loop_check
from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator
from pbx.sip.errors import SipParseError
from pbx.sip.message import Request
from pbx.sip.sdp import SessionDescription
from pbx.store.extensions import StoredSecrets

__all__ = ["Admission", "Admitted", "Refusal"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """What an INVITE brings that the call is built on: its offer (None for a late offer) and
    the session timer to answer with (None when none was asked)."""

    offer: SessionDescription | None
    timer: SessionTimer | None


@dataclass(slots=True, kw_only=True)
class Admission:
    authenticator: DigestAuthenticator
    secrets_of: Callable[[str], StoredSecrets | None]
    record_failure: Callable[[str, float], None]
    new_salt: Callable[[], bytes]
    default_offer: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,)

    def precheck(self, request: Request, local: tuple[str, int]) -> Refusal | None:
        return loop_check(request, local)

    def authenticate(self, request: Request, source_host: str, wall: float) -> str | Refusal:
        """The authenticated caller, or what to answer instead (a failure counts toward a ban
        of the source)."""
        found = authenticate(
            request,
            authenticator=self.authenticator,
            secrets_of=self.secrets_of,
            now=wall,
            new_salt=self.new_salt,
            default_offer=self.default_offer,
        )
        if isinstance(found, Refusal) and found.auth_failed:
            self.record_failure(source_host, wall)
        return found

    @staticmethod
    def session(request: Request) -> Admitted | Refusal:
        """The INVITE's offer and its RFC 4028 timer, read once for the whole call, or a
        refusal: 400 for a malformed SDP body, 422 under Min-SE, 400 for a malformed timer."""
        try:
            offer = parse_body(request.content_type, request.body)
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
        return Admitted(offer=offer, timer=timer)
