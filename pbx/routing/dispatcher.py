"""What the switch answers to a request it receives, decided without I/O.

The checks run in the order of RFC 3261 §8.2 (method, Require, URI scheme,
Max-Forwards), then the request goes to the service for its method. Services
register as they are built (the registrar, calls, MESSAGE); until one exists
for a method, the switch answers with the code that tells a phone the truth
about it. ``Capabilities`` is the one source for Allow / Accept / Supported,
so what the switch advertises always matches what it does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import AbsoluteUri
from pbx.transport.flow import Flow

# Methods of RFC 3261 and its extensions that we recognise (§8.2.1: a method we
# recognise but do not support gets 405; one we do not recognise gets 501).
KNOWN_METHODS = frozenset(
    {
        "INVITE",
        "ACK",
        "CANCEL",
        "BYE",
        "OPTIONS",
        "REGISTER",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "PUBLISH",
        "INFO",
        "REFER",
        "MESSAGE",
        "UPDATE",
    }
)

# Requests that only make sense inside a dialog (§12.2.2: no dialog -> 481).
DIALOG_ONLY_METHODS = frozenset({"BYE", "PRACK", "UPDATE", "INFO"})

Service = Callable[[Request, Flow | None], Response | None]
"""Handles one method, given the flow it came on; returns the response to send, or None
for none (an ACK, or a response the service sends later itself)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    """What this switch does today: the methods it serves, bodies, extensions."""

    allow: tuple[str, ...] = ("OPTIONS", "ACK", "CANCEL", "BYE")
    accept: tuple[str, ...] = ("application/sdp",)
    supported: tuple[str, ...] = ()
    server: str = "Switchboard"

    def allow_header(self) -> tuple[str, str]:
        return ("Allow", ", ".join(self.allow))


class RequestDispatcher:
    """Turns a request into the response the switch owes it (or None).

    ``new_tag`` makes To tags (randomness is injected, §19.3 wants 32 random
    bits at least). ``services`` maps a method to the layer that serves it.
    ``has_dialog`` says whether a request with a To tag belongs to a dialog we
    know; until calls exist, none does.
    """

    def __init__(
        self,
        *,
        capabilities: Capabilities,
        new_tag: Callable[[], str],
        services: Mapping[str, Service] | None = None,
        has_dialog: Callable[[Request], bool] | None = None,
    ) -> None:
        self._caps = capabilities
        self._new_tag = new_tag
        self._services = dict(services or {})
        self._has_dialog = has_dialog or (lambda _request: False)
        self._supported = frozenset(tag.lower() for tag in capabilities.supported)

    def handle(self, request: Request, flow: Flow | None = None) -> Response | None:
        method = request.method
        if method == "ACK":
            # An ACK is never answered (§17.2.1); one for a dialog we do not
            # know (a stray ACK to a 2xx) is absorbed.
            service = self._services.get("ACK")
            return service(request, flow) if service else None

        # §8.2.2.3: a Require we do not support -> 420 listing what we lack
        # (not for CANCEL, whose Require is that of the INVITE it cancels).
        if method != "CANCEL" and "require" in request.headers:
            missing = [
                t for t in request.option_tags("require") if t.lower() not in self._supported
            ]
            if missing:
                return self._reply(request, 420, headers=[("Unsupported", ", ".join(missing))])

        # §8.2.2.1: a Request-URI scheme we cannot serve -> 416.
        if isinstance(request.uri, AbsoluteUri) and request.uri.scheme != "tel":
            return self._reply(request, 416)

        service = self._services.get(method)
        if service is not None:
            return service(request, flow)

        if request.to.tag is not None and not self._has_dialog(request):
            # §12.2.2: an in-dialog request for a dialog we do not have.
            return self._reply(request, 481)
        if method == "OPTIONS":
            return self.options(request)
        max_forwards = request.max_forwards
        if max_forwards is not None and max_forwards == 0:
            return self._reply(request, 483)  # §16.3 step 3 (a B2BUA forwards too)
        if method == "CANCEL":
            return self._reply(request, 481)  # §9.2: no matching transaction
        if method in DIALOG_ONLY_METHODS:
            return self._reply(request, 481)  # §15.1.2 for BYE; same for the rest
        if method in ("INVITE", "MESSAGE", "REGISTER"):
            # No extension exists that the Request-URI could name yet (§10.3 step 3
            # for REGISTER, §8.2.2.1 for the others).
            return self._reply(request, 404)
        if method in KNOWN_METHODS:
            return self._reply(request, 405, headers=[self._caps.allow_header()])
        return self._reply(request, 501, headers=[self._caps.allow_header()])

    def options(self, request: Request) -> Response:
        """§11.2: 200 with what we allow, accept and support."""
        caps = self._caps
        return self._reply(
            request,
            200,
            headers=[
                caps.allow_header(),
                ("Accept", ", ".join(caps.accept)),
                ("Supported", ", ".join(caps.supported)),
            ],
        )

    def _reply(
        self, request: Request, status: int, *, headers: list[tuple[str, str]] | None = None
    ) -> Response:
        extra = [("Server", self._caps.server)]
        if headers:
            extra = headers + extra
        return make_response(request, status, to_tag=self._new_tag(), headers=extra)
