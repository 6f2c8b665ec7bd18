"""The phone matrix: sipsak 0.9.8 on the switch's defaults.

sipsak registers (its usrloc mode: REGISTER, the 401, REGISTER with credentials, then the same
with Expires 0) and pings with OPTIONS. Its call (-I) and message (-M) modes crash inside
sipsak 0.9.8.1 after registering, so it makes no call here. It needs ``-u EXTENSION`` for its
authentication name: without it, it derives ``201@`` from a URI that carries a port.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support.phone_peer import office
from tests.support.sipp import free_port
from tests.support.tools import require_tool


def sipsak(*args: str) -> subprocess.CompletedProcess[str]:
    binary = require_tool("sipsak", "sipsak")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=30)


def test_sipsak_registers_on_the_defaults_and_is_refused_with_a_wrong_password(
    tmp_path: Path,
) -> None:
    with office(tmp_path, rtp_ports=(34100, 34149), users=("201",)) as pbx:
        target = f"sip:201@127.0.0.1:{pbx.process.port}"
        contact = f"sip:201@127.0.0.1:{free_port()}"
        ok = sipsak("-U", "-i", "-C", contact, "-x", "120", "-u", "201",
                    "-a", pbx.passwords["201"], "-s", target, "-vv")  # fmt: skip
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert "completed successful" in ok.stdout
        pbx.wait_registered("201")
        assert pbx.auth_algorithm("201") == "MD5"
        wrong = sipsak("-U", "-i", "-C", contact, "-x", "120", "-u", "201",
                       "-a", "not-the-password-0", "-s", target, "-vv")  # fmt: skip
        said = wrong.stdout + wrong.stderr
        assert wrong.returncode != 0 and "SIP/2.0 403 Forbidden" in said, said


def test_sipsak_options_ping_gets_200(tmp_path: Path) -> None:
    with office(tmp_path, rtp_ports=(34150, 34199), users=("201",)) as pbx:
        ping = sipsak("-v", "-s", f"sip:127.0.0.1:{pbx.process.port}")
        assert ping.returncode == 0 and ping.stdout.startswith("SIP/2.0 200 OK"), ping.stdout
