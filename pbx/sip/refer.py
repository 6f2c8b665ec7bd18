"""REFER (RFC 3515): Refer-To, Referred-By (RFC 3892), and the implicit subscription's NOTIFY.

A transfer key on a phone sends REFER in the call's dialog; its Refer-To names the target,
and for an attended transfer carries the consultation dialog as an escaped ``Replaces``
header inside the URI. The switch answers 202, then reports how the referred INVITE is doing
in NOTIFYs (``Event: refer;id=<REFER's CSeq>``, a ``Subscription-State`` and a
``message/sipfrag`` body holding one status line, RFC 3420). These are the values and their
grammar only: no I/O, no clock, every parser bounded and raising SipParseError (400).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote as percent_quote
from urllib.parse import unquote as percent_unquote

from pbx.sip.abnf import WS, is_digits, is_token
from pbx.sip.errors import SipParseError
from pbx.sip.headers import (
    NameAddress,
    Param,
    format_params,
    parse_name_addr,
    parse_params,
    split_comma_list,
)
from pbx.sip.replaces import Replaces, parse_replaces
from pbx.sip.status import reason_phrase
from pbx.sip.uri import SipUri, Uri

MAX_EMBEDDED_HEADERS = 16
"""A Refer-To URI with more ``?name=value`` headers than this is refused."""

MAX_SIPFRAG_SIZE = 4096
"""A sipfrag body larger than this is refused: a status line and a few headers fit in it."""

MAX_SIPFRAG_HEADERS = 32

SIPFRAG_CONTENT_TYPE = "message/sipfrag;version=2.0"
"""RFC 3515 §2.4.5: the NOTIFY body's type (RFC 3420 §3 gives the version parameter)."""

REFER_EVENT = "refer"

# hvalue = *( hnv-unreserved / unreserved / escaped )                 (RFC 3261 §25.1)
# hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"; unreserved = alphanum / mark
_HVALUE_SAFE = "-_.!~*'()[]/?:+$"


def escape_hvalue(text: str) -> str:
    """``text`` as a URI header value: everything but unreserved and hnv-unreserved escaped
    (so ``@ ; =`` of a Replaces become ``%40 %3B %3D``, as in RFC 3891 §6.1)."""
    return percent_quote(text, safe=_HVALUE_SAFE)


# ---------------------------------------------------------------------------
# Refer-To (RFC 3515 §2.1)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferTo:
    """The Refer-To value: whom to send a request to, and what to put in it.

    ``address`` is the value as parsed (display name, URI with its embedded headers, header
    params). ``target`` is the URI to INVITE (its embedded headers removed); ``replaces``
    the embedded Replaces (the attended transfer's consultation dialog), unescaped and
    parsed; ``embedded_headers`` the other embedded headers, unescaped (RFC 3261 §19.1.5:
    they go into the request made from the URI).
    """

    address: NameAddress
    target: Uri
    replaces: Replaces | None = None
    embedded_headers: tuple[tuple[str, str], ...] = ()

    @property
    def method(self) -> str:
        """The method the referee is asked to send: the URI's ``method`` parameter (RFC 3261
        §19.1.1), INVITE by default (RFC 3515 §2.4.2)."""
        uri = self.target
        value = uri.param("method") if isinstance(uri, SipUri) else None
        return value.upper() if value else "INVITE"

    def __str__(self) -> str:
        return str(self.address)


def refer_to(
    target: Uri, *, replaces: Replaces | None = None, display_name: str | None = None
) -> ReferTo:
    """The Refer-To naming ``target`` (and, for an attended transfer, the dialog the new
    INVITE replaces, embedded as ``?Replaces=<escaped value>``)."""
    uri = target
    if replaces is not None:
        if not isinstance(target, SipUri):
            raise ValueError("a Replaces can only be embedded in a sip: or sips: URI")
        uri = replace(target, headers=(("Replaces", escape_hvalue(str(replaces))),))
    address = NameAddress(display_name=display_name, uri=uri, bracketed=True)
    bare = replace(target, headers=()) if isinstance(target, SipUri) else target
    return ReferTo(address=address, target=bare, replaces=replaces)


