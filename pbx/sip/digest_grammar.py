"""The Digest header grammar of SIP (RFC 3261 §25.1, RFC 7616 §3.3-§3.4, RFC 8760): the
``WWW-Authenticate``/``Proxy-Authenticate`` challenge and the ``Authorization``/
``Proxy-Authorization`` credentials as frozen dataclasses, parsed and written back.

Parsing is total and bounded: any text gives a value or :class:`~pbx.sip.errors.SipParseError`
(status 400), tolerant where phones are sloppy (whitespace, case, quoting) and strict where the
hash would change. The hashes and the server side are in :mod:`pbx.sip.auth`, the client side in
:mod:`pbx.sip.auth_client`.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from pbx.sip.errors import SipParseError

# Named limits: a credentials or challenge value longer than this, or with more parameters, is
# refused before any work is done on it.
MAX_AUTH_HEADER_LENGTH = 4096
MAX_AUTH_PARAMS = 32

# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# nonce-count = "nc" EQUAL 8LHEX  (RFC 3261 §25.1; upper case tolerated, kept as sent for hashing)
_NC_RE = re.compile(r"[0-9A-Fa-f]{8}")
LHEX_RE = re.compile(r"[0-9a-f]+")
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


def check_text(field: str, value: str, *, allow_empty: bool = True) -> None:
    """Refuse controls (header injection), lone surrogates (not UTF-8) and, if asked, ''."""
    if not allow_empty and not value:
        raise ValueError(f"{field} must not be empty")
    if _bad_char_index(value) is not None:
        raise ValueError(f"{field} contains a control character or a lone surrogate")


# Controls but HTAB, DEL, and lone surrogates (which cannot be encoded as UTF-8).
_BAD_CHAR_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")


def _bad_char_index(value: str) -> int | None:
    match = _BAD_CHAR_RE.search(value)
    return None if match is None else match.start()


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
        check_text("realm", self.realm)
        check_text("nonce", self.nonce, allow_empty=False)
        if self.opaque is not None:
            check_text("opaque", self.opaque)
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
        check_text("username", self.username, allow_empty=False)
        check_text("realm", self.realm)
        check_text("nonce", self.nonce, allow_empty=False)
        check_text("uri", self.uri, allow_empty=False)
        for field, optional in (("cnonce", self.cnonce), ("opaque", self.opaque)):
            if optional is not None:
                check_text(field, optional)
        if (
            len(self.response) != self.algorithm.hex_length
            or LHEX_RE.fullmatch(self.response) is None
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
    fast = _parse_params_fast(value, index, known)
    if fast is not None:
        return fast
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


# One well-formed auth-param and its separator: what every phone sends. Anything else takes
# the careful path above, which also words the error.
_PARAM_RE = re.compile(
    r"[ \t]*([A-Za-z0-9\-.!%*_+`'~]+)[ \t]*=[ \t]*"
    r"(?:\"((?:[^\"\\]|\\.)*)\"|([^,\" \t]+))[ \t]*(?:,|$)"
)
_QUOTED_PAIR_RE = re.compile(r"\\(.)")


def _parse_params_fast(value: str, index: int, known: frozenset[str]) -> dict[str, str] | None:
    """The common case in one regex per parameter; None sends it to the careful parser."""
    params: dict[str, str] = {}
    end = len(value)
    match_param = _PARAM_RE.match
    while index < end:
        match = match_param(value, index)
        if match is None:
            return None
        name, quoted, bare = match.groups()
        folded = name.lower()
        if folded in params or len(params) >= MAX_AUTH_PARAMS:
            return None  # repeats and overlong lists: let the careful parser decide
        if quoted is not None:
            params[folded] = _QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[folded] = bare
        index = match.end()
    return params or None


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


def is_digest_scheme(value: str) -> bool:
    """Whether credentials are Digest ones: RFC 3261 §25.1, ``credentials = ("Digest" LWS
    digest-response) / other-response``; another scheme is not ours to judge (RFC 4475 §3.3.7:
    a server that knows none of the schemes challenges as if there were no credentials)."""
    scheme = value.lstrip().split(None, 1)[0] if value.strip() else ""
    return scheme.lower() == "digest"


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
    if len(response) != algorithm.hex_length or LHEX_RE.fullmatch(response) is None:
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
