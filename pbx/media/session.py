"""The media relay's decisions for one two-party call, without I/O (sans-I/O).

A call has two legs, "a" and "b", each with its own local RTP port (RTCP one above) facing one
phone. What arrives on one leg goes out on the other, from the other leg's port (symmetric RTP,
RFC 4961), so each phone sends to and receives from one address.

Rules, in the order a packet meets them:

1. **Latching** (symmetric RTP / "comedia", RFC 4961 §5 and RFC 7362 §3.1): the first valid
   RTP packet on a leg decides where that leg's media goes, whatever the SDP said, so a phone
   behind NAT (SDP 10.0.0.5:4000, packets from 203.0.113.9:61000) is reached at the address
   its packets come from. The latch moves only when (a) the leg's SDP address changes (a
   re-INVITE: the next packet latches again), or (b) the latched source has been silent for
   ``latch_silence`` seconds (2 s) and a packet comes from another source. Packets from any
   other source are dropped meanwhile: nobody can take over a live stream by spraying ports.
   RTCP latches the same way on its own port (its sources are silent for longer: 25 s,
   five RTCP intervals, RFC 3550 §6.3.5).
2. **A destination**: the far leg's latched address, else its SDP address. A packet that
   arrives before the far leg has either is counted as dropped.
3. **Payload type**: G.711 (the leg's negotiated audio type, or the static 0 = PCMU and
   8 = PCMA of RFC 3551 Table 4) goes out as the far leg's audio type, transcoded with the
   G.711 tables when the encodings differ. G.722 (wideband) is carried, not transcoded: the
   signalling puts it on both legs or on neither, and the relay only renumbers its type.
   Telephone-events (RFC 4733) go out with the far leg's telephone-event type; when the far
   leg did not negotiate telephone-event they are dropped (counted) — the digits are lost on
   that call until the signalling offers another way (SIP INFO, in-band tones). Anything else
   (comfort noise, PT 13...) passes unchanged.
4. **One stream out** (RFC 3550 §8.2, §5.1): when the inbound SSRC changes (a phone restarts
   its stream after hold or a re-INVITE), the far end still sees the first SSRC with sequence
   numbers and timestamps that carry on from the last packet (timestamps advanced by the time
   that passed), so its jitter buffer does not mistake the restart for loss or a new caller.
   Late packets of the old stream (within 1 s of the change) are dropped.
5. **RTCP** passes through unchanged, to the far leg's latched RTCP source, else (when its RTP
   latched somewhere else than its SDP said: a NAT) its latched RTP address with port + 1,
   else its SDP RTCP address (a=rtcp, RFC 3605, or the RTP port + 1). Its SSRCs are the
   phones' own, so after an SSRC change (rule 4) the reports name a source the far end does
   not see; phones ignore such reports.

The relay never looks at direction attributes: hold is the signalling's business, and a phone
on hold that still sends gets its packets relayed. There are no timers: the silence rule is
checked when a packet arrives, so :meth:`RelaySession.next_deadline` is always None.

The edge calls :meth:`RelaySession.relay_function` once per socket and then that function per
datagram: it builds no objects for the usual packet and returns the bytes as received when
nothing needs to change.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from pbx.media.g711 import translation
from pbx.media.rtp import FIXED_HEADER_SIZE, RTP_VERSION, RtpError, payload_bounds

Leg: TypeAlias = Literal["a", "b"]
Address: TypeAlias = tuple[str, int]
RelayResult: TypeAlias = tuple[bytes | bytearray, Address] | None
RelayFunction: TypeAlias = Callable[[bytes, Address, float], RelayResult]
"""``(datagram, source, now) -> (bytes to send, destination) | None``."""

LEGS: tuple[Leg, Leg] = ("a", "b")
LATCH_SILENCE = 2.0
"""Seconds the latched source must be silent before another source may take its place."""
RTCP_LATCH_SILENCE = 25.0
"""RTCP comes every ~5 s (RFC 3550 §6.2); five intervals of silence mean the source left."""
LATE_PACKET_WINDOW = 1.0
"""Seconds after an SSRC change during which packets of the old SSRC are late, not a stream."""
CLOCK_RATE = 8000
"""G.711 and its telephone-events tick at 8 kHz (RFC 3551 §4.5.14, RFC 4733 §2.1)."""

STATIC_G711: dict[int, str] = {0: "PCMU", 8: "PCMA"}
G711_ENCODINGS = frozenset(STATIC_G711.values())
CARRIED_ENCODINGS = ("PCMU", "PCMA", "G722")
"""What a leg may use: G.711 either law (transcoded between them) and G.722 (carried)."""
"""RFC 3551 Table 4: static payload types of G.711."""

_SEQ_TS = struct.Struct("!HI")
_SEQ_TS_SSRC = struct.Struct("!HII")
_UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::", ""})


@dataclass(frozen=True, slots=True, kw_only=True)
class Forward:
    """Send ``data`` from leg ``leg``'s RTP socket (or its RTCP socket) to ``destination``."""

    leg: Leg
    data: bytes
    destination: Address
    rtcp: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LegStats:
    """What one leg saw, as a value: counters of RTP in, out and dropped, and the addresses."""

    local_port: int
    remote: Address | None
    """The SDP's address for this leg's RTP."""
    latched: Address | None
    """Where this leg's RTP comes from, and so where it goes to."""
    rtcp_latched: Address | None
    packets_in: int
    bytes_in: int
    packets_out: int
    bytes_out: int
    dropped: int
    """RTP packets in that were not forwarded (no destination, foreign source, malformed,
    telephone-event the far leg cannot take, late packet of a replaced SSRC)."""
    transcoded: int
    """RTP packets in whose payload was converted between PCMU and PCMA."""
    rtcp_in: int
    rtcp_out: int
    rtcp_dropped: int
    ssrc_changes: int
    """How often this leg's inbound stream restarted with a new SSRC."""
    last_received: float | None
    """``now`` of the last RTP packet accepted from the latched source (for media timeouts)."""


