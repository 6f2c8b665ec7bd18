"""SIP and SIPS URIs (RFC 3261 §19.1) and other absolute URIs (tel:, urn:, ...).

A parsed URI keeps the text of each part as written (escapes included) so that
serializing it gives back the same characters; comparisons use ``key()``, which
applies the §19.1.4 rules (case-insensitive scheme and host, unescaping, the
parameters that must match).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from urllib.parse import unquote as percent_unquote

from pbx.sip.abnf import HNV_RE, HOSTNAME, PARAMCHARS_RE, PASSWORD_RE, USER_RE
from pbx.sip.errors import SipParseError

MAX_URI_LENGTH = 2048
"""Longer Request-URIs or header URIs are refused (414 for a Request-URI)."""

Param = tuple[str, str | None]

# absoluteURI = scheme ":" ( hier-part / opaque-part )
# scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
# (the rest is passed through: any visible ASCII but the name-addr delimiters < > ")
_ABSOLUTE_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*:[\x21\x23-\x3b\x3d\x3f-\x7e]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI; parts are kept as written."""

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str
    port: int | None = None
    params: tuple[Param, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    # -- parameters ---------------------------------------------------------
    def param(self, name: str) -> str | None:
        """The value of URI parameter ``name`` ("" for a flag), or None when absent."""
        lname = name.lower()
        for key, value in self.params:
            if key.lower() == lname:
                return "" if value is None else value
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(key.lower() == lname for key, _ in self.params)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """A copy with parameter ``name`` set (replacing an existing one)."""
        lname = name.lower()
        params = tuple(p for p in self.params if p[0].lower() != lname) + ((name, value),)
        return replace(self, params=params)

    def without_param(self, name: str) -> SipUri:
        lname = name.lower()
        return replace(self, params=tuple(p for p in self.params if p[0].lower() != lname))

    @property
    def transport(self) -> str | None:
        value = self.param("transport")
        return value.lower() if value else None

    @property
    def loose_route(self) -> bool:
        """The ``lr`` parameter of RFC 3261 §16.12 (a loose router)."""
        return self.has_param("lr")

    @property
    def secure(self) -> bool:
        return self.scheme == "sips"

    @property
    def host_bare(self) -> str:
        """The host without IPv6 brackets, lower-cased: what a socket wants."""
        host = self.host
        if host.startswith("["):
            host = host[1:-1]
        return host.lower()

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    def key(self) -> tuple[object, ...]:
        """A value equal for URIs that RFC 3261 §19.1.4 calls equivalent.

        User and password compare case-sensitively after unescaping; scheme and
        host case-insensitively; user, ttl, method, maddr and transport
        parameters must match when present in either; other parameters only
        when present in both (approximated here by ignoring them).
        """
        significant = {"user", "ttl", "method", "maddr", "transport"}
        params = tuple(
            sorted(
                (k.lower(), percent_unquote(v or "").lower())
                for k, v in self.params
                if k.lower() in significant
            )
        )
        headers = tuple(sorted((k.lower(), percent_unquote(v)) for k, v in self.headers))
        return (
            self.scheme,
            percent_unquote(self.user) if self.user is not None else None,
            percent_unquote(self.password) if self.password is not None else None,
            self.host_bare,
            self.port,
            params,
            headers,
        )

    def __str__(self) -> str:
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.host)
        if self.port is not None:
            out.append(f":{self.port}")
        for key, value in self.params:
            out.append(f";{key}" if value is None else f";{key}={value}")
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class AbsoluteUri:
    """Any other URI scheme (tel:, urn:, mailto:, http:), passed through as text."""

    scheme: str
    text: str

    def key(self) -> tuple[object, ...]:
        return (self.scheme, self.text)

    @property
    def secure(self) -> bool:
        return False

    def __str__(self) -> str:
        return self.text


Uri = SipUri | AbsoluteUri


def _split_params(text: str, whole: str) -> tuple[Param, ...]:
    # uri-parameters = *( ";" uri-parameter ) ; uri-parameter = pname [ "=" pvalue ]
    params: list[Param] = []
    for part in text.split(";")[1:]:
        name, eq, value = part.partition("=")
        if not name or PARAMCHARS_RE.fullmatch(name) is None:
            raise SipParseError(f"Bad URI parameter in {whole!r}")
        if eq:
            if not value or PARAMCHARS_RE.fullmatch(value) is None:
                raise SipParseError(f"Bad URI parameter value in {whole!r}")
            params.append((name, value))
        else:
            params.append((name, None))
    return tuple(params)


