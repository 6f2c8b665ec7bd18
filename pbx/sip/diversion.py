"""Why a call rings where it rings: Diversion (RFC 5806) and History-Info (RFC 7044).

A forwarded INVITE carries the extension that forwarded it and the reason, so the phone that
rings can show "forwarded from 201 (busy)". Diversion is what most desk phones and trunks
read; History-Info is the standards-track successor, built here for peers that want it. The
entries are frozen values; ``parse_diversion(format_diversion(x)) == x``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import quote as percent_quote

from pbx.sip.abnf import TOKEN_RE, is_digits, quote
from pbx.sip.errors import SipParseError
from pbx.sip.headers import (
    NameAddress,
    format_params,
    parse_name_addr,
    split_comma_list,
)
from pbx.sip.uri import Param, SipUri, Uri


class DiversionReason(StrEnum):
    """The diversion-reason values RFC 5806 §4 names (other tokens are allowed too)."""

    UNKNOWN = "unknown"
    USER_BUSY = "user-busy"
    NO_ANSWER = "no-answer"
    UNAVAILABLE = "unavailable"
    UNCONDITIONAL = "unconditional"
    TIME_OF_DAY = "time-of-day"
    DO_NOT_DISTURB = "do-not-disturb"
    DEFLECTION = "deflection"
    FOLLOW_ME = "follow-me"
    OUT_OF_SERVICE = "out-of-service"
    AWAY = "away"


MAX_COUNTER = 99
"""diversion-counter and diversion-limit are 1*2DIGIT."""
_KNOWN = frozenset({"reason", "counter", "limit", "privacy", "screen"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Diversion:
    """One Diversion entry: who diverted the call, why, and how many diversions it stands for.

    ``reason``, ``privacy`` and ``screen`` hold the value as meant (a token, or the content of
    a quoted-string); ``extensions`` are any other parameters as written.
    """

    uri: Uri
    """The diverting party: the extension whose forwarding sent the call on."""
    display_name: str | None = None
    reason: str = DiversionReason.UNKNOWN
    counter: int = 1
    limit: int | None = None
    privacy: str | None = None
    screen: str | None = None
    extensions: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        if not 1 <= self.counter <= MAX_COUNTER:
            raise ValueError(f"a diversion counter is 1..{MAX_COUNTER}")
        if self.limit is not None and not 0 <= self.limit <= MAX_COUNTER:
            raise ValueError(f"a diversion limit is 0..{MAX_COUNTER}")

    def __str__(self) -> str:
        params: list[Param] = [("reason", _value(self.reason)), ("counter", str(self.counter))]
        if self.limit is not None:
            params.append(("limit", str(self.limit)))
        if self.privacy is not None:
            params.append(("privacy", _value(self.privacy)))
        if self.screen is not None:
            params.append(("screen", _value(self.screen)))
        params.extend(self.extensions)
        entry = NameAddress(display_name=self.display_name, uri=self.uri, params=tuple(params))
        return str(entry)


def _value(text: str) -> str:
    """gen-value: a token as it is, anything else as a quoted-string."""
    return text if TOKEN_RE.fullmatch(text) else quote(text)


def _two_digits(name: str, text: str | None) -> int | None:
    if text is None:
        return None
    if not is_digits(text) or len(text) > 2:
        raise SipParseError(f"Bad Diversion header: {name} must be one or two digits")
    return int(text)


def parse_diversion_entry(text: str) -> Diversion:
    """One entry: ``name-addr *(;diversion-params)``; SipParseError when it is malformed."""
    address = parse_name_addr(text, "Diversion")
    counter = _two_digits("counter", address.param("counter"))
    if counter == 0:
        raise SipParseError("Bad Diversion header: counter must be at least 1")
    extensions = tuple((k, v) for k, v in address.params if k.lower() not in _KNOWN)
    return Diversion(
        uri=address.uri,
        display_name=address.display_name,
        reason=address.param("reason") or DiversionReason.UNKNOWN,
        counter=1 if counter is None else counter,
        limit=_two_digits("limit", address.param("limit")),
        privacy=address.param("privacy"),
        screen=address.param("screen"),
        extensions=extensions,
    )


def parse_diversion(values: Iterable[str]) -> tuple[Diversion, ...]:
    """Every entry of the Diversion header fields (each may hold a comma-separated list),
    most recent diversion first as RFC 5806 orders them."""
    return tuple(
        parse_diversion_entry(part) for value in values for part in split_comma_list(value)
    )


def format_diversion(entries: Sequence[Diversion]) -> str:
    """One Diversion header value holding ``entries`` (most recent first)."""
    return ", ".join(str(entry) for entry in entries)


def total_diversions(entries: Iterable[Diversion]) -> int:
    """How many times the call was diverted before it reached us (the counters' sum)."""
    return sum(entry.counter for entry in entries)


def add_diversion(
    existing: Sequence[Diversion],
    *,
    uri: Uri,
    reason: str,
    display_name: str | None = None,
) -> tuple[Diversion, ...]:
    """The entries of a forwarded INVITE: ours first (one diversion), then those it had."""
    return (Diversion(uri=uri, display_name=display_name, reason=reason), *existing)


# -- History-Info (RFC 7044) -----------------------------------------------------------

CAUSES: dict[str, int] = {
    DiversionReason.UNCONDITIONAL: 302,
    DiversionReason.USER_BUSY: 486,
    DiversionReason.NO_ANSWER: 408,
    DiversionReason.UNAVAILABLE: 503,
    DiversionReason.DO_NOT_DISTURB: 480,
    DiversionReason.DEFLECTION: 487,
}
"""The RFC 4458 cause (redirecting reason) for each Diversion reason; others are 404."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One hi-entry: a URI the request was targeted to, its index, and how it came about."""

    uri: SipUri
    index: str
    """``1``, ``1.1``, ...: the position in the tree of retargetings (RFC 7044 §10.3)."""
    mp: str | None = None
    """Index of the entry this one was retargeted from, to a new user (a forward)."""
    rc: str | None = None
    """Index of the entry this one was retargeted from, the same user's contact."""

    def __str__(self) -> str:
        params: list[Param] = [("index", self.index)]
        if self.mp is not None:
            params.append(("mp", self.mp))
        if self.rc is not None:
            params.append(("rc", self.rc))
        return f"<{self.uri}>{format_params(params)}"


def forwarding_history(
    original: SipUri, target: SipUri, reason: str, *, prior: Sequence[HistoryEntry] = ()
) -> tuple[HistoryEntry, ...]:
    """History-Info for a forward from ``original`` to ``target``: the original's entry gains
    a Reason (RFC 7044 §9.4) and the target's carries the RFC 4458 ``cause`` and ``mp``. With
    ``prior`` entries (the request had History-Info, its last one being ``original``), the
    new entry continues below the last one."""
    cause = CAUSES.get(reason, 404)
    reason_header = ("Reason", percent_quote(f"SIP;cause={cause}", safe=""))
    last = prior[-1] if prior else HistoryEntry(uri=original, index="1")
    retargeted = replace(last, uri=replace(last.uri, headers=(*last.uri.headers, reason_header)))
    new = HistoryEntry(
        uri=target.with_param("cause", str(cause)), index=f"{last.index}.1", mp=last.index
    )
    return (*prior[:-1], retargeted, new)


def format_history_info(entries: Sequence[HistoryEntry]) -> str:
    return ", ".join(str(entry) for entry in entries)
