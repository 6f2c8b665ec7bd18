"""Header fields (RFC 3261 §7.3, §20): names, the field list, and typed values.

A message keeps its header fields as written, in order, as ``(name, value)``
pairs; the typed views (Via, name-addr, CSeq) are parsed from the text when a
layer asks for them. That keeps unknown headers intact for pass-through and
makes ``parse(bytes(m))`` keep every header.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from pbx.sip.abnf import (
    GENERIC_PARAM_RE,
    HOST,
    HOST_RE,
    IPV6_ADDRESS_RE,
    QUOTED_STRING_RE,
    TOKEN,
    TOKEN_RE,
    WS,
    is_digits,
    quote,
    unquote,
)
from pbx.sip.errors import SipParseError
from pbx.sip.uri import MAX_URI_LENGTH, Uri, check_host, parse_uri

Param = tuple[str, str | None]

# RFC 3261 §7.3.3 and the extension RFCs: compact form -> long form (lower case).
COMPACT_FORMS: dict[str, str] = {
    "a": "accept-contact",
    "b": "referred-by",
    "c": "content-type",
    "d": "request-disposition",
    "e": "content-encoding",
    "f": "from",
    "i": "call-id",
    "j": "reject-contact",
    "k": "supported",
    "l": "content-length",
    "m": "contact",
    "n": "identity-info",
    "o": "event",
    "r": "refer-to",
    "s": "subject",
    "t": "to",
    "u": "allow-events",
    "v": "via",
    "x": "session-expires",
    "y": "identity",
}

# How we spell the headers we write (the RFCs' own capitalisation).
CANONICAL_NAMES: dict[str, str] = {
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "www-authenticate": "WWW-Authenticate",
    "mime-version": "MIME-Version",
    "rack": "RAck",
    "rseq": "RSeq",
    "sip-etag": "SIP-ETag",
    "sip-if-match": "SIP-If-Match",
}

# Headers whose values may be comma-separated lists (RFC 3261 §7.3.1). Others,
# such as WWW-Authenticate or Date, contain commas that do not separate values.
LIST_HEADERS = frozenset(
    {
        "via",
        "contact",
        "route",
        "record-route",
        "path",
        "service-route",
        "allow",
        "supported",
        "require",
        "proxy-require",
        "unsupported",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow-events",
        "content-encoding",
        "content-language",
        "in-reply-to",
        "alert-info",
        "call-info",
        "error-info",
        "warning",
        "reply-to",
        "security-client",
        "security-server",
        "security-verify",
    }
)

_HOST_RE = HOST_RE

MAX_HEADER_FIELDS = 256
"""A message with more header fields than this is refused (bounds memory)."""


def header_key(name: str) -> str:
    """The lower-case long form of a header name: how fields are looked up."""
    low = name.lower()
    return COMPACT_FORMS.get(low, low)


def canonical_name(name: str) -> str:
    """How to spell a header we write: ``call-id`` -> ``Call-ID``, ``via`` -> ``Via``."""
    key = header_key(name)
    special = CANONICAL_NAMES.get(key)
    if special is not None:
        return special
    return "-".join(part.capitalize() for part in key.split("-"))


class Headers:
    """An immutable, ordered list of header fields that keeps names as written.

    Lookups accept any spelling, compact or long (``v`` finds ``Via``). The
    "with_"/"without" methods return new lists, so a message can be copied with
    a changed header without touching the original.
    """

    __slots__ = ("_fields", "_keys")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: tuple[tuple[str, str], ...] = tuple(fields)
        self._keys: tuple[str, ...] = tuple(header_key(name) for name, _ in self._fields)

    @classmethod
    def _from_parts(cls, fields: tuple[tuple[str, str], ...], keys: tuple[str, ...]) -> Headers:
        obj = cls.__new__(cls)
        obj._fields = fields
        obj._keys = keys
        return obj

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and header_key(name) in self._keys

    def get(self, name: str) -> str | None:
        """The value of the first field called ``name``, or None."""
        key = header_key(name)
        if key not in self._keys:  # the tuple scans run in C: lookups are the hot path
            return None
        return self._fields[self._keys.index(key)][1]

    def get_all(self, name: str) -> list[str]:
        """The values of every field called ``name``, one per header line."""
        key = header_key(name)
        keys = self._keys
        count = keys.count(key)
        if count == 0:
            return []
        if count == 1:
            return [self._fields[keys.index(key)][1]]
        return [self._fields[i][1] for i, k in enumerate(keys) if k == key]

    def values(self, name: str) -> list[str]:
        """Every value of ``name``, with comma-separated lists split (§7.3.1).

        Only headers whose grammar is a list are split: the commas of Date,
        WWW-Authenticate or an unknown header do not separate values.
        """
        split = header_key(name) in LIST_HEADERS
        out: list[str] = []
        for value in self.get_all(name):
            if split and "," in value:
                out.extend(split_comma_list(value))
            elif value:
                out.append(value)
        return out

    def count(self, name: str) -> int:
        key = header_key(name)
        return self._keys.count(key)

    def with_added(self, name: str, value: str, *, first: bool = False) -> Headers:
        """A copy with a field added at the end (or, with ``first``, before all others
        of the same name, e.g. a new top Via)."""
        key = header_key(name)
        if not first:
            return Headers._from_parts(self._fields + ((name, value),), self._keys + (key,))
        for i, k in enumerate(self._keys):
            if k == key:
                return Headers._from_parts(
                    self._fields[:i] + ((name, value),) + self._fields[i:],
                    self._keys[:i] + (key,) + self._keys[i:],
                )
        return Headers._from_parts(((name, value),) + self._fields, (key,) + self._keys)

    def without(self, name: str) -> Headers:
        """A copy with every field called ``name`` removed."""
        key = header_key(name)
        kept = [(f, k) for f, k in zip(self._fields, self._keys, strict=True) if k != key]
        return Headers._from_parts(tuple(f for f, _ in kept), tuple(k for _, k in kept))

    def without_first(self, name: str) -> Headers:
        """A copy with the first field called ``name`` removed (e.g. our own Via)."""
        key = header_key(name)
        for i, k in enumerate(self._keys):
            if k == key:
                return Headers._from_parts(
                    self._fields[:i] + self._fields[i + 1 :], self._keys[:i] + self._keys[i + 1 :]
                )
        return self

    def with_set(self, name: str, value: str) -> Headers:
        """A copy where ``name`` has exactly one field, ``value``, at the place of
        the first existing one (or at the end)."""
        key = header_key(name)
        fields: list[tuple[str, str]] = []
        keys: list[str] = []
        placed = False
        for field_, k in zip(self._fields, self._keys, strict=True):
            if k == key:
                if not placed:
                    fields.append((field_[0], value))
                    keys.append(k)
                    placed = True
                continue
            fields.append(field_)
            keys.append(k)
        if not placed:
            fields.append((name, value))
            keys.append(key)
        return Headers._from_parts(tuple(fields), tuple(keys))


# ---------------------------------------------------------------------------
# Splitting lists and parameters


def split_comma_list(value: str) -> list[str]:
    """Split a header value at commas that are outside quotes and angle brackets."""
    if '"' not in value and "<" not in value:
        return [part.strip(WS) for part in value.split(",") if part.strip(WS)]
    parts: list[str] = []
    start = 0
    in_quotes = False
    in_angle = False
    escaped = False
    for i, ch in enumerate(value):
        if in_quotes:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quotes = False
        elif ch == '"':
            in_quotes = True
        elif ch == "<":
            in_angle = True
        elif ch == ">":
            in_angle = False
        elif ch == "," and not in_angle:
            part = value[start:i].strip(WS)
            if part:
                parts.append(part)
            start = i + 1
    if in_quotes:
        raise SipParseError("Unterminated quoted string in header")
    tail = value[start:].strip(WS)
    if tail:
        parts.append(tail)
    return parts


def parse_params(text: str, context: str) -> tuple[Param, ...]:
    """Parse ``;name=value;flag`` (generic-param list, §25.1); values keep quotes."""
    if '"' not in text and "[" not in text:
        # Fast path: no quoted strings or IPv6 values, so ";" always separates.
        pieces = text.split(";")
        if pieces[0].strip(WS):
            raise SipParseError(f"Bad parameters in {context} header")
        out: list[Param] = []
        for piece in pieces[1:]:
            name, eq, value = piece.partition("=")
            name = name.strip(WS)
            if TOKEN_RE.fullmatch(name) is None:
                raise SipParseError(f"Bad parameters in {context} header")
            if eq:
                value = value.strip(WS)
                if (
                    TOKEN_RE.fullmatch(value) is None
                    and _HOST_RE.fullmatch(value) is None
                    and IPV6_ADDRESS_RE.fullmatch(value) is None
                ):
                    raise SipParseError(f"Bad parameters in {context} header")
                out.append((name, value))
            else:
                out.append((name, None))
        return tuple(out)
    params: list[Param] = []
    pos = 0
    length = len(text)
    while pos < length:
        if text[pos] != ";":
            if text[pos:].strip(WS) == "":
                break
            raise SipParseError(f"Bad parameters in {context} header")
        m = GENERIC_PARAM_RE.match(text, pos + 1)
        if m is None or m.end() == pos + 1:
            raise SipParseError(f"Bad parameters in {context} header")
        params.append((m.group(1), m.group(2)))
        pos = m.end()
    return tuple(params)


def format_params(params: Iterable[Param]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params)


def find_param(params: tuple[Param, ...], name: str) -> str | None:
    """A parameter's value ("" for a flag, quotes removed), or None when absent."""
    lname = name.lower()
    for key, value in params:
        if key.lower() == lname:
            return "" if value is None else unquote(value)
    return None


