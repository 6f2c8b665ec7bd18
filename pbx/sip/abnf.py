"""Pieces of the SIP grammar (RFC 3261 §25.1) as named, compiled patterns.

Each pattern quotes the rule it implements. The parsers in ``uri``, ``headers``
and ``message`` build on these so the grammar is written once.

The grammar is ASCII: patterns spell out their classes (``[0-9]``, ``[ <tab>]``)
rather than the backslash-d and -s shorthands, which in Python also match other
scripts' digits and Unicode spaces; ``is_digits`` does the same for
``str.isdigit``, which is true for "²" (that ``int`` then refuses).
"""

from __future__ import annotations

import re

# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
TOKEN_RE = re.compile(TOKEN)

# Method = INVITEm / ACKm / ... / extension-method ; extension-method = token
METHOD_RE = re.compile(TOKEN)

# SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT
SIP_VERSION_RE = re.compile(r"SIP/([0-9]+)\.([0-9]+)", re.IGNORECASE)

# hostname = *( domainlabel "." ) toplabel [ "." ]
# domainlabel = alphanum / alphanum *( alphanum / "-" ) alphanum
HOSTNAME = (
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.?"
)
# IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT
IPV4 = r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}"
# IPv6reference = "[" IPv6address "]"  (validated further with ipaddress)
IPV6_REFERENCE = r"\[[0-9A-Fa-f:.]+\]"
HOST = rf"(?:{IPV6_REFERENCE}|{HOSTNAME})"
HOST_RE = re.compile(HOST)

# unreserved = alphanum / mark ; mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")"
# escaped = "%" HEXDIG HEXDIG
UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
ESCAPED = r"%[0-9A-Fa-f]{2}"
# user = 1*( unreserved / escaped / user-unreserved )
# user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
USER_RE = re.compile(rf"(?:[{UNRESERVED}&=+$,;?/]|{ESCAPED})+")
# password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," )
PASSWORD_RE = re.compile(rf"(?:[{UNRESERVED}&=+$,]|{ESCAPED})*")
# paramchar = param-unreserved / unreserved / escaped
# param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
PARAMCHARS_RE = re.compile(rf"(?:[{UNRESERVED}\[\]/:&+$]|{ESCAPED})+")
# hname/hvalue: hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
HNV_RE = re.compile(rf"(?:[{UNRESERVED}\[\]/?:+$]|{ESCAPED})*")

# quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE
# quoted-pair = "\" (%x00-09 / %x0B-0C / %x0E-7F)
QUOTED_STRING = r'"(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*"'
QUOTED_STRING_RE = re.compile(QUOTED_STRING)

# LWS = [*WSP CRLF] 1*WSP ; after unfolding, runs of SP and HTAB
WS = " \t"

# generic-param = token [ EQUAL gen-value ] ; gen-value = token / host / quoted-string
# (one parameter after the ";" separator, whitespace allowed around "=")
# (plus IPv6address without brackets: via-received = "received" EQUAL (IPv4address / IPv6address))
IPV6_ADDRESS = r"[0-9A-Fa-f.]*:[0-9A-Fa-f:.]*"
IPV6_ADDRESS_RE = re.compile(IPV6_ADDRESS)
GENERIC_PARAM_RE = re.compile(
    rf"[ \t]*({TOKEN})[ \t]*"
    rf"(?:=[ \t]*({QUOTED_STRING}|{IPV6_REFERENCE}|{IPV6_ADDRESS}|{TOKEN}))?[ \t]*"
)


def is_digits(text: str) -> bool:
    """True when ``text`` is 1*DIGIT in ASCII (what ``int`` may then read)."""
    return text.isdigit() and text.isascii()


def is_token(text: str) -> bool:
    """True when ``text`` is a whole RFC 3261 token."""
    return TOKEN_RE.fullmatch(text) is not None


def unquote(text: str) -> str:
    """The content of a quoted-string with quoted-pairs resolved (§25.1)."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        inner = text[1:-1]
        if "\\" not in inner:
            return inner
        out = []
        escaped = False
        for ch in inner:
            if escaped:
                out.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                out.append(ch)
        return "".join(out)
    return text


def quote(text: str) -> str:
    """A quoted-string holding ``text``, escaping backslash and double quote."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
