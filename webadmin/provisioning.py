"""What a phone needs to register with the switch: plain-word settings, a QR code, config files.

Pure functions of an extension and the switch's address (no Flask, no database), so the
provisioning panel, the phones' config-file route and the tests share one source of truth.

QR codes: no vendor-neutral format exists for putting a SIP account in a QR code. Acrobits
(Groundwire, Cloud Softphone) wants ``csc:user:password@CLOUDID`` with an ID issued by its
cloud portal; Zoiper's QR codes go through its OEM portal with a provider ID; Linphone's
"scan QR code" (assistant, remote provisioning) takes an ``http(s)`` URL of an XML config file
and downloads it. So :func:`qr_payload` encodes that URL when the web admin serves
:func:`linphone_config` at one (the panel's QR code then configures Linphone in one scan),
and otherwise the plain-text settings of :func:`settings_text`, which any QR reader shows so
the user can copy them into any softphone.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from importlib import resources
from string import Template
from typing import Literal
from xml.sax.saxutils import escape as _xml_escape

import segno

Transport = Literal["udp", "tcp", "tls"]
Vendor = Literal["yealink", "grandstream"]

TRANSPORTS: tuple[Transport, ...] = ("udp", "tcp", "tls")
# Yealink (account.X.sip_server.Y.transport_type) and Grandstream (P130) number them alike.
_TRANSPORT_CODE: dict[Transport, int] = {"udp": 0, "tcp": 1, "tls": 2}

_HOSTNAME_RE = re.compile(
    r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
_USER_RE = re.compile(r"[A-Za-z0-9._~-]{1,32}")
_HEX12_RE = re.compile(r"[0-9a-f]{12}")
_MAC_GROUPS_RE = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")
_YEALINK_FILE_RE = re.compile(r"([0-9a-f]{12})\.cfg")
_GRANDSTREAM_FILE_RE = re.compile(r"cfg([0-9a-f]{12})(?:\.xml)?")

# Quotes too, so an escaped value is safe in an attribute as well as in an element.
_XML_ENTITIES = {'"': "&quot;", "'": "&apos;"}


def _check_text(field: str, value: str, *, allow_empty: bool = False) -> str:
    """Refuse what would break a config line or an XML element: a newline would let a name
    write its own Yealink keys, a control character makes the XML invalid."""
    if not value and not allow_empty:
        raise ValueError(f"{field} is empty")
    if not value.isprintable():
        raise ValueError(f"{field} may not contain line breaks or control characters")
    if value != value.strip():
        raise ValueError(f"{field} may not start or end with a space")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class SipAccount:
    """One extension as a phone sees it: user name = auth name = the number."""

    number: str
    display_name: str
    password: str

    def __post_init__(self) -> None:
        if not _USER_RE.fullmatch(self.number):
            raise ValueError(f"extension number {self.number!r} is not a SIP user name")
        _check_text("display name", self.display_name, allow_empty=True)
        _check_text("password", self.password)

    @property
    def label(self) -> str:
        """What a phone shows for the account: the name, or the number when there is none."""
        return self.display_name or self.number


@dataclass(frozen=True, slots=True, kw_only=True)
class SipServer:
    """Where phones find the switch: the address they can reach (not the bind address)."""

    host: str
    port: int = 5060
    transport: Transport = "udp"
    realm: str

    def __post_init__(self) -> None:
        if not _is_host(self.host):
            raise ValueError(f"{self.host!r} is neither an IP address nor a host name")
        if not 1 <= self.port <= 65535:
            raise ValueError(f"SIP port {self.port} is not between 1 and 65535")
        if self.transport not in TRANSPORTS:
            raise ValueError(f"transport {self.transport!r} is not one of {', '.join(TRANSPORTS)}")
        _check_text("realm", self.realm)

    @property
    def uri_host(self) -> str:
        """The host as written in a SIP URI or host:port (IPv6 in brackets, RFC 3261 §19.1.1)."""
        return f"[{self.host}]" if ":" in self.host else self.host

    @property
    def hostport(self) -> str:
        return f"{self.uri_host}:{self.port}"


def _is_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return _HOSTNAME_RE.fullmatch(host) is not None
    return True


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigFile:
    """A file to serve a phone: the name it asks for, the Content-Type and the text."""

    filename: str
    media_type: str
    text: str


# --- MAC addresses and file names ---------------------------------------------------------


def normalize_mac(text: str) -> str:
    """``00:15:65:AB:CD:EF``, ``00-15-65-ab-cd-ef`` or ``001565abcdef`` -> ``001565abcdef``."""
    candidate = text.strip().lower()
    if _MAC_GROUPS_RE.fullmatch(candidate):
        candidate = candidate.replace(candidate[2], "")
    if not _HEX12_RE.fullmatch(candidate):
        raise ValueError(
            f"{text!r} is not a MAC address: expected 12 hexadecimal digits, "
            "alone or in pairs separated by colons or dashes (e.g. 00:15:65:ab:cd:ef)"
        )
    return candidate


def yealink_filename(mac: str) -> str:
    return f"{normalize_mac(mac)}.cfg"


def grandstream_filename(mac: str) -> str:
    return f"cfg{normalize_mac(mac)}.xml"


def match_config_filename(filename: str) -> tuple[Vendor, str] | None:
    """Which vendor's per-phone file a request names, and for which MAC; None for any other
    file (the common ``y000000000000.cfg`` or ``cfg.xml`` a phone asks for first)."""
    name = filename.lower()
    if match := _YEALINK_FILE_RE.fullmatch(name):
        return "yealink", match.group(1)
    if match := _GRANDSTREAM_FILE_RE.fullmatch(name):
        return "grandstream", match.group(1)
    return None


# --- For a person --------------------------------------------------------------------------


def settings_rows(account: SipAccount, server: SipServer) -> list[tuple[str, str]]:
    """The settings a softphone asks for, in its own words, for a table on the page."""
    rows = [
        ("SIP server", server.host),
        ("Port", str(server.port)),
        ("Transport", server.transport.upper()),
        ("User name", account.number),
        ("Authentication user name", account.number),
        ("Password", account.password),
        ("Domain", server.host),
        ("Realm", server.realm),
    ]
    if account.display_name:
        rows.insert(0, ("Display name", account.display_name))
    return rows


def settings_text(account: SipAccount, server: SipServer) -> str:
    """The same settings as plain text: one ``Label: value`` a line."""
    rows = settings_rows(account, server)
    width = max(len(label) for label, _ in rows) + 1
    lines = [f"Extension {account.number}", ""]
    lines += [f"{label + ':':<{width}} {value}" for label, value in rows]
    return "\n".join(lines) + "\n"


# --- QR code -------------------------------------------------------------------------------


def qr_payload(
    account: SipAccount, server: SipServer, *, provisioning_url: str | None = None
) -> str:
    """The text the QR code carries: the Linphone provisioning URL when there is one (see the
    module docstring), otherwise the plain-text settings."""
    if provisioning_url is None:
        # Unpadded lines: every character makes the code denser and harder to scan.
        return "\n".join(f"{label}: {value}" for label, value in settings_rows(account, server))
    if not provisioning_url.startswith(("http://", "https://")):
        raise ValueError("a provisioning URL must start with http:// or https://")
    return _check_text("provisioning URL", provisioning_url)


def qr_svg(payload: str, *, scale: int = 4) -> str:
    """An inline ``<svg>`` (no XML declaration, no fixed size: CSS sizes it by its viewBox).

    Always a full QR code (never Micro QR, which phone cameras do not read), dark on light
    whatever the page's colour scheme, with the 4-module quiet zone scanners need.
    """
    code = segno.make_qr(payload, error="m")
    return code.svg_inline(
        scale=scale, border=4, dark="#000", light="#fff", omitsize=True, svgclass="qr"
    )


# --- Config files --------------------------------------------------------------------------


def _template(name: str) -> Template:
    source = resources.files("webadmin").joinpath("templates", "provisioning", name)
    return Template(source.read_text(encoding="utf-8"))


def _xml(value: str) -> str:
    return _xml_escape(value, _XML_ENTITIES)


def _quoted_string(value: str) -> str:
    """RFC 3261 §25.1 quoted-string for a display name."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def yealink_config(mac: str, account: SipAccount, server: SipServer) -> ConfigFile:
    """``<mac>.cfg`` for Yealink auto-provisioning (``#!version:1.0.0.1`` key = value format).

    Values run to the end of their line; :class:`SipAccount` refuses line breaks, so a name
    cannot add keys of its own.
    """
    text = _template("yealink.cfg").substitute(
        number=account.number,
        label=account.number,
        display_name=account.label,
        auth_name=account.number,
        user_name=account.number,
        password=account.password,
        host=server.host,
        port=server.port,
        transport=_TRANSPORT_CODE[server.transport],
    )
    return ConfigFile(filename=yealink_filename(mac), media_type="text/plain", text=text)


