"""HTTP Digest authentication as SIP uses it (RFC 3261 §22, RFC 7616, RFC 2617, RFC 8760).

Server side: stateless nonces (issue time + HMAC under a server secret), verification against a
stored HA1 rather than a password, nonce-count replay rejection in a bounded table, and one code
path whether the user exists or not. Client side: parse a challenge and compute the answer (the line
gateway registers to the switch with it). Sans-I/O: the secret, the clock (``now``), the nonce salt
and the cnonce are all arguments.

A malformed ``Authorization``/``Proxy-Authorization`` value raises
:class:`~pbx.sip.errors.SipParseError` (status 400) from :func:`parse_credentials`; there is no
"malformed" verification outcome, because :meth:`DigestAuthenticator.verify` only ever sees
well-formed :class:`DigestCredentials`.
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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pbx.sip.errors import SipParseError

# Named limits: a credentials or challenge value longer than this, or with more parameters, is
# refused before any work is done on it.
MAX_AUTH_HEADER_LENGTH = 4096
MAX_AUTH_PARAMS = 32
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

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# nonce-count = "nc" EQUAL 8LHEX  (RFC 3261 §25.1; upper case tolerated, kept as sent for hashing)
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
_LHEX_RE = re.compile(r"[0-9a-f]+")
_BASE64URL_RE = re.compile(r"[A-Za-z0-9_-]+")
_WSP = " \t"
# Values that end an unquoted parameter value (tolerated in place of quoted-string).
_UNQUOTED_STOP = ',"' + _WSP


class DigestAlgorithm(enum.Enum):
    """The ``algorithm`` parameter values we implement (RFC 7616 §3.3, RFC 8760)."""

    MD5 = "MD5"
    MD5_SESS = "MD5-sess"
    SHA_256 = "SHA-256"
    SHA_256_SESS = "SHA-256-sess"

    @property
    def is_session(self) -> bool:
        """``-sess``: HA1 is rehashed with the nonce and cnonce (RFC 7616 §3.4.2)."""
        return self in (DigestAlgorithm.MD5_SESS, DigestAlgorithm.SHA_256_SESS)

    @property
    def base(self) -> DigestAlgorithm:
        """The non-session algorithm whose HA1 the store holds for this one."""
        if self is DigestAlgorithm.MD5_SESS:
            return DigestAlgorithm.MD5
        if self is DigestAlgorithm.SHA_256_SESS:
            return DigestAlgorithm.SHA_256
        return self

    @property
    def hash_name(self) -> str:
        return "md5" if self.base is DigestAlgorithm.MD5 else "sha256"

    @property
    def hex_length(self) -> int:
        """Length of a digest in lower-case hex (32 for MD5, 64 for SHA-256)."""
        return 32 if self.base is DigestAlgorithm.MD5 else 64

    @classmethod
    def from_token(cls, token: str) -> DigestAlgorithm | None:
        """The algorithm named by ``token`` (any case), or None if we do not implement it."""
        folded = token.lower()
        for algorithm in cls:
            if algorithm.value.lower() == folded:
                return algorithm
        return None


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


def _check_text(field: str, value: str, *, allow_empty: bool = True) -> None:
    """Refuse controls (header injection), lone surrogates (not UTF-8) and, if asked, ''."""
    if not allow_empty and not value:
        raise ValueError(f"{field} must not be empty")
    if _bad_char_index(value) is not None:
        raise ValueError(f"{field} contains a control character or a lone surrogate")


def _bad_char_index(value: str) -> int | None:
    for index, char in enumerate(value):
        code = ord(char)
        if (code < 0x20 and char != "\t") or code == 0x7F or 0xD800 <= code <= 0xDFFF:
            return index
    return None


def _quote(value: str) -> str:
    # quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE  (RFC 3261 §25.1)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestChallenge:
    """One ``WWW-Authenticate``/``Proxy-Authenticate`` Digest challenge (RFC 7616 §3.3).

    ``qop`` holds the offered qop-options in lower case; empty means an RFC 2069 server. A
    challenge that offers qop but not ``auth`` cannot be answered, so it cannot be built.
    """

    realm: str
    nonce: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    qop: tuple[str, ...] = ("auth",)
    opaque: str | None = None
    stale: bool = False

    def __post_init__(self) -> None:
        _check_text("realm", self.realm)
        _check_text("nonce", self.nonce, allow_empty=False)
        if self.opaque is not None:
            _check_text("opaque", self.opaque)
        for option in self.qop:
            if _TOKEN_RE.fullmatch(option) is None or option != option.lower():
                raise ValueError("qop options must be lower-case tokens")
        if self.qop and "auth" not in self.qop:
            raise ValueError("a challenge offering qop must offer qop=auth")

    def to_header_value(self) -> str:
        """The header value, e.g. ``Digest realm="pbx", nonce="..", algorithm=SHA-256, ..``."""
        parts = [f"realm={_quote(self.realm)}", f"nonce={_quote(self.nonce)}"]
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        parts.append(f"algorithm={self.algorithm.value}")
        if self.qop:
            parts.append(f"qop={_quote(','.join(self.qop))}")
        if self.stale:
            parts.append("stale=true")
        return "Digest " + ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class DigestCredentials:
    """One ``Authorization``/``Proxy-Authorization`` Digest answer (RFC 7616 §3.4).

    ``response`` is lower-case hex of the algorithm's length; ``qop`` is ``"auth"`` or None (an
    RFC 2069 answer, which carries no ``nc``); ``nc`` is the 8 hex digits exactly as sent, because
    they are hashed as sent.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: DigestAlgorithm = DigestAlgorithm.MD5
    cnonce: str | None = None
    qop: str | None = None
    nc: str | None = None
    opaque: str | None = None

    def __post_init__(self) -> None:
        _check_text("username", self.username, allow_empty=False)
        _check_text("realm", self.realm)
        _check_text("nonce", self.nonce, allow_empty=False)
        _check_text("uri", self.uri, allow_empty=False)
        for field, optional in (("cnonce", self.cnonce), ("opaque", self.opaque)):
            if optional is not None:
                _check_text(field, optional)
        if (
            len(self.response) != self.algorithm.hex_length
            or _LHEX_RE.fullmatch(self.response) is None
        ):
            raise ValueError("response must be lower-case hex of the algorithm's digest length")
        if self.qop is None:
            if self.nc is not None:
                raise ValueError("nc is only sent with qop (RFC 2617 §3.2.2)")
        elif self.qop != "auth":
            raise ValueError("qop must be 'auth' or None")
        elif self.cnonce is None or self.nc is None:
            raise ValueError("qop=auth requires cnonce and nc")
        if self.nc is not None and _NC_RE.fullmatch(self.nc) is None:
            raise ValueError("nc must be 8 hex digits")
        if self.algorithm.is_session and self.cnonce is None:
            raise ValueError("a -sess algorithm requires cnonce")

    @property
    def nonce_count(self) -> int | None:
        """``nc`` as a number, or None for an RFC 2069 answer."""
        return None if self.nc is None else int(self.nc, 16)

    def to_header_value(self) -> str:
        """The header value, in the parameter order of RFC 7616 §3.9.1."""
        parts = [
            f"username={_quote(self.username)}",
            f"realm={_quote(self.realm)}",
            f"nonce={_quote(self.nonce)}",
            f"uri={_quote(self.uri)}",
            f"response={_quote(self.response)}",
            f"algorithm={self.algorithm.value}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={_quote(self.cnonce)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        if self.opaque is not None:
            parts.append(f"opaque={_quote(self.opaque)}")
        return "Digest " + ", ".join(parts)


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


# --- the grammar (RFC 3261 §25.1, with the tolerance real phones need) ---------------------------


def _bad(what: str, problem: str) -> SipParseError:
    return SipParseError(f"Bad digest {what}: {problem}", status=400)


def _parse_quoted(value: str, start: int, what: str) -> tuple[str, int]:
    """Unescape the quoted-string opening at ``start``; return it and the index after it."""
    # quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F); controls are refused even escaped.
    out: list[str] = []
    index = start + 1
    while index < len(value):
        char = value[index]
        if char == '"':
            return "".join(out), index + 1
        if char == "\\":
            index += 1
            if index >= len(value):
                break
            char = value[index]
        out.append(char)
        index += 1
    raise _bad(what, "unterminated quoted-string")


def _skip_wsp(value: str, index: int) -> int:
    while index < len(value) and value[index] in _WSP:
        index += 1
    return index


def _match_token(value: str, index: int) -> tuple[str, int]:
    match = _TOKEN_RE.match(value, index)
    if match is None:
        return "", index
    return match.group(), match.end()


def _parse_digest_params(value: str, what: str, known: frozenset[str]) -> dict[str, str]:
    """``Digest`` LWS param *(COMMA param) into {lower-case name: unescaped value}.

    Tolerated: any whitespace around ``=`` and ``,``, empty list elements, quoted or unquoted
    values for any parameter. Refused: a repeated known parameter (RFC 7235 §2.1: at most once).
    Unknown parameters are ignored (RFC 7616 §3.3: auth-param is for extensions).
    """
    if len(value) > MAX_AUTH_HEADER_LENGTH:
        raise _bad(what, "header value too long")
    if _bad_char_index(value) is not None:
        raise _bad(what, "control character in header value")
    # credentials = ("Digest" LWS digest-response) / other-response  (RFC 3261 §25.1)
    scheme, index = _match_token(value, _skip_wsp(value, 0))
    if scheme.lower() != "digest":
        raise _bad(what, "scheme is not Digest")
    if index < len(value) and value[index] not in _WSP:
        raise _bad(what, "scheme is not Digest")
    params: dict[str, str] = {}
    count = 0
    while True:
        index = _skip_wsp(value, index)
        if index >= len(value):
            break
        if value[index] == ",":
            index += 1
            continue
        # auth-param = auth-param-name EQUAL ( token / quoted-string )
        name, index = _match_token(value, index)
        if not name:
            raise _bad(what, "expected a parameter name")
        index = _skip_wsp(value, index)
        if index >= len(value) or value[index] != "=":
            raise _bad(what, "expected '=' after a parameter name")
        index = _skip_wsp(value, index + 1)
        if index < len(value) and value[index] == '"':
            param_value, index = _parse_quoted(value, index, what)
        else:
            end = index
            while end < len(value) and value[end] not in _UNQUOTED_STOP:
                end += 1
            if end == index:
                raise _bad(what, "empty parameter value")
            param_value, index = value[index:end], end
        index = _skip_wsp(value, index)
        if index < len(value) and value[index] != ",":
            raise _bad(what, "expected ',' between parameters")
        count += 1
        if count > MAX_AUTH_PARAMS:
            raise _bad(what, "too many parameters")
        folded = name.lower()
        if folded in params:
            if folded in known:
                raise _bad(what, f"repeated {folded} parameter")
            continue
        params[folded] = param_value
    if not params:
        raise _bad(what, "no parameters")
    return params


_CREDENTIAL_PARAMS = frozenset(
    ("username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "opaque", "qop", "nc")
)
_CHALLENGE_PARAMS = frozenset(("realm", "nonce", "opaque", "algorithm", "qop", "stale", "domain"))


def _parse_algorithm(params: dict[str, str], what: str) -> DigestAlgorithm:
    # algorithm absent means MD5 (RFC 7616 §3.3)
    algorithm = DigestAlgorithm.from_token(params.get("algorithm", "MD5").strip())
    if algorithm is None:
        raise _bad(what, "unsupported algorithm")
    return algorithm


def parse_credentials(value: str) -> DigestCredentials:
    """Parse an ``Authorization``/``Proxy-Authorization`` value; total: raises only SipParseError.

    Missing required parameters, an unsupported algorithm or qop, a malformed ``nc`` or
    ``response`` and ``userhash=true`` (never offered) are all 400s.
    """
    what = "credentials"
    params = _parse_digest_params(value, what, _CREDENTIAL_PARAMS)
    for required in ("username", "realm", "nonce", "uri", "response"):
        if required not in params:
            raise _bad(what, f"missing {required}")
    if params.get("userhash", "false").strip().lower() == "true":
        raise _bad(what, "userhash is not supported")
    algorithm = _parse_algorithm(params, what)
    qop = params.get("qop")
    if qop is not None:
        qop = qop.strip().lower()
        if qop != "auth":
            raise _bad(what, "unsupported qop")
        if "nc" not in params or "cnonce" not in params:
            raise _bad(what, "qop=auth without nc and cnonce")
        if _NC_RE.fullmatch(params["nc"].strip()) is None:
            raise _bad(what, "nc is not 8 hex digits")
    response = params["response"].strip().lower()
    if len(response) != algorithm.hex_length or _LHEX_RE.fullmatch(response) is None:
        raise _bad(what, "response is not a digest of the algorithm's length")
    cnonce = params.get("cnonce")
    if algorithm.is_session and cnonce is None:
        raise _bad(what, "-sess algorithm without cnonce")
    try:
        return DigestCredentials(
            username=params["username"],
            realm=params["realm"],
            nonce=params["nonce"],
            uri=params["uri"],
            response=response,
            algorithm=algorithm,
            cnonce=cnonce,
            qop=qop,
            # nc without qop is meaningless to the hash (RFC 2617 §3.2.2): ignored
            nc=params["nc"].strip() if qop is not None else None,
            opaque=params.get("opaque"),
        )
    except ValueError:
        # Only empty username/nonce/uri reach here; everything else was checked above.
        raise _bad(what, "empty username, nonce or uri") from None


def parse_challenge(value: str) -> DigestChallenge:
    """Parse a ``WWW-Authenticate``/``Proxy-Authenticate`` value; total: raises only SipParseError.

    A challenge we cannot answer (unknown algorithm, qop without ``auth``) is refused, so a client
    can parse every offered header and keep the ones that work (see :func:`choose_challenge`).
    """
    what = "challenge"
    params = _parse_digest_params(value, what, _CHALLENGE_PARAMS)
    for required in ("realm", "nonce"):
        if required not in params:
            raise _bad(what, f"missing {required}")
    algorithm = _parse_algorithm(params, what)
    qop: tuple[str, ...] = ()
    if "qop" in params:
        # qop-options = "qop" EQUAL LDQUOT qop-value *("," qop-value) RDQUOT
        qop = tuple(o.strip().lower() for o in params["qop"].split(",") if o.strip())
        if any(_TOKEN_RE.fullmatch(option) is None for option in qop):
            raise _bad(what, "malformed qop options")
        if qop and "auth" not in qop:
            raise _bad(what, "no supported qop offered")
    try:
        return DigestChallenge(
            realm=params["realm"],
            nonce=params["nonce"],
            algorithm=algorithm,
            qop=qop,
            opaque=params.get("opaque"),
            stale=params.get("stale", "false").strip().lower() == "true",
        )
    except ValueError:
        raise _bad(what, "empty nonce") from None


# --- client side ---------------------------------------------------------------------------------


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
    return digest_uri == request_uri or _uri_key(digest_uri) == _uri_key(request_uri)


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
        _check_text("realm", realm)
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
        return hmac.new(self._secret, message, hashlib.sha256).digest()

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

    def challenges(self, *, now: float, salt: bytes, stale: bool = False) -> list[DigestChallenge]:
        """One challenge per offered algorithm, in preference order, sharing one nonce."""
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
            for algorithm in self._algorithms
        ]

    def challenge_values(self, *, now: float, salt: bytes, stale: bool = False) -> list[str]:
        """``WWW-Authenticate``/``Proxy-Authenticate`` values, one header each, SHA-256 first."""
        return [c.to_header_value() for c in self.challenges(now=now, salt=salt, stale=stale)]

    def verify(
        self,
        credentials: DigestCredentials,
        *,
        ha1: str | None,
        method: str,
        request_uri: str,
        now: float,
    ) -> DigestOutcome:
        """Check ``credentials`` for a request, given the stored HA1 of its user.

        ``ha1`` is the stored H(username:realm:password) for ``credentials.algorithm.base``, or
        None when the user is unknown: then a dummy HA1 takes its place and the same hashes run,
        so an unknown user is answered, and timed, like a wrong password. A request is recorded
        against its nonce only when its response is right, so guessing cannot burn a peer's nc.
        """
        if credentials.realm != self._realm:
            return DigestOutcome.WRONG_REALM
        if not _same_uri(credentials.uri, request_uri):
            return DigestOutcome.WRONG_URI
        algorithm = credentials.algorithm
        # The dummy goes through the same steps as a stored HA1.
        key = (self._dummy_ha1[algorithm.base] if ha1 is None else ha1).lower()
        if len(key) != algorithm.hex_length or _LHEX_RE.fullmatch(key) is None:
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
        if not (matches and ha1 is not None and algorithm in self._accepted):
            return DigestOutcome.FAILED
        # RFC 2617 §3.2.1: stale only when the digest is valid for the (invalid) nonce.
        if not current or issued_at is None:
            return DigestOutcome.STALE
        return self._tracker.record(
            nonce=credentials.nonce, issued_at=issued_at, nc=credentials.nonce_count, now=now
        )
