"""The transport layer over real loopback sockets, in process (asyncio.run, no sleeps)."""

from __future__ import annotations

import asyncio

from pbx.sip.errors import SipParseError
from pbx.sip.message import Message, Response, make_response, parse_message
from pbx.transport.flow import Destination, Flow
from pbx.transport.layer import TransportLayer

REQUEST = (
    b"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK5\r\n"
    b"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:127.0.0.1>\r\nCall-ID: l1\r\n"
    b"CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
)


def ignore(_item: object, _flow: Flow) -> None:
    return None


def test_tcp_response_opens_a_new_connection_when_the_old_one_is_gone() -> None:
    """§18.2.2: no open connection to the client -> connect to the Via's address."""

    async def scenario() -> bytes:
        received: asyncio.Queue[bytes] = asyncio.Queue()

        async def client_listener(reader: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
            received.put_nowait(await reader.readuntil(b"\r\n\r\n"))

        server = await asyncio.start_server(client_listener, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        layer = TransportLayer(on_message=ignore, on_error=ignore)
        request = parse_message(REQUEST)
        assert not isinstance(request, Response)
        response = make_response(request, 200, to_tag="x")
        assert layer.send(response, Destination(transport="TCP", host="127.0.0.1", port=port))
        data = await asyncio.wait_for(received.get(), timeout=10)
        await layer.close()
        server.close()
        await server.wait_closed()
        return data

    data = asyncio.run(scenario())
    assert data.startswith(b"SIP/2.0 200 OK\r\n")


def test_udp_round_trip_and_parse_errors_reach_their_handlers() -> None:
    async def scenario() -> tuple[list[Message], list[SipParseError]]:
        messages: list[Message] = []
        errors: list[SipParseError] = []
        done = asyncio.Event()

        def on_message(message: Message, _flow: Flow) -> None:
            messages.append(message)
            done.set()

        def on_error(error: SipParseError, _flow: Flow) -> None:
            errors.append(error)

        layer = TransportLayer(on_message=on_message, on_error=on_error)
        host, port = await layer.listen_udp("127.0.0.1", 0)
        loop = asyncio.get_running_loop()
        sender, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(host, port)
        )
        sender.sendto(b"\r\n")  # keep-alive: neither a message nor an error
        sender.sendto(b"NOT SIP AT ALL")
        sender.sendto(REQUEST.replace(b"TCP", b"UDP"))
        await asyncio.wait_for(done.wait(), timeout=10)
        sender.close()
        await layer.close()
        return messages, errors

    messages, errors = asyncio.run(scenario())
    assert len(messages) == 1 and messages[0].call_id == "l1"
    assert len(errors) == 1 and errors[0].headers == ()  # garbage: nothing to answer with
