"""The INVITE the switch sends to one registered contact, as an outgoing leg.

Shared by every application that rings phones (dial, transfer): the same headers, the same
From (the switch's host, the caller's number), the gateway's digits in the user part for a
call out through the line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from pbx.apps.context import Context
from pbx.calls.leg_outgoing import OutgoingLeg
from pbx.registrar.location import reach
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddress
from pbx.sip.message import make_request
from pbx.sip.uri import SipUri, parse_uri
from pbx.store.records import Binding
from pbx.transport.flow import Destination

ALLOW = "INVITE, ACK, CANCEL, BYE, UPDATE, INFO, PRACK, MESSAGE, OPTIONS, REFER, NOTIFY"


def fork_leg(
    ctx: Context,
    *,
    leg_id: str,
    binding: Binding,
    caller: str,
    display_name: str | None,
    call_id: str,
    from_tag: str,
    body: bytes,
    dial: str | None = None,
    max_forwards: int | None = None,
    headers: Iterable[tuple[str, str]] = (),
) -> OutgoingLeg | None:
    """An outgoing leg ringing ``binding`` (None when its contact does not parse)."""
    try:
        uri = parse_uri(binding.contact)
    except SipParseError:
        return None
    if dial is not None and isinstance(uri, SipUri):
        uri = replace(uri, user=dial)  # the gateway dials what the user part says
    host = ctx.local_host(binding.transport)
    request = make_request(
        "INVITE",
        uri,
        via=ctx.setup.new_via(binding.transport),
        from_=NameAddress(
            display_name=display_name,
            uri=SipUri(user=caller, host=host),
            params=(("tag", from_tag),),
        ),
        to=NameAddress(uri=SipUri(user=dial if dial is not None else binding.aor, host=host)),
        call_id=call_id,
        cseq=1,
        max_forwards=69 if max_forwards is None else max(0, max_forwards - 1),
        contact=ctx.setup.contact(binding.transport),
        headers=[
            *(("Route", hop) for hop in binding.path),
            ("Supported", "100rel, replaces"),
            ("Allow", ALLOW),
            ("User-Agent", ctx.setup.server),
            *headers,
        ],
        body=body,
        content_type="application/sdp",
    )
    host_port = reach(binding)
    return OutgoingLeg(
        id=leg_id,
        setup=ctx.setup,
        transport=binding.transport,
        reliable=binding.transport != "UDP",
        destination=Destination(transport=binding.transport, host=host_port[0], port=host_port[1]),
        invite=request,
    )
