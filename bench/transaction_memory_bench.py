#!/usr/bin/env python3
"""What the transaction layer keeps of one call through the 32 s window, measured in process.

    python bench/transaction_memory_bench.py [--calls 2000]

One call as the switch's transactions see it in ``bench/call_bench.py`` (a B2BUA): the
caller's INVITE challenged (407, ACK: Confirmed), the authenticated INVITE (100, 180, 200:
Accepted), our INVITE to the callee (180, 200: Accepted), the caller's BYE (200: Completed)
and ours to the callee (200: Completed). The messages are parsed from wire bytes like the
real ones (``bench/messages/invite_typical.sip``), each call with its own branches, and
dropped once fed in, so what is left is what the layer alone holds: Python heap bytes by
tracemalloc, per call, with every transaction still in its waiting state (Timers I, J, K,
L, M not yet fired). Uses only the TransactionLayer API, so it runs on older builds too.
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from pathlib import Path

from pbx.sip.message import Request, Response, make_response, parse_message
from pbx.sip.transaction_layer import Incoming, TransactionLayer, server_key

HERE = Path(__file__).resolve().parent
INVITE = (HERE / "messages" / "invite_typical.sip").read_bytes()
CALLER = ("192.168.1.21", 5060)
CALLEE = ("192.168.1.22", 5060)


def _request(n: int, method: str, branch: str, *, seq: int = 1, out: bool = False) -> Request:
    text = INVITE.replace(b"z9hG4bK-524287-1---ed4a2a3bd3a5", f"z9hG4bK{branch}{n:08d}".encode())
    text = text.replace(b"ZTg4ZGY5MzA1NmU0ZjE4YzQ0ZDYxZjRmZjE4ZTVhMzE", f"call-{n:08d}".encode())
    text = text.replace(b"CSeq: 1 INVITE", f"CSeq: {seq} {method}".encode())
    if method != "INVITE":
        head, _, _ = text.partition(b"\r\n\r\n")
        head = head.replace(b"INVITE sip:", method.encode() + b" sip:", 1)
        head = head.replace(b"Content-Length: 187", b"Content-Length: 0")
        text = head + b"\r\n\r\n"
    if out:
        text = text.replace(b"192.168.1.21:5060;rport", b"192.168.1.10:5060;rport", 1)
    message = parse_message(text)
    assert isinstance(message, Request)
    return message


def _answer(request: Request, status: int, *, sdp: bool = False) -> Response:
    response = make_response(request, status, to_tag=f"t{request.call_id}")
    if sdp:
        body = INVITE.partition(b"\r\n\r\n")[2]
        headers = response.headers.with_added("Content-Type", "application/sdp")
        response = Response(status=status, reason=response.reason, headers=headers, body=body)
    return response


def _ack(invite: Request, response: Response) -> Request:
    text = bytes(invite).partition(b"\r\n\r\n")[0].replace(b"INVITE sip:", b"ACK sip:", 1)
    text = text.replace(b"INVITE\r\n", b"ACK\r\n").replace(b"Content-Length: 187", b"")
    text = text.replace(
        bytes(invite.headers.get("to") or "", "ascii"),
        bytes(response.headers.get("to") or "", "ascii"),
    )
    message = parse_message(text.rstrip(b"\r\n") + b"\r\nContent-Length: 0\r\n\r\n")
    assert isinstance(message, Request)
    return message


def one_call(layer: TransactionLayer, n: int, now: float) -> None:
    def received(message: Request | Response, source: tuple[str, int]) -> None:
        layer.receive(Incoming(message=message, source=source, reliable=False), now)

    first = _request(n, "INVITE", "a")
    received(first, CALLER)
    challenge = _answer(first, 407)
    layer.respond(server_key(first), challenge, now)
    received(_ack(first, challenge), CALLER)  # Confirmed (Timer I)
    invite = _request(n, "INVITE", "b", seq=2)
    received(invite, CALLER)
    for status in (100, 180):
        layer.respond(server_key(invite), _answer(invite, status), now)
    out = _request(n, "INVITE", "c", out=True)
    layer.send_request(out, CALLEE, now, reliable=False)
    for status in (180, 200):
        received(_answer(out, status, sdp=status == 200), CALLEE)  # Accepted (Timer M)
    layer.respond(server_key(invite), _answer(invite, 200, sdp=True), now)  # Accepted (L)
    bye = _request(n, "BYE", "d", seq=3)
    received(bye, CALLER)
    layer.respond(server_key(bye), _answer(bye, 200), now)  # Completed (Timer J)
    our_bye = _request(n, "BYE", "e", seq=3, out=True)
    layer.send_request(our_bye, CALLEE, now, reliable=False)
    received(_answer(our_bye, 200), CALLEE)  # Completed (Timer K)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    layer = TransactionLayer()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for n in range(args.calls):
        one_call(layer, n, 1.0)
    gc.collect()
    kept = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    per_call = kept / args.calls
    print(
        f"METRIC transaction_memory calls={args.calls} transactions={len(layer)} "
        f"kept_mb={kept / 1e6:.1f} bytes_per_call={per_call:.0f} "
        f"bytes_per_transaction={kept / max(1, len(layer)):.0f}"
    )


if __name__ == "__main__":
    main()
