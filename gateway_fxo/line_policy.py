"""The line's call record and the per-line rules that say when the line side has hung up.

Pure: the agent (agent.py) feeds it what the line and the tone detector say. Each disconnect
layer is a setting per line, because lines differ: DE/FR signal the end with a tone cadence,
some lines reverse polarity, some only drop the loop current, some do nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway_fxo.media import RtpLeg
from pbx.sip.message import Request


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentSettings:
    account: str
    password: str
    switch: tuple[str, int]
    bind: str = "127.0.0.1"
    country: str = "US"
    answer_after_rings: int = 2
    ring_gone: float = 7.0
    """Seconds without a ring after which the caller has given up."""
    loop_drop_threshold: float = 0.3
    """Seconds of loop-current drop that mean the far end hung up (100-500 ms per line)."""
    polarity_disconnect: bool = False
    """Whether a polarity reversal during a call means disconnect (provisioned lines only)."""
    tone_disconnect: bool = True
    """Whether busy/congestion tone cadence ends an answered call (the norm in DE/FR)."""
    dial_tone_disconnect: bool = True
    """Whether dial tone after the far end cleared ends an answered call."""
    silence_timeout: float = 300.0
    max_call: float = 4 * 3600.0
    dial_tone_wait: float = 3.0
    register_expires: int = 300
    early_media_limit: float = 30.0
    """Seconds of early media (ringback) after which an outbound call is answered anyway, on a
    line that gives no answer signal the gateway can hear."""
    answer_sound_seconds: float = 0.3
    """Seconds of sound that is no call-progress tone that mean the far party answered."""


@dataclass(slots=True)
class LineCall:
    """The one call on the line: what the agent needs beside the SIP leg and the machine."""

    direction: str
    call_id: str
    local_tag: str
    invite: Request | None = None
    """Ours (inbound: the latest, after a challenge) or the switch's (outbound)."""
    digits: str = ""
    offer: bytes = b""
    """The switch's SDP offer (outbound)."""
    rtp: RtpLeg | None = None
    rtp_port: int = 0
    answered: bool = False
    last_sound: float = 0.0
    started: float = 0.0
    sound_frames: int = 0
    """Frames of sound in a row that were no call-progress tone (answer detection)."""


def disconnect_reason(
    settings: AgentSettings, call: LineCall, tone: str | None, now: float
) -> str | None:
    """Why the line side has ended ``call`` by now, from the layers this line has on, or None."""
    if call.answered and tone in ("busy", "congestion") and settings.tone_disconnect:
        return f"{tone} tone"
    if call.answered and tone == "dial" and settings.dial_tone_disconnect:
        return "dial tone"
    if now - call.last_sound > settings.silence_timeout:
        return "silence"
    if now - call.started > settings.max_call:
        return "maximum call length"
    return None