class _Leg:
    """One leg's configuration, latch and counters (mutable; only the session touches it)."""

    __slots__ = (
        "audio_pt",
        "bytes_in",
        "bytes_out",
        "destination",
        "dropped",
        "dtmf_pt",
        "encoding",
        "last_seen",
        "latched",
        "local_port",
        "name",
        "packets_in",
        "packets_out",
        "remote",
        "rtcp_dropped",
        "rtcp_in",
        "rtcp_last_seen",
        "rtcp_latched",
        "rtcp_out",
        "rtcp_remote",
        "ssrc_changes",
        "transcoded",
    )

    def __init__(self, name: Leg, local_port: int) -> None:
        self.name: Leg = name
        self.local_port = local_port
        self.remote: Address | None = None
        self.rtcp_remote: Address | None = None
        self.audio_pt = 0
        self.encoding = "PCMU"
        self.dtmf_pt: int | None = None
        self.latched: Address | None = None
        self.last_seen = 0.0
        self.rtcp_latched: Address | None = None
        self.rtcp_last_seen = 0.0
        self.destination: Address | None = None
        """The latched address, else the SDP's: read once per packet by the other leg."""
        self.packets_in = self.bytes_in = self.packets_out = self.bytes_out = 0
        self.dropped = self.transcoded = self.ssrc_changes = 0
        self.rtcp_in = self.rtcp_out = self.rtcp_dropped = 0

    def latch(self, source: Address, now: float, silence: float) -> bool:
        """Rule 1: may ``source`` (not the latched one) become this leg's address?"""
        if self.latched is not None and now - self.last_seen < silence:
            return False
        self.latched = self.destination = source
        self.rtcp_latched = None  # the phone moved: its RTCP latches again too
        return True

    def rtcp_destination(self) -> Address | None:
        """Rule 5: where this leg's phone takes RTCP."""
        if self.rtcp_latched is not None:
            return self.rtcp_latched
        if self.latched is not None and self.latched != self.remote:
            # Behind a NAT (or moved): the SDP's RTCP address is private; guess the mapping.
            return (self.latched[0], self.latched[1] + 1)
        return self.rtcp_remote

    def snapshot(self) -> LegStats:
        return LegStats(
            local_port=self.local_port,
            remote=self.remote,
            latched=self.latched,
            rtcp_latched=self.rtcp_latched,
            packets_in=self.packets_in,
            bytes_in=self.bytes_in,
            packets_out=self.packets_out,
            bytes_out=self.bytes_out,
            dropped=self.dropped,
            transcoded=self.transcoded,
            rtcp_in=self.rtcp_in,
            rtcp_out=self.rtcp_out,
            rtcp_dropped=self.rtcp_dropped,
            ssrc_changes=self.ssrc_changes,
            last_received=self.last_seen if self.latched is not None else None,
        )