def set_param(params: tuple[Param, ...], name: str, value: str | None) -> tuple[Param, ...]:
    lname = name.lower()
    out = []
    placed = False
    for key, old in params:
        if key.lower() == lname:
            if not placed:
                out.append((key, value))
                placed = True
        else:
            out.append((key, old))
    if not placed:
        out.append((name, value))
    return tuple(out)


# ---------------------------------------------------------------------------
# Via (§20.42)

# via-parm = sent-protocol LWS sent-by *( SEMI via-params )
# sent-protocol = protocol-name SLASH protocol-version SLASH transport
# sent-by = host [ COLON port ]
_SENT_PROTOCOLS = {
    f"SIP/2.0/{transport}": ("SIP", "2.0", transport)
    for transport in ("UDP", "TCP", "TLS", "SCTP", "WS", "WSS")
}
_VIA_RE = re.compile(
    rf"[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]*/[ \t]*({TOKEN})[ \t]+({HOST})"
    rf"(?:[ \t]*:[ \t]*([0-9]{{1,5}}))?[ \t]*(;.*)?",
    re.DOTALL,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Via:
    """One Via hop: how and where the sender of a request wants its response."""

    protocol: str = "SIP/2.0"
    transport: str
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()

    @property
    def branch(self) -> str | None:
        return find_param(self.params, "branch")

    @property
    def received(self) -> str | None:
        return find_param(self.params, "received")

    @property
    def rport(self) -> int | bool | None:
        """RFC 3581: None when absent, True when requested (empty), else the port."""
        value = find_param(self.params, "rport")
        if value is None:
            return None
        if value == "":
            return True
        return int(value) if is_digits(value) else True

    @property
    def maddr(self) -> str | None:
        return find_param(self.params, "maddr")

    @property
    def host_bare(self) -> str:
        host = self.host
        return host[1:-1].lower() if host.startswith("[") else host.lower()

    def with_param(self, name: str, value: str | None) -> Via:
        return replace(self, params=set_param(self.params, name, value))

    def with_params(self, *pairs: tuple[str, str | None]) -> Via:
        """Several parameters set at once: one copy of the Via, not one per parameter."""
        params = self.params
        for name, value in pairs:
            params = set_param(params, name, value)
        return replace(self, params=params)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"{self.protocol}/{self.transport} {self.host}{port}{format_params(self.params)}"


def parse_via(value: str) -> Via:
    """Parse one via-parm; raise SipParseError on a malformed one."""
    # Fast path for the usual "SIP/2.0/UDP host:port;params" with no stray spaces.
    head, space, tail = value.partition(" ")
    known = _SENT_PROTOCOLS.get(head)
    if known is not None and " " not in tail and "[" not in tail:
        sent_by, semi, rest = tail.partition(";")
        host, colon, port = sent_by.partition(":")
        if not colon or (port.isdigit() and port.isascii() and len(port) <= 5):
            check_host(host, "Via")
            return _make_via(known[0], known[1], known[2], host, port or None, semi + rest)
    m = _VIA_RE.fullmatch(value)
    if m is None:
        raise SipParseError("Malformed Via header")
    name, version, transport, host, port, rest = m.groups()
    check_host(host, "Via")
    return _make_via(name, version, transport, host, port, (rest or "").rstrip())


def _make_via(
    name: str, version: str, transport: str, host: str, port: str | None, rest: str
) -> Via:
    port_num = int(port) if port else None
    if port_num is not None and port_num > 65535:
        raise SipParseError("Malformed Via header: port out of range")
    params = parse_params(rest, "Via") if rest else ()
    for key, val in params:
        lkey = key.lower()
        if lkey == "branch" and not val:
            raise SipParseError("Malformed Via header: empty branch")
        if lkey == "rport" and val is not None and not (is_digits(val) and int(val) <= 65535):
            raise SipParseError("Malformed Via header: bad rport")
    return Via(
        protocol=f"{name.upper()}/{version}",
        transport=transport.upper(),
        host=host,
        port=port_num,
        params=params,
    )


def parse_via_list(values: Iterable[str]) -> list[Via]:
    out: list[Via] = []
    for value in values:
        for part in split_comma_list(value) if "," in value else (value,):
            out.append(parse_via(part))
    return out


# ---------------------------------------------------------------------------
# name-addr / addr-spec (§20.10 Contact, §20.20 From, §20.39 To, Route, ...)

# display-name = *(token LWS) / quoted-string
_DISPLAY_TOKENS_RE = re.compile(rf"{TOKEN}(?:[ \t]+{TOKEN})*")


@dataclass(frozen=True, slots=True, kw_only=True)
class NameAddress:
    """A URI with an optional display name and header parameters (tag, expires, q...).

    ``bracketed`` records whether the URI was in angle brackets: without them
    (addr-spec), ``;param`` after the URI belongs to the header, not the URI
    (RFC 3261 §20.10), so the form must be kept to mean the same thing.
    """

    display_name: str | None = None
    uri: Uri
    params: tuple[Param, ...] = ()
    bracketed: bool = True

    @property
    def tag(self) -> str | None:
        return find_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return find_param(self.params, name)

    def with_param(self, name: str, value: str | None) -> NameAddress:
        return replace(self, params=set_param(self.params, name, value))

    def with_tag(self, tag: str) -> NameAddress:
        return self.with_param("tag", tag)

    def __str__(self) -> str:
        uri_text = str(self.uri)
        # A URI with ";", "?" or "," must be bracketed or it would change meaning.
        needs_brackets = (
            self.bracketed or self.display_name is not None or any(c in uri_text for c in ";?,")
        )
        if needs_brackets:
            name = ""
            if self.display_name is not None:
                name = quote(self.display_name) + " "
            return f"{name}<{uri_text}>{format_params(self.params)}"
        return f"{uri_text}{format_params(self.params)}"


def parse_name_addr(
    value: str, context: str = "address", uri_memo: dict[str, Uri] | None = None
) -> NameAddress:
    """Parse ``name-addr / addr-spec`` followed by header parameters (§20.10)."""
    text = value.strip(WS)
    if not text:
        raise SipParseError(f"Empty {context} header")
    display_name: str | None = None
    if text[0] == '"':
        # display-name = quoted-string: its end first, since it may hold "<" and ",".
        quoted = QUOTED_STRING_RE.match(text)
        if quoted is None:
            raise SipParseError(f"Malformed {context} header: bad display name")
        end = quoted.end()
        lt = text.find("<", end)
        if lt < 0 or (lt > end and text[end:lt].strip(WS)):
            raise SipParseError(f"Malformed {context} header: bad display name")
        display_name = unquote(text[:end])
    else:
        lt = text.find("<")
        if lt > 0:
            # display-name = *(token LWS)
            display = text[:lt].rstrip(WS)
            if _DISPLAY_TOKENS_RE.fullmatch(display) is None:
                raise SipParseError(f"Malformed {context} header: bad display name")
            display_name = display
    if lt >= 0:
        # name-addr = [ display-name ] LAQUOT addr-spec RAQUOT (no LWS inside <>)
        gt = text.find(">", lt)
        if gt < 0:
            raise SipParseError(f"Malformed {context} header: missing '>'")
        uri_text = text[lt + 1 : gt]
        rest = text[gt + 1 :]
        bracketed = True
    else:
        # addr-spec: the URI ends at the first ";", which starts header parameters;
        # a URI with ";", "?" or "," must be in name-addr form (§20).
        uri_text, semi, rest = text.partition(";")
        uri_text = uri_text.rstrip(WS)
        rest = semi + rest
        bracketed = False
        if "?" in uri_text or "," in uri_text:
            raise SipParseError(f"Malformed {context} header: URI needs angle brackets")
    if len(uri_text) > MAX_URI_LENGTH:
        raise SipParseError(f"URI in {context} header too long")
    uri = None if uri_memo is None else uri_memo.get(uri_text)
    if uri is None:
        try:
            uri = parse_uri(uri_text)
        except SipParseError as exc:
            raise SipParseError(f"Bad URI in {context} header: {exc.reason}") from None
        if uri_memo is not None:
            # The caller's memo of URIs already parsed in this message (URIs are immutable).
            uri_memo[uri_text] = uri
    params = parse_params(rest, context) if rest else ()
    return NameAddress(display_name=display_name, uri=uri, params=params, bracketed=bracketed)


def parse_name_addr_list(values: Iterable[str], context: str = "address") -> list[NameAddress]:
    out: list[NameAddress] = []
    for value in values:
        for part in split_comma_list(value) if "," in value else (value,):
            out.append(parse_name_addr(part, context))
    return out


# ---------------------------------------------------------------------------
# CSeq (§20.16)

_CSEQ_RE = re.compile(rf"[ \t]*([0-9]{{1,10}})[ \t]+({TOKEN})[ \t]*")
MAX_CSEQ = 2**31 - 1  # §8.1.1.5: the sequence number MUST be less than 2**31


@dataclass(frozen=True, slots=True, kw_only=True)
class CSeq:
    seq: int
    method: str

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def parse_cseq(value: str) -> CSeq:
    m = _CSEQ_RE.fullmatch(value)
    if m is None:
        raise SipParseError("Malformed CSeq header")
    seq = int(m.group(1))
    if seq > MAX_CSEQ:
        raise SipParseError("CSeq number out of range")
    return CSeq(seq=seq, method=m.group(2))


def parse_token_list(values: Iterable[str]) -> list[str]:
    """Option tags and method names: ``Require: 100rel, timer``."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip(WS)
            if part:
                out.append(part)
    return out


def parse_expires(value: str) -> int:
    """Expires / Min-Expires delta-seconds (§20.19); huge values are capped."""
    text = value.strip(WS)
    if not is_digits(text):
        raise SipParseError("Malformed Expires header")
    return min(int(text), 2**32 - 1)
