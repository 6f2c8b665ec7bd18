"""The phone matrix: SIPp 3.6.1 on the switch's defaults, calling the baresip peer.

SIPp answers the 407 (MD5, the default), plays a 440 Hz tone that the peer must hear through
the relay, holds and resumes with re-INVITEs the peer must see, sends RFC 2833 DTMF from SIPp's
own captures (1 and #) and hangs up. SIPp cannot record, so only the peer's ears are checked;
its registration and its calls as a callee are in test_sipp_register.py and test_sipp_calls.py.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.phone_peer import office, start_peer
from tests.support.rtp_pcap import write_tone_pcap
from tests.support.sipp import free_port, run_sipp
from tests.support.tools import require_tool

SIPP_TONE_HZ = 440


def test_sipp_calls_is_heard_holds_resumes_sends_dtmf_and_hangs_up(tmp_path: Path) -> None:
    sipp = require_tool("sipp", "sip-tester")
    with office(tmp_path, rtp_ports=(34200, 34299)) as pbx:
        peer = start_peer(pbx, tmp_path, "202", rtp_ports=(45200, 45299))
        try:
            peer.wait_registered()
            tone = write_tone_pcap(tmp_path / "tone.pcap", SIPP_TONE_HZ, 3.0)
            inf = tmp_path / "matrix.csv"
            inf.write_text(
                "SEQUENTIAL\n202;201;"
                f"[authentication username=201 password={pbx.passwords['201']}];\n"
            )
            result = run_sipp(
                sipp, "call_uac_matrix", pbx.switch, calls=1, rate=1, workdir=tmp_path,
                extra=("-inf", str(inf), "-mp", str(free_port()), "-key", "tone_pcap", str(tone)),
                timeout_s=40,
            )  # fmt: skip
            assert (result.successful, result.failed) == (1, 0), result.output[-3000:]
            peer.wait_event("CALL_CLOSED", 10)
            assert peer.dtmf_digits(2, 5) == "1#"
            pbx.process.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
        finally:
            peer.stop()
    directions = peer.remote_directions()
    assert directions[0] == "sendrecv" and directions[1] in ("sendonly", "inactive"), directions
    assert directions[2] == "sendrecv", directions
    peak, loud = peer.heard()
    assert abs(peak - SIPP_TONE_HZ) < 10 and loud >= 2.0, (peak, loud)
