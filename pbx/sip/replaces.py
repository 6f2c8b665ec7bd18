"""The Replaces header (RFC 3891): naming a dialog that a new INVITE takes the place of.

An attended transfer's REFER carries it inside the Refer-To URI; a phone picking up another's
call sends it on an INVITE. The tags are written from the point of view of the UA that owns
the named dialog (§3: the to-tag is compared with *its* local tag), which is why the builder
and the matcher below take a DialogId seen from opposite ends. Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pbx.sip.abnf import WS, is_token
from pbx.sip.dialog import DialogId
from pbx.sip.errors import SipParseError
from pbx.sip.headers import Param, format_params, parse_params

MAX_REPLACES_LENGTH = 1024
"""A Replaces value longer than this is refused: a Call-ID and two tags never need more."""

# callid = word [ "@" word ]                                           (RFC 3261 §25.1)
# word   = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" /
#             "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALLID_RE = re.compile(rf"{_WORD}(?:@{_WORD})?")


@dataclass(frozen=True, slots=True, kw_only=True)
class Replaces:
    """One Replaces value: the dialog (Call-ID, to-tag, from-tag) and the early-only flag.

    ``extensions`` keeps generic-params we do not know, so a relayed value keeps its meaning.
    """

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False
    extensions: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        if _CALLID_RE.fullmatch(self.call_id) is None:
            raise SipParseError("Malformed Replaces header: bad call-id")
        if not (is_token(self.to_tag) and is_token(self.from_tag)):
            raise SipParseError("Malformed Replaces header: bad tag")

    @classmethod
    def naming(cls, own_dialog: DialogId, *, early_only: bool = False) -> Replaces:
        """The Replaces a party to ``own_dialog`` sends so that the *other* party of that
        dialog finds it (§4): its to-tag is our remote tag, its from-tag our local tag."""
        return cls(
            call_id=own_dialog.call_id,
            to_tag=own_dialog.remote_tag,
            from_tag=own_dialog.local_tag,
            early_only=early_only,
        )

    def matches(self, dialog: DialogId) -> bool:
        """§3: "The User Agent Server (UAS) matches the to-tag and from-tag parameters as if
        they were tags present in an incoming request. In other words, the to-tag parameter
        is compared to the local tag, and the from-tag parameter is compared to the remote
        tag." A Call-ID compares case-sensitively (RFC 3261 §20.8), tags too (§19.3)."""
        return (
            self.call_id == dialog.call_id
            and self.to_tag == dialog.local_tag
            and self.from_tag == dialog.remote_tag
        )

    def __str__(self) -> str:
        # (§6.1's own example puts from-tag before to-tag; the order carries no meaning.)
        flag = ";early-only" if self.early_only else ""
        return (
            f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{flag}"
            f"{format_params(self.extensions)}"
        )


# Replaces        = "Replaces" HCOLON callid *(SEMI replaces-param)       (RFC 3891 §6.1)
# replaces-param  = to-tag / from-tag / early-flag / generic-param
# to-tag          = "to-tag" EQUAL token
# from-tag        = "from-tag" EQUAL token
# early-flag      = "early-only"
# "A Replaces header field MUST contain exactly one to-tag and exactly one from-tag, as they
#  are required for unique dialog matching."
def parse_replaces(value: str) -> Replaces:
    """Parse one Replaces value; SipParseError (400) when it breaks §6.1."""
    if len(value) > MAX_REPLACES_LENGTH:
        raise SipParseError("Replaces header too long")
    text = value.strip(WS)
    call_id, semi, rest = text.partition(";")
    call_id = call_id.rstrip(WS)
    if _CALLID_RE.fullmatch(call_id) is None:
        raise SipParseError("Malformed Replaces header: bad call-id")
    params = parse_params(semi + rest, "Replaces") if semi else ()
    to_tags: list[str] = []
    from_tags: list[str] = []
    early_only = False
    extensions: list[Param] = []
    for name, param_value in params:
        key = name.lower()
        if key in ("to-tag", "from-tag"):
            if param_value is None or not is_token(param_value):
                raise SipParseError(f"Malformed Replaces header: bad {key}")
            (to_tags if key == "to-tag" else from_tags).append(param_value)
        elif key == "early-only":
            if param_value is not None:
                raise SipParseError("Malformed Replaces header: early-only takes no value")
            early_only = True
        else:
            extensions.append((name, param_value))
    if len(to_tags) != 1 or len(from_tags) != 1:
        raise SipParseError("Replaces header needs exactly one to-tag and one from-tag")
    return Replaces(
        call_id=call_id,
        to_tag=to_tags[0],
        from_tag=from_tags[0],
        early_only=early_only,
        extensions=tuple(extensions),
    )


def replaces_of_request(method: str, values: Sequence[str]) -> Replaces | None:
    """The Replaces of a received request (its header values), or None without one.

    §3: "If more than one Replaces header field is present in an INVITE, or if a Replaces
    header field is present in a request other than INVITE, the UAS MUST reject the request
    with a 400 Bad Request response."
    """
    if not values:
        return None
    if method != "INVITE":
        raise SipParseError(f"Replaces header in a {method[:20]} request")
    if len(values) > 1 or "," in values[0]:
        raise SipParseError("More than one Replaces header")
    return parse_replaces(values[0])