# Refer-To = ("Refer-To" / "r") HCOLON ( name-addr / addr-spec ) *(SEMI generic-param)
#                                                              (RFC 3515 §2.1; §3 of 3261)
# The URI's headers: headers = "?" header *( "&" header ); header = hname "=" hvalue
def parse_refer_to(value: str) -> ReferTo:
    """Parse one Refer-To value; SipParseError (400) when it breaks the grammar or when its
    embedded Replaces does (RFC 3891 §6.1)."""
    address = parse_name_addr(value, "Refer-To")
    uri = address.uri
    if not isinstance(uri, SipUri) or not uri.headers:
        return ReferTo(address=address, target=uri)
    if len(uri.headers) > MAX_EMBEDDED_HEADERS:
        raise SipParseError("Too many headers in Refer-To URI")
    replaces: Replaces | None = None
    others: list[tuple[str, str]] = []
    for name, escaped in uri.headers:
        text = percent_unquote(escaped, errors="replace")
        if percent_unquote(name).lower() == "replaces":
            if replaces is not None:
                raise SipParseError("More than one Replaces in Refer-To URI")
            try:
                replaces = parse_replaces(text)
            except SipParseError as exc:
                raise SipParseError(f"Bad Replaces in Refer-To URI: {exc.reason}") from None
        else:
            others.append((percent_unquote(name), text))
    return ReferTo(
        address=address,
        target=replace(uri, headers=()),
        replaces=replaces,
        embedded_headers=tuple(others),
    )


def refer_to_of_request(values: Sequence[str]) -> ReferTo:
    """The one Refer-To of a received REFER (its header values, e.g. ``headers.get_all``).

    RFC 3515 §2.4.1: "An agent responding to a REFER method MUST return a 400 (Bad Request)
    if the request contained zero or more than one Refer-To header field values."
    """
    parts = [part for value in values for part in split_comma_list(value)]
    if not parts:
        raise SipParseError("REFER without a Refer-To header")
    if len(parts) > 1:
        raise SipParseError("More than one Refer-To value")
    return parse_refer_to(parts[0])


# ---------------------------------------------------------------------------
# Referred-By (RFC 3892 §3)

# sip-clean-msg-id = LDQUOT dot-atom "@" (dot-atom / host) RDQUOT
# dot-atom = atom *( "." atom )
# atom     = 1*( alphanum / "-" / "!" / "%" / "*" / "_" / "+" / "'" / "`" / "~" )
_ATOM = r"[A-Za-z0-9\-!%*_+'`~]+"
_DOT_ATOM = rf"{_ATOM}(?:\.{_ATOM})*"
_CLEAN_MSG_ID_RE = re.compile(rf'"{_DOT_ATOM}@(?:{_DOT_ATOM}|\[[0-9A-Fa-f:.]+\])"')


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferredBy:
    """Who asked for the request (the transferor), copied from the REFER onto the INVITE it
    triggers (RFC 3892 §3: the referee "MUST include" it when the REFER had one)."""

    address: NameAddress

    @property
    def cid(self) -> str | None:
        """The Content-ID of a Referred-By token body (RFC 3892 §3), quotes removed."""
        return self.address.param("cid")

    def __str__(self) -> str:
        return str(self.address)


def referred_by(address: NameAddress) -> ReferredBy:
    """A Referred-By naming ``address`` (its tag and other header parameters dropped: a From
    tag means nothing on another dialog)."""
    return ReferredBy(address=replace(address, params=()))


# Referred-By  =  ( "Referred-By" / "b" ) HCOLON referrer-uri
#                 *( SEMI (referredby-id-param / generic-param) )
# referrer-uri = ( name-addr / addr-spec )
# referredby-id-param = "cid" EQUAL sip-clean-msg-id                  (RFC 3892 §3)
def parse_referred_by(value: str) -> ReferredBy:
    address = parse_name_addr(value, "Referred-By")
    for name, param_value in address.params:
        if name.lower() == "cid" and (
            param_value is None or _CLEAN_MSG_ID_RE.fullmatch(param_value) is None
        ):
            raise SipParseError("Malformed Referred-By header: bad cid")
    return ReferredBy(address=address)