_Action: TypeAlias = tuple[int, bytes | None] | None
"""Per inbound payload type: None = forward as is; (PT, table or None) = rewrite the PT and
translate the payload with the table; :data:`_DROP` = drop."""
_DROP: tuple[int, bytes | None] = (-1, None)


class _Path:
    """One direction of the call: RTP and RTCP in on ``inbound``, out on ``outbound``."""

    __slots__ = (
        "inbound",
        "last_out",
        "last_time",
        "latch_silence",
        "old_ssrc",
        "out_ssrc",
        "outbound",
        "plan",
        "rewriting",
        "seq_offset",
        "ssrc_in",
        "switched_at",
        "ts_offset",
    )

    def __init__(self, inbound: _Leg, outbound: _Leg, latch_silence: float) -> None:
        self.inbound = inbound
        self.outbound = outbound
        self.latch_silence = latch_silence
        self.plan: list[_Action] = [None] * 128
        self.ssrc_in = b""
        """The SSRC field (4 bytes) of the stream being relayed; empty before the first."""
        self.old_ssrc = b""
        self.switched_at = 0.0
        self.out_ssrc = 0
        self.seq_offset = 0
        self.ts_offset = 0
        self.rewriting = False
        """True once sequence number, timestamp and SSRC must be rewritten (rule 4)."""
        self.last_out: bytes | bytearray = b""
        self.last_time = 0.0

    def replan(self) -> None:
        """Rule 3 as a table indexed by payload type, rebuilt when either leg's SDP changes."""
        inbound, outbound = self.inbound, self.outbound
        plan: list[_Action] = [None] * 128
        g711_out = outbound.encoding in G711_ENCODINGS
        sources = dict(STATIC_G711) if g711_out else {}
        sources[inbound.audio_pt] = inbound.encoding
        for pt, encoding in sources.items():
            if g711_out and encoding in G711_ENCODINGS:
                table = translation(encoding, outbound.encoding)
            elif encoding == outbound.encoding:
                table = None  # G.722 both ways: carried as it is
            else:
                plan[pt] = _DROP  # G.722 one side, G.711 the other: the SDP never agrees this
                continue
            if table is not None or pt != outbound.audio_pt:
                plan[pt] = (outbound.audio_pt, table)
        if inbound.dtmf_pt is not None:
            if outbound.dtmf_pt is None:
                plan[inbound.dtmf_pt] = _DROP
            elif outbound.dtmf_pt != inbound.dtmf_pt:
                plan[inbound.dtmf_pt] = (outbound.dtmf_pt, None)
            else:
                plan[inbound.dtmf_pt] = None
        self.plan = plan

    def rtp(self, data: bytes, source: Address, now: float) -> RelayResult:
        """One RTP datagram in: what to send where, or None (counted as dropped)."""
        inbound = self.inbound
        inbound.packets_in += 1
        inbound.bytes_in += len(data)
        if len(data) < FIXED_HEADER_SIZE or data[0] >> 6 != RTP_VERSION:
            inbound.dropped += 1
            return None
        if source != inbound.latched and not inbound.latch(source, now, self.latch_silence):
            inbound.dropped += 1
            return None
        inbound.last_seen = now
        outbound = self.outbound
        destination = outbound.destination
        if destination is None:
            inbound.dropped += 1
            return None
        if (not self.ssrc_in or not data.startswith(self.ssrc_in, 8)) and not self._new_ssrc(
            data, now
        ):
            inbound.dropped += 1
            return None
        action = self.plan[data[1] & 0x7F]
        out: bytes | bytearray
        if action is None and not self.rewriting:
            out = data
        elif action is _DROP:
            inbound.dropped += 1
            return None
        else:
            out = bytearray(data)
            if action is not None:
                payload_type, table = action
                out[1] = (data[1] & 0x80) | payload_type
                if table is not None:
                    if data[0] == 0x80:  # V=2, no padding, extension or CSRC: payload at 12
                        out[FIXED_HEADER_SIZE:] = data[FIXED_HEADER_SIZE:].translate(table)
                    else:
                        try:
                            start, end = payload_bounds(data)
                        except RtpError:
                            inbound.dropped += 1
                            return None
                        out[start:end] = data[start:end].translate(table)
                    inbound.transcoded += 1
            if self.rewriting:
                seq, ts = _SEQ_TS.unpack_from(data, 2)
                _SEQ_TS_SSRC.pack_into(
                    out,
                    2,
                    (seq + self.seq_offset) & 0xFFFF,
                    (ts + self.ts_offset) & 0xFFFFFFFF,
                    self.out_ssrc,
                )
        outbound.packets_out += 1
        outbound.bytes_out += len(out)
        self.last_out = out
        self.last_time = now
        return out, destination

    def _new_ssrc(self, data: bytes, now: float) -> bool:
        """Rule 4: the first packet of this direction, or a stream restarted under a new SSRC.
        False for a late packet of the stream that was just replaced."""
        ssrc = data[8:12]
        if not self.last_out:  # nothing forwarded yet: nothing to be continuous with
            self.ssrc_in = ssrc
            self.out_ssrc = int.from_bytes(ssrc, "big")
            return True
        if ssrc == self.old_ssrc and now - self.switched_at < LATE_PACKET_WINDOW:
            return False
        last_seq, last_ts = _SEQ_TS.unpack_from(self.last_out, 2)
        seq, ts = _SEQ_TS.unpack_from(data, 2)
        # The far end should hear the gap that really passed, at least one tick.
        advance = max(1, round((now - self.last_time) * CLOCK_RATE))
        self.seq_offset = (last_seq + 1 - seq) & 0xFFFF
        self.ts_offset = (last_ts + advance - ts) & 0xFFFFFFFF
        self.old_ssrc, self.ssrc_in = self.ssrc_in, ssrc
        self.switched_at = now
        self.rewriting = True
        self.inbound.ssrc_changes += 1
        return True

    def rtcp(self, data: bytes, source: Address, now: float) -> RelayResult:
        """One RTCP datagram in: passed through unchanged (rule 5), or None."""
        inbound = self.inbound
        inbound.rtcp_in += 1
        if len(data) < 8 or data[0] >> 6 != RTP_VERSION:
            inbound.rtcp_dropped += 1
            return None
        if source != inbound.rtcp_latched:
            if (
                inbound.rtcp_latched is not None
                and now - inbound.rtcp_last_seen < RTCP_LATCH_SILENCE
            ):
                inbound.rtcp_dropped += 1
                return None
            inbound.rtcp_latched = source
        inbound.rtcp_last_seen = now
        destination = self.outbound.rtcp_destination()
        if destination is None:
            inbound.rtcp_dropped += 1
            return None
        self.outbound.rtcp_out += 1
        return data, destination


