"""Server transport rules of RFC 3261 §18.2 and RFC 3581 (rport), without I/O.

A received request's top Via gets ``received`` (and, when asked, ``rport``)
so the response finds its way back through NAT; the response goes to the
address those parameters name, or back over the connection it came on.
"""

from __future__ import annotations

import ipaddress

from pbx.sip.headers import Via
from pbx.sip.message import Request, with_top_via
from pbx.transport.flow import Destination, Flow

DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "SCTP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}


def _same_ip(host: str, source: str) -> bool:
    if host == source:
        return True
    try:
        return ipaddress.ip_address(host) == ipaddress.ip_address(source)
    except ValueError:
        return False  # a domain name in sent-by: §18.2.1 says add received


def stamp_received(request: Request, flow: Flow) -> Request:
    """The request with ``received``/``rport`` added to its top Via (§18.2.1, RFC 3581 §4).

    ``received`` is added when sent-by differs from the packet's source address,
    and always when the client asked for ``rport``; ``rport`` then gets the
    source port. The request is returned unchanged when nothing needs adding,
    which is the common case on a LAN and keeps the hot path short.
    """
    top = request.top_via
    source_host, source_port = flow.remote
    wants_rport = top.rport is True
    if not wants_rport and _same_ip(top.host_bare, source_host):
        return request
    if wants_rport:
        stamped = top.with_params(("received", source_host), ("rport", str(source_port)))
    else:
        stamped = top.with_param("received", source_host)
    return with_top_via(request, stamped)


def response_destination(top_via: Via, flow: Flow | None) -> Destination:
    """Where a response goes (§18.2.2 with RFC 3581 §4).

    ``flow`` is the flow the request arrived on, when we still have it: over a
    stream the response goes back on that connection; over UDP to the source
    address and, when rport was asked for, the source port.
    """
    transport = top_via.transport
    if flow is not None and flow.reliable:
        return Destination(transport=flow.transport, host=flow.remote[0], port=flow.remote[1])
    maddr = top_via.maddr
    if maddr:
        return Destination(
            transport=transport,
            host=maddr,
            port=top_via.port or DEFAULT_PORTS.get(transport, 5060),
        )
    received = top_via.received
    rport = top_via.rport
    if received:
        if isinstance(rport, int) and rport is not True:
            port = rport
        elif rport is True and flow is not None:
            port = flow.remote[1]
        else:
            port = top_via.port or DEFAULT_PORTS.get(transport, 5060)
        return Destination(transport=transport, host=received, port=port)
    if flow is not None and rport is True:
        return Destination(transport=transport, host=flow.remote[0], port=flow.remote[1])
    return Destination(
        transport=transport,
        host=top_via.host_bare,
        port=top_via.port or DEFAULT_PORTS.get(transport, 5060),
    )