# ---------------------------------------------------------------------------
# What §3 tells the UAS to do with the dialog it matched


class ReplacedDialogState(enum.Enum):
    """What the UAS knows of the matched dialog, as far as §3 cares."""

    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplaceableDialog:
    """A dialog of ours as §3 judges it: its id seen from our side, its state, whether an
    INVITE made it, and whether we sent that INVITE (we are its UAC)."""

    id: DialogId
    state: ReplacedDialogState
    invite: bool = True
    initiated_here: bool


class ReplacesVerdict(enum.Enum):
    """The outcome of §3 for a new INVITE; ``status`` is the answer to it (None: go on)."""

    REPLACE_CONFIRMED = "replace-confirmed"  # accept; the replaced dialog gets a BYE
    REPLACE_EARLY = "replace-early"  # accept; the replaced early dialog (ours) gets a CANCEL
    NO_DIALOG = "no-dialog"
    NOT_INVITE_DIALOG = "not-invite-dialog"
    EARLY_NOT_OURS = "early-not-ours"
    TERMINATED = "terminated"
    CONFIRMED_BUT_EARLY_ONLY = "confirmed-but-early-only"
    NOT_AUTHORIZED = "not-authorized"

    @property
    def status(self) -> int | None:
        """The status code to answer the new INVITE with, or None when it replaces."""
        return _VERDICT_STATUS[self]

    @property
    def accepted(self) -> bool:
        return _VERDICT_STATUS[self] is None


_VERDICT_STATUS: dict[ReplacesVerdict, int | None] = {
    ReplacesVerdict.REPLACE_CONFIRMED: None,
    ReplacesVerdict.REPLACE_EARLY: None,
    ReplacesVerdict.NO_DIALOG: 481,
    ReplacesVerdict.NOT_INVITE_DIALOG: 481,
    ReplacesVerdict.EARLY_NOT_OURS: 481,
    ReplacesVerdict.TERMINATED: 603,
    ReplacesVerdict.CONFIRMED_BUT_EARLY_ONLY: 486,
    ReplacesVerdict.NOT_AUTHORIZED: 403,
}


def judge_replaces(
    replaces: Replaces, dialogs: Sequence[ReplaceableDialog], *, authorized: bool
) -> tuple[ReplacesVerdict, ReplaceableDialog | None]:
    """§3's rules in order, for a Replaces against the dialogs we have.

    ``authorized``: the new INVITE's sender may replace this dialog (§3: "the UA MUST verify
    that the initiator of the new INVITE is authorized to replace the matched dialog"; a 403
    otherwise) — who is, is the caller's policy. When several dialogs match (a forked
    INVITE), the last of ``dialogs`` is taken: §3 "SHOULD choose the dialog with the most
    recent activity", so pass them oldest activity first.

    This is the rule for an INVITE with Replaces that we receive. A REFER's embedded
    Replaces names the referrer's dialog with *us*; a B2BUA maps it to its other leg itself
    (and may accept an early dialog it is the UAS of: the semi-attended transfer), using
    ``Replaces.matches`` rather than this verdict.
    """
    matched = [dialog for dialog in dialogs if replaces.matches(dialog.id)]
    if not matched:
        # "If the Replaces header field matches no dialog, the UAS MUST return a 481"
        return ReplacesVerdict.NO_DIALOG, None
    dialog = matched[-1]
    if not dialog.invite:
        # "If the Replaces header field matches a dialog which was not created with an
        #  INVITE, the UAS MUST reject the request with a 481 response."
        return ReplacesVerdict.NOT_INVITE_DIALOG, dialog
    if dialog.state is ReplacedDialogState.TERMINATED:
        # "If the Replaces header field matches a dialog which has already terminated, the
        #  UA SHOULD decline the request with a 603 Declined response."
        return ReplacesVerdict.TERMINATED, dialog
    if dialog.state is ReplacedDialogState.EARLY and not dialog.initiated_here:
        # "If the Replaces header field matches an early dialog that was not initiated by
        #  this UA, it returns a 481 (Call/Transaction Does Not Exist) response to the new
        #  INVITE, and leaves the matched dialog alone."
        return ReplacesVerdict.EARLY_NOT_OURS, dialog
    if not authorized:
        return ReplacesVerdict.NOT_AUTHORIZED, dialog
    if dialog.state is ReplacedDialogState.CONFIRMED:
        if replaces.early_only:
            # "If the Replaces header field matches a confirmed dialog, it checks for the
            #  presence of the "early-only" flag ... If the flag is present, the UA MUST
            #  reject the request with a 486 Busy response."
            return ReplacesVerdict.CONFIRMED_BUT_EARLY_ONLY, dialog
        return ReplacesVerdict.REPLACE_CONFIRMED, dialog
    return ReplacesVerdict.REPLACE_EARLY, dialog