# ---------------------------------------------------------------------------
# Event (RFC 6665 §8.2.1, with RFC 3515 §2.4.6's id)

# event-type    = event-package *( "." event-template )
# event-package = token-nodot ; event-template = token-nodot
# token-nodot   = 1*( alphanum / "-" / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
_TOKEN_NODOT = r"[A-Za-z0-9\-!%*_+`'~]+"
_EVENT_TYPE_RE = re.compile(rf"{_TOKEN_NODOT}(?:\.{_TOKEN_NODOT})*")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """An Event value: the package (``refer``) and the ``id`` that tells subscriptions in one
    dialog apart (for REFER, the REFER's CSeq number, RFC 3515 §2.4.6)."""

    package: str
    id: str | None = None
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        if _EVENT_TYPE_RE.fullmatch(self.package) is None:
            raise SipParseError("Malformed Event header: bad event type")
        if self.id is not None and not is_token(self.id):
            raise SipParseError("Malformed Event header: bad id")

    def same_subscription(self, other: Event) -> bool:
        """RFC 6665 §8.2.1: packages compare case-insensitively, ids exactly (absent and
        absent match)."""
        return self.package.lower() == other.package.lower() and self.id == other.id

    def __str__(self) -> str:
        ident = "" if self.id is None else f";id={self.id}"
        return f"{self.package}{ident}{format_params(self.params)}"


def refer_event(refer_cseq: int) -> Event:
    """``Event: refer;id=<the REFER's CSeq number>``.

    RFC 3515 §2.4.6: for the second and later REFERs in a dialog the id "MUST" be there, and
    "MAY" be for the first; always sending it keeps every NOTIFY unambiguous.
    """
    return Event(package=REFER_EVENT, id=str(refer_cseq))


# Event       = ( "Event" / "o" ) HCOLON event-type *( SEMI event-param )
# event-param = generic-param / ( "id" EQUAL token )                  (RFC 6665 §8.2.1)
def parse_event(value: str) -> Event:
    text = value.strip(WS)
    package, semi, rest = text.partition(";")
    package = package.rstrip(WS)
    if _EVENT_TYPE_RE.fullmatch(package) is None:
        raise SipParseError("Malformed Event header: bad event type")
    params = parse_params(semi + rest, "Event") if semi else ()
    ident: str | None = None
    others: list[Param] = []
    for name, param_value in params:
        if name.lower() == "id":
            if ident is not None or param_value is None or not is_token(param_value):
                raise SipParseError("Malformed Event header: bad id")
            ident = param_value
        else:
            others.append((name, param_value))
    return Event(package=package, id=ident, params=tuple(others))


# ---------------------------------------------------------------------------
# Subscription-State (RFC 6665 §8.2.3)

SUBSCRIPTION_ACTIVE = "active"
SUBSCRIPTION_PENDING = "pending"
SUBSCRIPTION_TERMINATED = "terminated"


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionState:
    """Where the implicit subscription stands: ``active;expires=N`` while the referred
    request is in progress, ``terminated;reason=noresource`` with its final answer."""

    state: str
    expires: int | None = None
    reason: str | None = None
    retry_after: int | None = None
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        if not is_token(self.state) or (self.reason is not None and not is_token(self.reason)):
            raise SipParseError("Malformed Subscription-State header")

    @property
    def terminated(self) -> bool:
        return self.state.lower() == SUBSCRIPTION_TERMINATED

    def __str__(self) -> str:
        out = [self.state]
        if self.reason is not None:
            out.append(f";reason={self.reason}")
        if self.expires is not None:
            out.append(f";expires={self.expires}")
        if self.retry_after is not None:
            out.append(f";retry-after={self.retry_after}")
        return "".join(out) + format_params(self.params)


