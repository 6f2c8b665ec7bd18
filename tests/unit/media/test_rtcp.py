"""RTCP compound packets (RFC 3550 §6): fixtures byte for byte, each packet type, padding, the
parser on random bytes and round trips of generated compounds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.media.rtcp import (
    CNAME,
    TOOL,
    Bye,
    OpaqueRtcp,
    ReceiverReport,
    ReportBlock,
    RtcpCompound,
    RtcpError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    parse_compound,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "rtp"

BLOCK = ReportBlock(
    ssrc=0xDEADBEEF,
    fraction_lost=3,
    cumulative_lost=17,
    highest_sequence=(1 << 16) | 1200,
    jitter=42,
    last_sr=0x8A3B1234,
    delay_since_last_sr=98304,
)


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def test_sender_report_with_a_block_and_cname() -> None:
    data = fixture("rtcp_sr_sdes.bin")
    # V=2 RC=1 PT=200 length 12 words-1 | SSRC
    assert data[:8] == bytes.fromhex("81c8000c1a2b3c4d")
    compound = parse_compound(data)
    sr, sdes = compound.packets
    assert isinstance(sr, SenderReport) and isinstance(sdes, SourceDescription)
    assert sr.ssrc == 0x1A2B3C4D
    assert sr.ntp_timestamp >> 32 == 3945000000
    assert (sr.rtp_timestamp, sr.packet_count, sr.octet_count) == (3405699582, 50, 8000)
    assert sr.reports == (BLOCK,)
    assert sdes.chunks == (
        SdesChunk(ssrc=0x1A2B3C4D, items=((CNAME, b"desk-phone-201@192.168.1.41"),)),
    )
    assert bytes(compound) == data


def test_receiver_report_sdes_and_bye_with_reason() -> None:
    data = fixture("rtcp_rr_sdes_bye.bin")
    rr, sdes, bye = parse_compound(data).packets
    assert rr == ReceiverReport(ssrc=0x01020304)
    assert isinstance(sdes, SourceDescription)
    assert sdes.chunks[0].items == ((CNAME, b"softphone"), (TOOL, b"Switchboard test"))
    assert bye == Bye(ssrcs=(0x01020304,), reason=b"hangup")
    assert bytes(parse_compound(data)) == data


def test_unknown_types_are_kept_and_padding_belongs_to_the_last_packet() -> None:
    data = fixture("rtcp_rr_xr_padded.bin")
    compound = parse_compound(data)
    rr, xr = compound.packets
    assert isinstance(rr, ReceiverReport) and rr.reports == (BLOCK,)
    body = bytes.fromhex("0102030404000002e5a1b2c3d4e5f607")
    assert xr == OpaqueRtcp(packet_type=207, count=0, body=body)
    assert compound.padding == 8
    assert bytes(compound) == data


def test_negative_cumulative_loss() -> None:
    block = ReportBlock(
        ssrc=1,
        fraction_lost=0,
        cumulative_lost=-5,
        highest_sequence=0,
        jitter=0,
        last_sr=0,
        delay_since_last_sr=0,
    )
    data = bytes(RtcpCompound(packets=(ReceiverReport(ssrc=2, reports=(block,)),)))
    assert data[12:16] == bytes.fromhex("00fffffb")
    assert parse_compound(data).packets[0] == ReceiverReport(ssrc=2, reports=(block,))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\xc9", "shorter than an RTCP header"),
        (bytes.fromhex("40c90001") + bytes(4), "version 1"),
        (bytes.fromhex("80c90002") + bytes(4), "claims 12 bytes"),
        (bytes.fromhex("81c90001") + bytes(4), "RR with 1 report blocks"),
        (bytes.fromhex("80c80001") + bytes(4), "SR with 0 report blocks"),
        (bytes.fromhex("a0c900010000000480c9000100000000"), "not the last"),
        (bytes.fromhex("a0c9000100000000"), "padding count 0"),
        (bytes.fromhex("a0c9000100000009"), "padding count 9"),
        (bytes.fromhex("a0cc00020000000000000002"), "whole 32-bit words"),
        (bytes.fromhex("81ca000100000001"), "without its null terminator"),
        (bytes.fromhex("81ca000200000001") + bytes.fromhex("0105616263"[:8]), "runs past"),
        (bytes.fromhex("82ca000200000001") + bytes(4), "without its SSRC"),
        (bytes.fromhex("80ca000100000001"), "bytes after the last SDES chunk"),
        (bytes.fromhex("82cb000100000001"), "BYE with 2 sources"),
        (bytes.fromhex("81cb00020000000105616263"), "reason runs past"),
        (bytes.fromhex("81cb0002000000010161ff00"), "bytes after the BYE reason"),
        (bytes.fromhex("80c9000100000000") + b"\x80", "trailing bytes"),
    ],
)
def test_malformed_compounds_raise_the_one_error(data: bytes, reason: str) -> None:
    with pytest.raises(RtcpError, match=reason):
        parse_compound(data)


def test_values_out_of_range_are_refused_on_creation() -> None:
    with pytest.raises(ValueError):
        ReceiverReport(ssrc=1 << 32)
    with pytest.raises(ValueError):
        ReportBlock(
            ssrc=0,
            fraction_lost=256,
            cumulative_lost=0,
            highest_sequence=0,
            jitter=0,
            last_sr=0,
            delay_since_last_sr=0,
        )
    with pytest.raises(ValueError):
        SdesChunk(ssrc=0, items=((0, b"x"),))
    with pytest.raises(ValueError):
        Bye(reason=bytes(256))
    with pytest.raises(ValueError):
        OpaqueRtcp(packet_type=204, count=0, body=b"abc")
    with pytest.raises(ValueError):
        RtcpCompound(packets=())
    with pytest.raises(ValueError):
        RtcpCompound(packets=(ReceiverReport(ssrc=1),), padding=3)


@given(st.binary(max_size=200))
def test_parse_is_total_on_random_bytes(data: bytes) -> None:
    try:
        compound = parse_compound(data)
    except RtcpError:
        return
    assert parse_compound(bytes(compound)) == compound


@given(st.lists(st.binary(min_size=4, max_size=60), min_size=1, max_size=4))
def test_parse_is_total_on_plausible_headers(bodies: list[bytes]) -> None:
    # Version 2 headers whose length fields match, so the per-type parsers see random bodies.
    data = b""
    for body in bodies:
        body = body[: len(body) // 4 * 4] or bytes(4)
        packet_type = 200 + body[0] % 5
        data += bytes((0x80 | body[1] % 32, packet_type)) + (len(body) // 4).to_bytes(2, "big")
        data += body
    try:
        compound = parse_compound(data)
    except RtcpError:
        return
    assert parse_compound(bytes(compound)) == compound


u32 = st.integers(0, 0xFFFFFFFF)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(1 << 23), (1 << 23) - 1),
    highest_sequence=u32,
    jitter=u32,
    last_sr=u32,
    delay_since_last_sr=u32,
)
words = st.integers(0, 4).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))
rtcp_packets = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, (1 << 64) - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=st.lists(blocks, max_size=3).map(tuple),
        extension=words,
    ),
    st.builds(
        ReceiverReport, ssrc=u32, reports=st.lists(blocks, max_size=3).map(tuple), extension=words
    ),
    st.builds(
        SourceDescription,
        chunks=st.lists(
            st.builds(
                SdesChunk,
                ssrc=u32,
                items=st.lists(
                    st.tuples(st.integers(1, 255), st.binary(max_size=40)), max_size=3
                ).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(
        Bye,
        ssrcs=st.lists(u32, max_size=4).map(tuple),
        reason=st.none() | st.binary(max_size=40),
    ),
    st.builds(
        OpaqueRtcp,
        packet_type=st.integers(204, 210),
        count=st.integers(0, 31),
        body=words,
    ),
)


@given(
    st.lists(rtcp_packets, min_size=1, max_size=4).map(tuple),
    st.sampled_from([0, 4, 8, 252]),
)
def test_generated_compounds_round_trip(packets: tuple[object, ...], padding: int) -> None:
    compound = RtcpCompound(packets=packets, padding=padding)  # type: ignore[arg-type]
    data = bytes(compound)
    assert len(data) % 4 == 0
    assert parse_compound(data) == compound
    assert bytes(parse_compound(data)) == data
