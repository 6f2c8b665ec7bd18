"""The simulator's control protocol (handled in memory), then the real thing: the line on the
20 ms asyncio driver and the control server over loopback TCP, driven by the blocking client."""

from __future__ import annotations

import asyncio
import json
import socket
from collections import deque
from typing import Any

import pytest

from gateway_fxo.backends.sim import AsyncioTicker, SimulatedLine
from gateway_fxo.dsp.callerid import CallerIdReceiver
from gateway_fxo.dsp.dtmf_generate import generate_dtmf
from gateway_fxo.dsp.levels import to_pcm16
from gateway_fxo.line import FRAME_BYTES, LineEvent, RingStart, RingStop
from gateway_fxo.sim_control import (
    MAX_REQUEST_BYTES,
    SimControlClient,
    SimControlError,
    SimControlServer,
    start_control_server,
)

from .test_sim_harness import Harness


def server_for(h: Harness) -> SimControlServer:
    return SimControlServer(h.line)


def test_requests_in_memory() -> None:
    h = Harness()
    server = server_for(h)
    reply = server.handle({"op": "place_inbound_call", "number": "5551234", "name": "ACME CORP"})
    assert reply == {"ok": True}
    assert server.handle({"op": "state"})["state"]["ringing"] is True
    assert server.handle({"op": "dialled_digits"}) == {"ok": True, "digits": ""}
    assert server.handle({"op": "far_end_hangup"}) == {"ok": True}  # the caller gives up
    state = server.handle({"op": "state"})["state"]
    assert (state["phase"], state["ringing"], state["country"]) == ("idle", False, "US")


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        ([1, 2], "JSON object"),
        ({"op": "explode"}, "unknown op"),
        ({"no": "op"}, "unknown op"),
        ({"op": "far_end_answer"}, "no outbound call"),
        ({"op": "far_end_hangup", "signal": 5}, "signal"),
        ({"op": "far_end_hangup", "signal": ["smoke"]}, "hang-up signals"),
        ({"op": "place_inbound_call", "number": 5551234}, "number must be a string"),
        ({"op": "place_inbound_call", "rings": True}, "rings must be an integer"),
        ({"op": "place_inbound_call", "number": "1" * 21}, "at most 20"),
        ({"op": "place_inbound_call", "number": "55x", "standard": "dtmf"}, "DTMF CLIP"),
    ],
)
def test_bad_requests_get_ok_false(request_: Any, error: str) -> None:
    reply = server_for(Harness()).handle(request_)
    assert reply["ok"] is False and error in reply["error"]


def test_request_lines() -> None:
    server = server_for(Harness())
    assert json.loads(server.handle_line(b"{nope\n"))["ok"] is False
    assert json.loads(server.handle_line(b"\xff\n"))["ok"] is False
    assert json.loads(server.handle_line(b'{"op": "state"}\n'))["ok"] is True


def test_only_loopback() -> None:
    with pytest.raises(ValueError, match="loopback"):
        SimControlServer(Harness().line, host="0.0.0.0")
    SimControlServer(Harness().line, host="::1")