class RelaySession:
    """The relay for one call: two legs, two directions. See the module docstring for rules."""

    __slots__ = ("_legs", "_paths")

    def __init__(self, *, a_port: int, b_port: int, latch_silence: float = LATCH_SILENCE) -> None:
        legs = {"a": _Leg("a", a_port), "b": _Leg("b", b_port)}
        self._legs: dict[str, _Leg] = legs
        self._paths: dict[str, _Path] = {
            "a": _Path(legs["a"], legs["b"], latch_silence),
            "b": _Path(legs["b"], legs["a"], latch_silence),
        }
        for path in self._paths.values():
            path.replan()

    def update(
        self,
        leg: Leg,
        remote: Address | None,
        audio_pt: int,
        encoding: str,
        dtmf_pt: int | None,
        *,
        rtcp_remote: Address | None = None,
    ) -> None:
        """What the SDP (offer or answer, first or a re-INVITE) says about ``leg``'s phone.

        ``remote`` is its c= address and m= port; ``rtcp_remote`` its a=rtcp address
        (RFC 3605), by default the RTP port + 1. A new ``remote`` undoes the latch (rule 1);
        the same one (hold, codec change) keeps it. No usable address (None, port 0, or an
        unspecified host such as the 0.0.0.0 of RFC 2543 hold) says nothing new: the leg keeps
        what it had (nothing, at first: it then waits for the phone's first packet).
        """
        state = self._leg(leg)
        if not 0 <= audio_pt <= 127:
            raise ValueError(f"audio payload type {audio_pt} is not 0-127")
        if dtmf_pt is not None and (not 0 <= dtmf_pt <= 127 or dtmf_pt == audio_pt):
            raise ValueError(f"telephone-event payload type {dtmf_pt} is not usable")
        if encoding.upper() not in CARRIED_ENCODINGS:
            raise ValueError(f"the relay carries {', '.join(CARRIED_ENCODINGS)}, not {encoding}")
        remote = _usable(remote)
        if remote is None:
            remote, rtcp_remote = state.remote, _usable(rtcp_remote) or state.rtcp_remote
        elif rtcp_remote is None:
            rtcp_remote = (remote[0], remote[1] + 1)
        if remote != state.remote:
            state.latched = None
            state.rtcp_latched = None
        state.remote = remote
        state.rtcp_remote = _usable(rtcp_remote)
        state.destination = state.latched if state.latched is not None else remote
        state.audio_pt = audio_pt
        state.encoding = encoding.upper()
        state.dtmf_pt = dtmf_pt
        for path in self._paths.values():
            path.replan()

    def receive(
        self, leg: Leg, data: bytes, source: Address, now: float, *, rtcp: bool = False
    ) -> list[Forward]:
        """A datagram that arrived on ``leg``'s RTP (or RTCP) port from ``source``."""
        path = self._path(leg)
        result = path.rtcp(data, source, now) if rtcp else path.rtp(data, source, now)
        if result is None:
            return []
        out, destination = result
        return [
            Forward(leg=path.outbound.name, data=bytes(out), destination=destination, rtcp=rtcp)
        ]

    def relay_function(self, leg: Leg, *, rtcp: bool = False) -> RelayFunction:
        """The hot path behind :meth:`receive` for one socket, with no dict lookups or
        :class:`Forward` objects: ``(data, source, now) -> (bytes, destination) | None``.
        The bytes go out of the *other* leg's socket of the same kind (RTP or RTCP)."""
        path = self._path(leg)
        return path.rtcp if rtcp else path.rtp

    def handle_timer(self, now: float) -> list[Forward]:
        """Nothing happens on a timer (module docstring); here for the usual surface."""
        return []

    def next_deadline(self) -> float | None:
        return None

    def stats(self) -> dict[Leg, LegStats]:
        return {name: self._leg(name).snapshot() for name in LEGS}

    def _leg(self, leg: str) -> _Leg:
        try:
            return self._legs[leg]
        except KeyError:
            raise ValueError(f"a call has legs 'a' and 'b', not {leg!r}") from None

    def _path(self, leg: str) -> _Path:
        try:
            return self._paths[leg]
        except KeyError:
            raise ValueError(f"a call has legs 'a' and 'b', not {leg!r}") from None


def _usable(address: Address | None) -> Address | None:
    """None for an address nobody can be reached at: sending to 0.0.0.0 on Linux reaches this
    machine, and port 0 is a rejected stream (RFC 3264 §6)."""
    if address is None or address[0] in _UNSPECIFIED_HOSTS or not 0 < address[1] <= 65535:
        return None
    return address