def _split_headers(text: str, whole: str) -> tuple[tuple[str, str], ...]:
    # headers = "?" header *( "&" header ) ; header = hname "=" hvalue
    headers: list[tuple[str, str]] = []
    for part in text.split("&"):
        name, eq, value = part.partition("=")
        if not name or not eq or HNV_RE.fullmatch(name) is None or HNV_RE.fullmatch(value) is None:
            raise SipParseError(f"Bad URI header in {whole!r}")
        headers.append((name, value))
    return tuple(headers)


_HOSTNAME_RE = re.compile(HOSTNAME)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(rf"{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}")
_PORT_MAX = 65535


def check_host(host: str, whole: str) -> None:
    """Raise SipParseError unless ``host`` is a hostname, IPv4address or IPv6reference."""
    if not host:
        raise SipParseError(f"Missing host in {whole!r}")
    if host[0] == "[":
        # (ipaddress also takes a "%zone" suffix, which IPv6reference has no room for)
        if host[-1] != "]" or "%" in host:
            raise SipParseError(f"Bad IPv6 reference in {whole!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise SipParseError(f"Bad IPv6 reference in {whole!r}") from None
        return
    if host[host.rfind(".") + 1 : host.rfind(".") + 2].isdigit():
        # A toplabel starts with a letter, so a last label starting with a digit
        # means an IPv4address.
        if _IPV4_RE.fullmatch(host) is None:
            raise SipParseError(f"Bad IPv4 address in {whole!r}")
    elif _HOSTNAME_RE.fullmatch(host) is None:
        raise SipParseError(f"Bad host in {whole!r}")


def parse_sip_uri(text: str) -> SipUri:
    """Parse a ``sip:``/``sips:`` URI; raise SipParseError when it breaks §25.1.

    Written with string searches rather than one big regular expression: this
    runs for every Request-URI, From, To and Contact, so it is on the hot path.
    """
    if len(text) > MAX_URI_LENGTH:
        raise SipParseError("URI too long", status=414)
    colon = text.find(":")
    scheme = text[:colon].lower()
    if colon < 0 or scheme not in ("sip", "sips"):
        raise SipParseError(f"Bad SIP URI {text[:80]!r}")
    # Neither parameters nor headers may contain "@", so the last "@" ends userinfo
    # (the user part itself may hold ";" and "?": sip:alice;day=tue@host).
    at = text.rfind("@")
    user = password = None
    if at >= 0:
        userinfo = text[colon + 1 : at]
        user, has_pw, pw = userinfo.partition(":")
        if not user or USER_RE.fullmatch(user) is None:
            raise SipParseError(f"Bad user part in {text[:80]!r}")
        if has_pw:
            if PASSWORD_RE.fullmatch(pw) is None:
                raise SipParseError(f"Bad password part in {text[:80]!r}")
            password = pw
        rest = text[at + 1 :]
    else:
        rest = text[colon + 1 :]
    headers: tuple[tuple[str, str], ...] = ()
    question = rest.find("?")
    if question >= 0:
        headers = _split_headers(rest[question + 1 :], text[:80])
        rest = rest[:question]
    params: tuple[Param, ...] = ()
    semi = rest.find(";")
    if semi >= 0:
        params = _split_params(rest[semi:], text[:80])
        rest = rest[:semi]
    port: int | None = None
    if rest.startswith("["):
        close = rest.find("]")
        host = rest[: close + 1] if close > 0 else rest
        port_text = rest[close + 1 :] if close > 0 else ""
        if port_text:
            if port_text[0] != ":":
                raise SipParseError(f"Bad host in {text[:80]!r}")
            port_text = port_text[1:]
        else:
            port_text = ""
            if close < 0:
                raise SipParseError(f"Bad IPv6 reference in {text[:80]!r}")
        has_port = bool(port_text) or rest[close + 1 : close + 2] == ":"
    else:
        host, has_port_sep, port_text = rest.partition(":")
        has_port = bool(has_port_sep)
    if has_port:
        if not (port_text.isdigit() and port_text.isascii()) or len(port_text) > 5:
            raise SipParseError(f"Bad port in {text[:80]!r}")
        port = int(port_text)
        if port > _PORT_MAX:
            raise SipParseError(f"Port out of range in {text[:80]!r}")
    check_host(host, text[:80])
    return SipUri(
        scheme=scheme,
        user=user,
        password=password,
        host=host,
        port=port,
        params=params,
        headers=headers,
    )


def parse_uri(text: str) -> Uri:
    """Parse any URI: SIP/SIPS in full, other schemes as opaque absolute URIs."""
    head = text[:5].lower()
    if head.startswith("sip:") or head.startswith("sips:"):
        return parse_sip_uri(text)
    if len(text) > MAX_URI_LENGTH:
        raise SipParseError("URI too long", status=414)
    if _ABSOLUTE_URI_RE.fullmatch(text) is None:
        raise SipParseError(f"Bad URI {text[:80]!r}")
    return AbsoluteUri(scheme=text.partition(":")[0].lower(), text=text)