def grandstream_config(mac: str, account: SipAccount, server: SipServer) -> ConfigFile:
    """``cfg<mac>.xml`` for Grandstream auto-provisioning (``<gs_provision>`` with P-values)."""
    normalized = normalize_mac(mac)
    text = _template("grandstream.xml").substitute(
        number=account.number,
        mac=normalized,
        account_name=_xml(account.label),
        server=_xml(server.hostport),
        user_id=account.number,
        auth_id=account.number,
        password=_xml(account.password),
        display_name=_xml(account.display_name),
        transport=_TRANSPORT_CODE[server.transport],
    )
    return ConfigFile(
        filename=grandstream_filename(normalized), media_type="application/xml", text=text
    )


def linphone_config(account: SipAccount, server: SipServer) -> ConfigFile:
    """Linphone's remote-provisioning XML (lpconfig): what its QR scan downloads.

    Serve it at a URL with a short-lived token of its own (it carries the password) and put
    that URL in the QR code with :func:`qr_payload`.
    """
    identity = f"sip:{account.number}@{server.uri_host}"
    if account.display_name:
        identity = f"{_quoted_string(account.display_name)} <{identity}>"
    proxy = f"<sip:{server.hostport};transport={server.transport}>"
    text = _template("linphone.xml").substitute(
        number=account.number,
        reg_proxy=_xml(proxy),
        reg_identity=_xml(identity),
        realm=_xml(server.realm),
        username=account.number,
        password=_xml(account.password),
        domain=_xml(server.host),
    )
    return ConfigFile(
        filename=f"linphone-{account.number}.xml", media_type="application/xml", text=text
    )