def test_real_driver_and_control_server_over_loopback() -> None:
    async def scenario() -> None:
        ticker = AsyncioTicker()
        line = SimulatedLine("US", ticker=ticker, number_length=3)
        events: list[LineEvent] = []
        frames: list[bytes] = []
        ringing = asyncio.Event()

        def on_event(event: LineEvent) -> None:
            events.append(event)
            ringing.set()

        line.on_event = on_event
        line.on_audio = frames.append
        server: SimControlServer | None = None
        client = None
        try:
            await line.open()
            server = await start_control_server(line, "127.0.0.1", 0)
            assert server.sockets and server.port > 0
            client = SimControlClient("127.0.0.1", server.port, timeout=2.0)

            # inbound: ring within a frame or two of the request, answer, hear the far party
            await asyncio.to_thread(client.place_inbound_call, "5551234", "ACME CORP")
            await asyncio.wait_for(ringing.wait(), 1.0)
            assert events == [RingStart()]
            state = await asyncio.to_thread(client.state)
            assert state["ringing"] and state["ring_on"] and not state["off_hook"]
            await line.off_hook()
            started = asyncio.get_running_loop().time()
            await asyncio.sleep(0.3)
            elapsed = asyncio.get_running_loop().time() - started
            assert events == [RingStart(), RingStop()]
            assert abs(len(frames) - elapsed / 0.02) <= 5  # a frame every 20 ms
            assert all(len(f) == FRAME_BYTES for f in frames)
            assert (await asyncio.to_thread(client.state))["in_call"]
            await asyncio.to_thread(client.far_end_hangup, "polarity")
            assert type(events[-1]).__name__ == "PolarityReversal"
            with pytest.raises(SimControlError, match="no answered call"):
                await asyncio.to_thread(client.far_end_hangup)
            await line.on_hook()

            # outbound: the digits the "gateway" plays are heard, the far end answers
            await line.off_hook()
            # Clocked by the line, as a sound card's full-duplex callback is: one frame sent
            # for each frame heard, so a busy machine cannot starve the line mid-digit.
            tone = generate_dtmf("911", lead_s=0.1, tail_s=0.1)
            pcm = to_pcm16(tone).tobytes()
            outgoing = deque(pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES))
            played = asyncio.Event()

            def play_next(frame: bytes) -> None:
                frames.append(frame)
                if outgoing:
                    line.send_audio(outgoing.popleft())
                else:
                    played.set()

            line.on_audio = play_next
            await asyncio.wait_for(played.wait(), 10.0)
            line.on_audio = frames.append
            assert await asyncio.to_thread(client.dialled_digits) == "911"
            assert (await asyncio.to_thread(client.state))["phase"] == "ringback"
            await asyncio.to_thread(client.far_end_answer)
            assert (await asyncio.to_thread(client.state))["in_call"]
            await asyncio.to_thread(client.line_voltage_lost)
            await asyncio.to_thread(client.line_voltage_restored)
            assert (await asyncio.to_thread(client.state))["phase"] == "dial_tone"
            await asyncio.to_thread(client.far_end_busy)  # for the number about to be dialled
            await line.on_hook()
            with pytest.raises(SimControlError, match="no outbound call to refuse"):
                await asyncio.to_thread(client.far_end_busy)

            # a request line over the limit closes that connection, not the server
            raw = await asyncio.to_thread(_send_raw, server.port, b"x" * (MAX_REQUEST_BYTES + 10))
            assert b"too long" in raw
            assert (await asyncio.to_thread(client.state))["country"] == "US"
        finally:
            if client is not None:
                client.close()
            if server is not None:
                server.close()
                await server.wait_closed()
            await line.close()
        assert ticker.ticks > 0
        count = len(frames)
        await asyncio.sleep(0.06)
        assert len(frames) == count  # closed: the driver stopped

    asyncio.run(asyncio.wait_for(scenario(), 10.0))


def _send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
        sock.sendall(data + b"\n")
        chunks = []
        while chunk := sock.recv(4096):
            chunks.append(chunk)
        return b"".join(chunks)


def test_client_against_a_server_in_memory_thread() -> None:
    """The client's caller ID arguments reach the line: the audio decodes to what was asked."""

    async def scenario() -> None:
        h = Harness()
        async with SimControlServer(h.line) as server:
            with SimControlClient(port=server.port) as client:
                await asyncio.to_thread(
                    client.place_inbound_call,
                    "5551234",
                    standard="bell202",
                    caller_id_format="sdmf",
                    datetime="03151430",
                    rings=2,
                )
        h.advance(7.0)
        receiver = CallerIdReceiver()
        [found] = receiver.push(h.audio()) + receiver.finish()
        assert (found.format, found.number, found.datetime) == ("sdmf", "5551234", "03151430")

    asyncio.run(asyncio.wait_for(scenario(), 10.0))


def test_only_a_simulated_line_has_a_control_server() -> None:
    class OtherCard:
        pass

    with pytest.raises(TypeError, match="OtherCard"):
        asyncio.run(start_control_server(OtherCard()))  # type: ignore[arg-type]
