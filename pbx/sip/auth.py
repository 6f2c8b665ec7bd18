"""HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 7616, RFC 2617, RFC 8760): the
hashes and the server side.

Stateless nonces (issue time + HMAC under a server secret), verification against a stored HA1
rather than a password, nonce-count replay rejection in a bounded table, and one code path whether
the user exists or not. Sans-I/O: the secret, the clock (``now``) and the nonce salt are arguments.

A malformed ``Authorization``/``Proxy-Authorization`` value raises
:class:`~pbx.sip.errors.SipParseError` (status 400) from :func:`parse_credentials`; there is no
"malformed" verification outcome, because :meth:`DigestAuthenticator.verify` only ever sees
well-formed :class:`DigestCredentials`. The header grammar is in :mod:`pbx.sip.digest_grammar`
(its names the server needs are re-exported here); the client side (answering a challenge) is in
:mod:`pbx.sip.auth_client`.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import heapq
import hmac
import math
import re
from collections.abc import Sequence

from pbx.sip.digest_grammar import (
    LHEX_RE,
    MAX_AUTH_HEADER_LENGTH,
    MAX_AUTH_PARAMS,
    DigestAlgorithm,
    DigestChallenge,
    DigestCredentials,
    check_text,
    parse_credentials,
)

__all__ = [
    "DEFAULT_MAX_TRACKED_NONCES",
    "DEFAULT_NONCE_LIFETIME",
    "MAX_AUTH_HEADER_LENGTH",
    "MAX_AUTH_PARAMS",
    "MAX_NONCE_CLOCK_SKEW",
    "MIN_SECRET_LENGTH",
    "NONCE_SALT_LENGTH",
    "DigestAlgorithm",
    "DigestAuthenticator",
    "DigestChallenge",
    "DigestCredentials",
    "DigestOutcome",
    "NonceCountTracker",
    "compute_ha1",
    "compute_response",
    "parse_credentials",
]

# Nonces: bytes of caller-supplied randomness in each nonce, shortest accepted server secret.
NONCE_SALT_LENGTH = 16
MIN_SECRET_LENGTH = 16
DEFAULT_NONCE_LIFETIME = 300.0
DEFAULT_MAX_TRACKED_NONCES = 4096
# A nonce stamped this far in the future (the clock stepped back) is treated as stale.
MAX_NONCE_CLOCK_SKEW = 5.0

_NONCE_STAMP_LENGTH = 8
_NONCE_MAC_LENGTH = 16  # HMAC-SHA256 truncated to 128 bits (RFC 2104 §5 allows >= half)
_NONCE_LENGTH = _NONCE_STAMP_LENGTH + NONCE_SALT_LENGTH + _NONCE_MAC_LENGTH
_NONCE_TEXT_LENGTH = math.ceil(_NONCE_LENGTH * 4 / 3)
_NC_CONSUMED = 1 << 32  # above any nc: an RFC 2069 (no qop) use spends the whole nonce

_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]+")


class DigestOutcome(enum.Enum):
    """What :meth:`DigestAuthenticator.verify` concluded; the registrar maps it to a response.

    - OK: right response, current nonce, nc above the last seen. Go on.
    - STALE: right response, but the nonce is expired, not ours (tampered, old secret) or already
      spent (RFC 2617 §3.2.1). Answer 401 with ``stale=true``; not a failure.
    - FAILED: wrong response, which includes an unknown user (same path) and an algorithm we do
      not offer. Answer 401 (or 403) and count a failure towards a ban.
    - REPLAY: right response but nc not above the last seen for that nonce (RFC 7616 §3.4).
      Answer 401 with a fresh challenge; worth logging.
    - WRONG_REALM: the credentials are for another realm; try another header, else 401.
    - WRONG_URI: ``uri`` does not name the Request-URI (RFC 7616 §3.4, RFC 2617 §3.2.2.5): 400.
    """

    OK = "ok"
    STALE = "stale"
    FAILED = "failed"
    REPLAY = "replay"
    WRONG_REALM = "wrong_realm"
    WRONG_URI = "wrong_uri"


# --- the hashes (RFC 7616 §3.4.1-§3.4.3; RFC 2617 §3.2.2; RFC 2069 without qop) ------------------


def _hash(algorithm: DigestAlgorithm, data: str) -> str:
    return hashlib.new(algorithm.hash_name, data.encode("utf-8")).hexdigest()


def compute_ha1(*, username: str, realm: str, password: str, algorithm: DigestAlgorithm) -> str:
    """HA1 = H(username ":" realm ":" passwd), the value the store keeps per base algorithm.

    For a ``-sess`` algorithm this is still the base HA1; the session rehash happens per nonce.
    """
    return _hash(algorithm.base, f"{username}:{realm}:{password}")


def compute_response(
    *,
    algorithm: DigestAlgorithm,
    ha1: str,
    nonce: str,
    method: str,
    uri: str,
    qop: str | None,
    nc: str | None,
    cnonce: str | None,
) -> str:
    """The ``response`` value for a request, from the base HA1 (RFC 7616 §3.4.1)."""
    if algorithm.is_session:
        # A1 = H(username:realm:passwd) ":" nonce ":" cnonce  (RFC 7616 §3.4.2)
        if cnonce is None:
            raise ValueError("a -sess algorithm requires cnonce")
        ha1 = _hash(algorithm, f"{ha1}:{nonce}:{cnonce}")
    # A2 = Method ":" request-uri  (RFC 7616 §3.4.3, qop=auth or none)
    ha2 = _hash(algorithm, f"{method}:{uri}")
    if qop is None:
        # RFC 2069: request-digest = KD(H(A1), nonce ":" H(A2))
        return _hash(algorithm, f"{ha1}:{nonce}:{ha2}")
    if qop != "auth" or nc is None or cnonce is None:
        raise ValueError("only qop=auth is supported, and it needs nc and cnonce")
    # response = KD(H(A1), nonce ":" nc ":" cnonce ":" qop ":" H(A2))
    return _hash(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


# --- server side ---------------------------------------------------------------------------------


def _uri_key(uri: str) -> str:
    """Scheme and host part folded to lower case, user part as is (RFC 3261 §19.1.4, simplified)."""
    scheme, colon, rest = uri.strip().partition(":")
    if not colon:
        return uri.strip()
    user, at, host = rest.partition("@")
    if at:
        return f"{scheme.lower()}:{user}@{host.lower()}"
    return f"{scheme.lower()}:{rest.lower()}"


def _same_uri(digest_uri: str, request_uri: str) -> bool:
    # RFC 7616 §3.4, RFC 2617 §3.2.2.5: "uri" must name the resource in the Request-Line.
    if digest_uri == request_uri or _uri_key(digest_uri) == _uri_key(request_uri):
        return True
    # SIPp and some phones name the server they authenticate to (sip:host:port) rather than
    # the user in the Request-URI (sip:201@host:port): accepted, since host and port are ours.
    scheme, _, rest = request_uri.strip().partition(":")
    user, at, host = rest.partition("@")
    return (
        bool(at and user)
        and "@" not in digest_uri
        and (_uri_key(digest_uri) == _uri_key(f"{scheme}:{host}"))
    )


class NonceCountTracker:
    """The highest nc seen per nonce: a repeated or lower nc is a replay (RFC 7616 §3.4).

    Bounded: nonces are forgotten once their lifetime is over (verification calls those stale
    anyway), and when full the oldest-issued is evicted; a nonce issued no later than an evicted
    one is then answered STALE rather than trusted, so eviction never opens a replay window. Only
    requests with a correct response are recorded, so only authenticated peers can fill it.
    """

    def __init__(self, *, lifetime: float, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._lifetime = lifetime
        self._capacity = capacity
        self._highest: dict[str, int] = {}
        self._by_issue: list[tuple[float, str]] = []
        self._evicted_up_to = -math.inf
        self._latest_now = -math.inf

    def __len__(self) -> int:
        return len(self._highest)

    def record(self, *, nonce: str, issued_at: float, nc: int | None, now: float) -> DigestOutcome:
        """OK (and remember ``nc``), REPLAY, or STALE if the nonce can no longer be vouched for.

        ``nc`` None is an RFC 2069 answer: it may use a nonce once, then the nonce is spent.
        """
        # The clock may step back; never forget less than we already have.
        self._latest_now = max(self._latest_now, now)
        self._forget_expired()
        if self._latest_now - issued_at > self._lifetime:
            return DigestOutcome.STALE
        last = self._highest.get(nonce)
        if last is None and issued_at <= self._evicted_up_to:
            return DigestOutcome.STALE
        seen = 0 if last is None else last
        if nc is None:
            if seen:
                return DigestOutcome.STALE
            nc = _NC_CONSUMED
        elif nc <= seen:
            return DigestOutcome.REPLAY
        if last is None:
            while len(self._highest) >= self._capacity:
                oldest_issue, oldest = heapq.heappop(self._by_issue)
                del self._highest[oldest]
                self._evicted_up_to = max(self._evicted_up_to, oldest_issue)
            heapq.heappush(self._by_issue, (issued_at, nonce))
        self._highest[nonce] = nc
        return DigestOutcome.OK

    def _forget_expired(self) -> None:
        while self._by_issue and self._latest_now - self._by_issue[0][0] > self._lifetime:
            _, nonce = heapq.heappop(self._by_issue)
            del self._highest[nonce]


class DigestAuthenticator:
    """A realm's challenges and verification; its only state is the nonce-count table.

    Nonces are stateless: base64url(issue time in ms, salt, HMAC-SHA256 under ``secret``), so any
    nonce can be checked without storage and a nonce from another secret or realm is simply
    not current. ``algorithms`` is the offer, in preference order (RFC 8760: SHA-256 first);
    answers in an offered algorithm or its ``-sess`` variant are accepted.
    """

    def __init__(
        self,
        *,
        realm: str,
        secret: bytes,
        algorithms: Sequence[DigestAlgorithm] = (DigestAlgorithm.SHA_256, DigestAlgorithm.MD5),
        nonce_lifetime: float = DEFAULT_NONCE_LIFETIME,
        max_tracked_nonces: int = DEFAULT_MAX_TRACKED_NONCES,
    ) -> None:
        check_text("realm", realm)
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"secret must be at least {MIN_SECRET_LENGTH} bytes")
        if not algorithms or len(set(algorithms)) != len(algorithms):
            raise ValueError("algorithms must be a non-empty list without repeats")
        if not nonce_lifetime > 0:
            raise ValueError("nonce_lifetime must be positive")
        self._realm = realm
        self._secret = bytes(secret)
        self._algorithms = tuple(algorithms)
        bases = {algorithm.base for algorithm in algorithms}
        self._accepted = frozenset(a for a in DigestAlgorithm if a.base in bases)
        self._lifetime = nonce_lifetime
        self._tracker = NonceCountTracker(lifetime=nonce_lifetime, capacity=max_tracked_nonces)
        self._opaque = self._encode(self._mac(b"opaque", b"")[:12])
        # Each challenge's text around its nonce, made once: only the nonce changes per 401.
        marker = "N" * _NONCE_TEXT_LENGTH
        self._challenge_text = {
            algorithm: _around(
                DigestChallenge(
                    realm=self._realm, nonce=marker, algorithm=algorithm, qop=("auth",),
                    opaque=self._opaque,
                ).to_header_value(),
                marker,
            )
            for algorithm in self._algorithms
        }  # fmt: skip
        # An unknown user is verified against this, so it costs the same as a wrong password.
        self._dummy_ha1 = {
            base: self._mac(b"dummy-ha1", base.value.encode()).hex()[: base.hex_length]
            for base in (DigestAlgorithm.MD5, DigestAlgorithm.SHA_256)
        }

    @property
    def realm(self) -> str:
        return self._realm

    @property
    def tracked_nonces(self) -> int:
        return len(self._tracker)

    def _mac(self, label: bytes, data: bytes) -> bytes:
        message = b"switchboard digest\0" + label + b"\0" + self._realm.encode() + b"\0" + data
        return hmac.digest(self._secret, message, "sha256")  # one-shot: no HMAC object

    @staticmethod
    def _encode(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    def make_nonce(self, *, now: float, salt: bytes) -> str:
        """A fresh nonce stamped ``now``; ``salt`` is NONCE_SALT_LENGTH fresh random bytes."""
        if len(salt) != NONCE_SALT_LENGTH:
            raise ValueError(f"salt must be {NONCE_SALT_LENGTH} bytes")
        if not (math.isfinite(now) and 0 <= now < 2**53):
            raise ValueError("now must be a non-negative time in seconds")
        # Millisecond stamps, so that evicting one nonce from the table rarely outdates another.
        stamped = int(now * 1000).to_bytes(_NONCE_STAMP_LENGTH, "big") + salt
        return self._encode(stamped + self._mac(b"nonce", stamped)[:_NONCE_MAC_LENGTH])

    def nonce_issued_at(self, nonce: str) -> float | None:
        """When one of our nonces was issued, or None if it is not ours (tampered, another
        secret or realm, not canonical base64url)."""
        if len(nonce) != _NONCE_TEXT_LENGTH or _BASE64URL_RE.fullmatch(nonce) is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) != _NONCE_LENGTH or self._encode(raw) != nonce:
            return None
        stamped, mac = raw[:-_NONCE_MAC_LENGTH], raw[-_NONCE_MAC_LENGTH:]
        if not hmac.compare_digest(mac, self._mac(b"nonce", stamped)[:_NONCE_MAC_LENGTH]):
            return None
        return int.from_bytes(stamped[:_NONCE_STAMP_LENGTH], "big") / 1000

    def _offer(self, offer: Sequence[DigestAlgorithm] | None) -> Sequence[DigestAlgorithm]:
        if offer is None:
            return self._algorithms
        if not offer or any(algorithm not in self._challenge_text for algorithm in offer):
            raise ValueError("an offer must name some of the authenticator's algorithms")
        return offer

    def challenges(
        self,
        *,
        now: float,
        salt: bytes,
        stale: bool = False,
        offer: Sequence[DigestAlgorithm] | None = None,
    ) -> list[DigestChallenge]:
        """One challenge per offered algorithm, in preference order, sharing one nonce;
        ``offer`` (some of ``algorithms``) replaces the whole list for this one request."""
        nonce = self.make_nonce(now=now, salt=salt)
        return [
            DigestChallenge(
                realm=self._realm,
                nonce=nonce,
                algorithm=algorithm,
                qop=("auth",),
                opaque=self._opaque,
                stale=stale,
            )
            for algorithm in self._offer(offer)
        ]

    def challenge_values(
        self,
        *,
        now: float,
        salt: bytes,
        stale: bool = False,
        offer: Sequence[DigestAlgorithm] | None = None,
    ) -> list[str]:
        """``WWW-Authenticate``/``Proxy-Authenticate`` values, one header each, in offer order
        (the text of :meth:`challenges`, from templates: this is every first REGISTER's cost)."""
        nonce = self.make_nonce(now=now, salt=salt)
        tail = ", stale=true" if stale else ""
        texts = self._challenge_text
        return [f"{texts[a][0]}{nonce}{texts[a][1]}{tail}" for a in self._offer(offer)]

    def verify(
        self,
        credentials: DigestCredentials,
        *,
        ha1: str | None,
        method: str,
        request_uri: str,
        now: float,
        offer: Sequence[DigestAlgorithm] | None = None,
    ) -> DigestOutcome:
        """Check ``credentials`` for a request, given the stored HA1 of its user.

        ``ha1`` is the stored H(username:realm:password) for ``credentials.algorithm.base``, or
        None when the user is unknown: then a dummy HA1 takes its place and the same hashes run,
        so an unknown user is answered, and timed, like a wrong password. A request is recorded
        against its nonce only when its response is right, so guessing cannot burn a peer's nc.
        ``offer``: what this user was challenged with (default: every algorithm we offer); an
        answer in another one (or not its -sess variant) fails like a wrong password.
        """
        if credentials.realm != self._realm:
            return DigestOutcome.WRONG_REALM
        if not _same_uri(credentials.uri, request_uri):
            return DigestOutcome.WRONG_URI
        algorithm = credentials.algorithm
        # The dummy goes through the same steps as a stored HA1.
        key = (self._dummy_ha1[algorithm.base] if ha1 is None else ha1).lower()
        if len(key) != algorithm.hex_length or LHEX_RE.fullmatch(key) is None:
            raise ValueError("stored HA1 is not hex of the algorithm's digest length")
        issued_at = self.nonce_issued_at(credentials.nonce)
        current = (
            issued_at is not None
            and now - issued_at <= self._lifetime
            and issued_at - now <= MAX_NONCE_CLOCK_SKEW
            # opaque is echoed unchanged when present (RFC 7616 §3.4); old phones omit it.
            and (
                credentials.opaque is None
                or hmac.compare_digest(credentials.opaque.encode(), self._opaque.encode())
            )
        )
        expected = compute_response(
            algorithm=algorithm,
            ha1=key,
            nonce=credentials.nonce,
            method=method,
            uri=credentials.uri,
            qop=credentials.qop,
            nc=credentials.nc,
            cnonce=credentials.cnonce,
        )
        matches = hmac.compare_digest(expected.encode(), credentials.response.encode())
        accepted = (
            algorithm in self._accepted
            if offer is None
            else any(algorithm.base is choice.base for choice in offer)
        )
        if not (matches and ha1 is not None and accepted):
            return DigestOutcome.FAILED
        # RFC 2617 §3.2.1: stale only when the digest is valid for the (invalid) nonce.
        if not current or issued_at is None:
            return DigestOutcome.STALE
        return self._tracker.record(
            nonce=credentials.nonce, issued_at=issued_at, nc=credentials.nonce_count, now=now
        )


def _around(text: str, marker: str) -> tuple[str, str]:
    before, found, after = text.partition(marker)
    if not found or marker in after:
        raise ValueError("the challenge template must hold its nonce marker once")
    return before, after
