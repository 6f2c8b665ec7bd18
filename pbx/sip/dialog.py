"""Dialogs (RFC 3261 §12): identity, state, and requests within a dialog.

A dialog is a frozen value; every function here takes one (and the message
that changes it, and ``now``) and returns the next one, so the B2BUA can keep
dialogs in a plain dict and a test can compare them with ``==``. The Via of a
new request comes from the caller, which owns the random branch.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from pbx.sip.errors import SipError
from pbx.sip.headers import NameAddress, Via
from pbx.sip.message import Request, Response, make_request
from pbx.sip.uri import SipUri, Uri

TARGET_REFRESH_METHODS = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})
"""Requests whose Contact replaces the remote target (§12.2; RFC 3311, 6665, 3515)."""


class DialogError(SipError):
    """A request that the dialog must refuse, with the status to answer (500, 481)."""


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


@dataclass(frozen=True, slots=True)
class DialogId:
    """§12: Call-ID, local tag and remote tag (an RFC 2543 peer's missing tag is "")."""

    call_id: str
    local_tag: str
    remote_tag: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialog:
    """The dialog state of §12.1: what a UA needs to send and accept requests in it.

    ``local`` and ``remote`` are the From/To values (with their tags) of requests
    we send; ``route_set`` is in the order our requests carry it; ``local_seq``
    and ``remote_seq`` are None while "empty".
    """

    id: DialogId
    state: DialogState
    is_uac: bool
    local: NameAddress
    remote: NameAddress
    remote_target: Uri
    route_set: tuple[NameAddress, ...] = ()
    local_seq: int | None = None
    remote_seq: int | None = None
    secure: bool = False
    created_at: float
    confirmed_at: float | None = None
    ended_at: float | None = None

    @property
    def call_id(self) -> str:
        return self.id.call_id

    @property
    def early(self) -> bool:
        return self.state is DialogState.EARLY

    @property
    def terminated(self) -> bool:
        return self.state is DialogState.TERMINATED


# ---------------------------------------------------------------------------
# Identity


def uac_dialog_id(response: Response) -> DialogId | None:
    """The id of the dialog a response belongs to, at the UAC (§12.1.2); None without a To tag."""
    remote_tag = response.to.tag
    if remote_tag is None:
        return None
    return DialogId(response.call_id, response.from_.tag or "", remote_tag)


def uas_dialog_id(request: Request) -> DialogId | None:
    """The id of the dialog a received request is in (§12.2.2); None outside a dialog."""
    local_tag = request.to.tag
    if local_tag is None:
        return None
    return DialogId(request.call_id, local_tag, request.from_.tag or "")


def creates_dialog(response: Response) -> bool:
    """§12.1: a 101-199 with a To tag makes an early dialog, a 2xx a confirmed one."""
    return 100 < response.status < 300 and response.to.tag is not None


# ---------------------------------------------------------------------------
# Creation (§12.1.1 UAS, §12.1.2 UAC)


def create_uac_dialog(request: Request, response: Response, now: float, *, tls: bool) -> Dialog:
    """The UAC's dialog from the request it sent and a dialog-creating response.

    ``tls`` says the request went over TLS: with a SIPS Request-URI that makes
    the dialog secure. The route set is the response's Record-Route reversed.
    """
    dialog_id = uac_dialog_id(response)
    if dialog_id is None or not creates_dialog(response):
        raise ValueError("only a 101-299 response with a To tag creates a dialog")
    confirmed = response.status >= 200
    return Dialog(
        id=dialog_id,
        state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
        is_uac=True,
        local=request.from_,
        remote=response.to,
        remote_target=_contact_uri(response, default=request.uri),
        route_set=tuple(reversed(response.record_routes)),
        local_seq=request.cseq.seq,
        remote_seq=None,
        secure=tls and request.uri.secure,
        created_at=now,
        confirmed_at=now if confirmed else None,
    )


def create_uas_dialog(request: Request, response: Response, now: float, *, tls: bool) -> Dialog:
    """The UAS's dialog from the request it received and the response it sends (with its tag).

    ``tls`` says the request arrived over TLS. The route set is the request's
    Record-Route in order; the remote target is its Contact.
    """
    local_tag = response.to.tag
    if local_tag is None or not creates_dialog(response):
        raise ValueError("only a 101-299 response with a To tag creates a dialog")
    contacts = request.contacts
    if not contacts:
        raise DialogError("Missing Contact header", status=400)
    confirmed = response.status >= 200
    return Dialog(
        id=DialogId(request.call_id, local_tag, request.from_.tag or ""),
        state=DialogState.CONFIRMED if confirmed else DialogState.EARLY,
        is_uac=False,
        local=response.to,
        remote=request.from_,
        remote_target=contacts[0].uri,
        route_set=tuple(request.record_routes),
        local_seq=None,
        remote_seq=request.cseq.seq,
        secure=tls and request.uri.secure,
        created_at=now,
        confirmed_at=now if confirmed else None,
    )


def _contact_uri(message: Request | Response, *, default: Uri) -> Uri:
    # A peer that leaves Contact out of a dialog-creating 1xx is reached where the
    # request went, rather than not at all.
    contacts = message.contacts
    return contacts[0].uri if contacts else default


# ---------------------------------------------------------------------------
# Receiving


def receive_request(dialog: Dialog, request: Request, now: float) -> Dialog:
    """§12.2.2: check and record a request received within ``dialog``.

    Raises DialogError(500) for a CSeq not above the last one (out of order)
    and DialogError(481) on a terminated dialog. ACK and CANCEL carry the CSeq
    of the request they belong to and are not ordered. A target refresh updates
    the remote target; a BYE ends the dialog.
    """
    if uas_dialog_id(request) != dialog.id:
        raise ValueError("the request is not within this dialog")
    if dialog.terminated:
        raise DialogError("Call/Transaction Does Not Exist", status=481)
    if request.method in ("ACK", "CANCEL"):
        return dialog
    seq = request.cseq.seq
    if dialog.remote_seq is not None and seq <= dialog.remote_seq:
        raise DialogError("CSeq out of order", status=500)
    remote_target = dialog.remote_target
    if request.method in TARGET_REFRESH_METHODS:
        remote_target = _contact_uri(request, default=remote_target)
    updated = replace(dialog, remote_seq=seq, remote_target=remote_target)
    return _end(updated, now) if request.method == "BYE" else updated


def receive_response(dialog: Dialog, response: Response, now: float) -> Dialog:
    """The UAC side of §12.1.2, §12.2.1.2 and §13.2.2.4 for a response in ``dialog``.

    A 2xx to the INVITE confirms an early dialog and recomputes its route set;
    a 2xx to a target refresh takes the new remote target; a 300-699 to the
    INVITE of an early dialog, a 481 or 408 to anything, or a response to our
    BYE ends it.
    """
    if uac_dialog_id(response) != dialog.id:
        raise ValueError("the response is not within this dialog")
    if dialog.terminated or response.status < 200:
        return dialog
    method = response.cseq.method
    if response.status in (408, 481) or method == "BYE":
        return _end(dialog, now)
    if response.status >= 300:
        return _end(dialog, now) if dialog.early and method == "INVITE" else dialog
    if dialog.early and method == "INVITE":
        return replace(
            dialog,
            state=DialogState.CONFIRMED,
            confirmed_at=now,
            route_set=tuple(reversed(response.record_routes)),
            remote_target=_contact_uri(response, default=dialog.remote_target),
        )
    if method in TARGET_REFRESH_METHODS and response.contacts:
        return replace(dialog, remote_target=response.contacts[0].uri)
    return dialog


def terminate(dialog: Dialog, now: float) -> Dialog:
    """End the dialog (BYE sent or received, a timeout, a 481...)."""
    return dialog if dialog.terminated else _end(dialog, now)


def _end(dialog: Dialog, now: float) -> Dialog:
    return replace(dialog, state=DialogState.TERMINATED, ended_at=now)


# ---------------------------------------------------------------------------
# Sending (§12.2.1.1)


def request_target(dialog: Dialog) -> tuple[Uri, tuple[str, ...]]:
    """The Request-URI and the Route header values of a request within ``dialog``.

    With an empty route set or a loose router first (``lr``), the Request-URI
    is the remote target and Route is the route set. A strict router first gets
    the request addressed to itself (without the parameters a Request-URI may
    not carry), and the remote target goes last in Route (§12.2.1.1).
    """
    routes = dialog.route_set
    if not routes or _loose(routes[0].uri):
        return dialog.remote_target, tuple(str(route) for route in routes)
    first = routes[0].uri
    if isinstance(first, SipUri):
        # §19.1.1 Table 1: no "method" parameter and no headers in a Request-URI.
        first = replace(first.without_param("method"), headers=())
    rest = tuple(str(route) for route in routes[1:])
    return first, (*rest, f"<{dialog.remote_target}>")


def _loose(uri: Uri) -> bool:
    return isinstance(uri, SipUri) and uri.loose_route


def next_request(
    dialog: Dialog,
    method: str,
    now: float,
    *,
    via: Via,
    contact: NameAddress | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
    initial_seq: int = 1,
) -> tuple[Dialog, Request]:
    """A new request within ``dialog`` and the dialog after sending it (§12.2.1.1).

    The local CSeq goes up by one (from ``initial_seq`` when still empty). A
    BYE ends the dialog as it is sent (§15.1.1); a callee must not send one
    on an early dialog (§15). ACK is built by ``build_ack``; CANCEL belongs to
    the transaction layer.
    """
    if method in ("ACK", "CANCEL"):
        raise ValueError(f"{method} is not a new request within a dialog")
    if dialog.terminated:
        raise ValueError("the dialog is terminated")
    if method == "BYE" and dialog.early and not dialog.is_uac:
        raise ValueError("a callee must not send BYE on an early dialog (§15)")
    seq = initial_seq if dialog.local_seq is None else dialog.local_seq + 1
    request = _build(dialog, method, seq, via, contact, headers, body, content_type)
    updated = replace(dialog, local_seq=seq)
    if method == "BYE":
        updated = _end(updated, now)
    return updated, request


def build_ack(
    dialog: Dialog,
    invite_seq: int,
    *,
    via: Via,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """§13.2.2.4: the UAC core's ACK for a 2xx, with the INVITE's CSeq number.

    Pass the INVITE's credentials (Authorization / Proxy-Authorization) in
    ``headers``; the local CSeq does not change.
    """
    return _build(dialog, "ACK", invite_seq, via, None, headers, body, content_type)


def _build(
    dialog: Dialog,
    method: str,
    seq: int,
    via: Via,
    contact: NameAddress | None,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    content_type: str | None,
) -> Request:
    uri, routes = request_target(dialog)
    return make_request(
        method,
        uri,
        via=via,
        from_=dialog.local,
        to=dialog.remote,
        call_id=dialog.call_id,
        cseq=seq,
        contact=contact,
        headers=[*(("Route", route) for route in routes), *headers],
        body=body,
        content_type=content_type,
    )