# Subscription-State   = "Subscription-State" HCOLON substate-value *( SEMI subexp-params )
# substate-value       = "active" / "pending" / "terminated" / extension-substate
# extension-substate   = token
# subexp-params        =   ("reason" EQUAL event-reason-value)
#                        / ("expires" EQUAL delta-seconds)
#                        / ("retry-after" EQUAL delta-seconds)
#                        / generic-param
# event-reason-value   = "deactivated" / "probation" / "rejected" / "timeout" / "giveup"
#                        / "noresource" / "invariant" / event-reason-extension
# event-reason-extension = token                                       (RFC 6665 §8.4)
def parse_subscription_state(value: str) -> SubscriptionState:
    text = value.strip(WS)
    state, semi, rest = text.partition(";")
    state = state.rstrip(WS)
    if not is_token(state):
        raise SipParseError("Malformed Subscription-State header")
    params = parse_params(semi + rest, "Subscription-State") if semi else ()
    fields: dict[str, str] = {}
    others: list[Param] = []
    for name, param_value in params:
        key = name.lower()
        if key in ("reason", "expires", "retry-after"):
            if key in fields or param_value is None:
                raise SipParseError(f"Malformed Subscription-State header: bad {key}")
            if key != "reason" and not is_digits(param_value):
                raise SipParseError(f"Malformed Subscription-State header: bad {key}")
            fields[key] = param_value
        else:
            others.append((name, param_value))
    return SubscriptionState(
        state=state,
        expires=_seconds(fields.get("expires")),
        reason=fields.get("reason"),
        retry_after=_seconds(fields.get("retry-after")),
        params=tuple(others),
    )


def _seconds(text: str | None) -> int | None:
    # delta-seconds = 1*DIGIT; capped like Expires (RFC 3261 §20.19)
    return None if text is None else min(int(text), 2**32 - 1)


# ---------------------------------------------------------------------------
# message/sipfrag (RFC 3420) holding a Status-Line (RFC 3515 §2.4.5)

# Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF        (RFC 3261 §25.1)
# Status-Code = 3DIGIT ; Reason-Phrase = *(reserved / unreserved / escaped
#               / UTF8-NONASCII / UTF8-CONT / SP / HTAB)
# (an empty Reason-Phrase whose SP is missing, "SIP/2.0 100", is taken too)
_STATUS_LINE_RE = re.compile(r"SIP/2\.0 ([1-6][0-9][0-9])(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
_HEADER_NAME_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class SipFrag:
    """A sipfrag that begins with a Status-Line: how the referred request is doing
    (``SIP/2.0 100 Trying``, ``SIP/2.0 180 Ringing``, ``SIP/2.0 200 OK``, a failure)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 699:
            raise SipParseError("sipfrag status out of range")
        if any(ch in self.reason for ch in "\r\n\x00"):
            raise SipParseError("sipfrag reason phrase has a line break")

    @property
    def final(self) -> bool:
        return self.status >= 200

    def __bytes__(self) -> bytes:
        # sipfrag = [ start-line ] *message-header [ CRLF [ message-body ] ]  (RFC 3420 §2)
        lines = [f"SIP/2.0 {self.status} {self.reason}\r\n"]
        lines.extend(f"{name}: {value}\r\n" for name, value in self.headers)
        return "".join(lines).encode("utf-8")


def status_frag(status: int, reason: str | None = None) -> SipFrag:
    """The sipfrag for a status, with the RFC's reason phrase unless one is given."""
    return SipFrag(status=status, reason=reason if reason is not None else reason_phrase(status))


def parse_sipfrag(body: bytes) -> SipFrag:
    """The Status-Line (and any header lines) of a REFER NOTIFY's body.

    RFC 3515 §2.4.5: "The body of a NOTIFY MUST begin with a SIP Response Status-Line";
    a body that does not is refused. The CRLF after the last line may be missing (some
    phones omit it); a body part after the empty line is ignored.
    """
    if len(body) > MAX_SIPFRAG_SIZE:
        raise SipParseError("sipfrag body too large")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise SipParseError("sipfrag body is not UTF-8") from None
    lines = text.replace("\r\n", "\n").split("\n")
    match = _STATUS_LINE_RE.fullmatch(lines[0])
    if match is None:
        raise SipParseError("sipfrag does not begin with a SIP/2.0 Status-Line")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line.strip(WS):
            break
        if line[0] in WS and headers:  # a folded line continues the previous header
            name, value = headers[-1]
            headers[-1] = (name, f"{value} {line.strip(WS)}")
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(WS)
        if not colon or _HEADER_NAME_RE.fullmatch(name) is None:
            raise SipParseError("Malformed header line in sipfrag")
        headers.append((name, value.strip(WS)))
        if len(headers) > MAX_SIPFRAG_HEADERS:
            raise SipParseError("Too many headers in sipfrag")
    return SipFrag(status=int(match.group(1)), reason=match.group(2) or "", headers=tuple(headers))


def is_sipfrag(content_type: str | None) -> bool:
    """A Content-Type naming message/sipfrag (parameters, such as version, ignored)."""
    if content_type is None:
        return False
    return content_type.partition(";")[0].strip(WS).lower() == "message/sipfrag"


# ---------------------------------------------------------------------------
# The NOTIFY of the implicit subscription (RFC 3515 §2.4.4 - §2.4.7)

REFER_SUBSCRIPTION_SECONDS = 60
"""How long the switch keeps a REFER's implicit subscription: the referred INVITE gets its
final answer well inside it (RFC 3515 §2.4.6 leaves the duration to the notifier)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferNotify:
    """What a NOTIFY about a REFER carries beyond a request in the dialog: its Event,
    Subscription-State, and sipfrag body. The dialog layer supplies the rest."""

    event: Event
    subscription_state: SubscriptionState
    frag: SipFrag

    @property
    def body(self) -> bytes:
        return bytes(self.frag)

    @property
    def content_type(self) -> str:
        return SIPFRAG_CONTENT_TYPE

    def header_fields(self) -> tuple[tuple[str, str], ...]:
        """Event and Subscription-State, as ``make_request(headers=...)`` takes them
        (Content-Type comes from ``content_type``)."""
        return (
            ("Event", str(self.event)),
            ("Subscription-State", str(self.subscription_state)),
        )


def refer_notify(
    refer_cseq: int,
    status: int,
    reason: str | None = None,
    *,
    expires: int = REFER_SUBSCRIPTION_SECONDS,
) -> ReferNotify:
    """The NOTIFY that reports the referred request's ``status``.

    A provisional status keeps the subscription ``active;expires=<what is left>``; a final
    one (2xx or a failure) ends it ``terminated;reason=noresource``, as RFC 3515 §2.4.7's
    example does: there is nothing left to report.
    """
    frag = status_frag(status, reason)
    if frag.final:
        state = SubscriptionState(state=SUBSCRIPTION_TERMINATED, reason="noresource")
    else:
        state = SubscriptionState(state=SUBSCRIPTION_ACTIVE, expires=max(0, expires))
    return ReferNotify(event=refer_event(refer_cseq), subscription_state=state, frag=frag)


def refer_status_of_notify(
    event_value: str | None, state_value: str | None, content_type: str | None, body: bytes
) -> tuple[Event, SubscriptionState, SipFrag]:
    """The three pieces of a received NOTIFY about a REFER (when the switch is the one that
    referred), each checked; SipParseError (400) for one that is missing or malformed."""
    if event_value is None:
        raise SipParseError("NOTIFY without an Event header")
    event = parse_event(event_value)
    if event.package.lower() != REFER_EVENT:
        raise SipParseError("NOTIFY is not about a REFER")
    if state_value is None:
        raise SipParseError("NOTIFY without a Subscription-State header")
    state = parse_subscription_state(state_value)
    if not is_sipfrag(content_type):
        raise SipParseError("REFER NOTIFY body is not message/sipfrag")
    return event, state, parse_sipfrag(body)
