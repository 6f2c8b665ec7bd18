"""A softphone behind a real masquerading router (network namespaces the test makes): it
registers, is called from outside, and both sides hear each other through the switch.

The phone (baresip) lives in its own namespace at a private address; the router namespace
masquerades it to its public address and to ports of its own choosing, and lets nothing new
in from outside. The phone's Contact and SDP name its private address, so the switch can only
reach it at the address and port its packets came from (RFC 3581 rport/received) and only hear
it by latching onto the RTP it sends (symmetric RTP); this namespace even has a route to the
private network, through the router, so a switch that used the private address would have its
packets dropped there rather than refused here.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from pbx.store.database import open_database
from tests.interop.test_baresip_calls import heard, tone
from tests.support.baresip import BaresipPhone
from tests.support.cli import pbx
from tests.support.netns import nat_lab
from tests.support.sipp import free_port
from tests.support.switch_process import SwitchProcess
from tests.support.tools import require_tool

RTP_RANGE = (37000, 37099)
PUBLIC_PORTS = range(47000, 48000)  # the router's masquerading range (tests/support/netns.py)


def test_a_phone_behind_a_masquerading_router_is_called_and_heard(tmp_path: Path) -> None:
    baresip = require_tool("baresip", "baresip")
    sox = require_tool("sox", "sox")
    db = tmp_path / "switchboard.db"
    secrets = {"201": "behind-nat-pass-201", "202": "outside-pass-202"}
    for user, secret in secrets.items():
        assert pbx(db, "ext", "add", user, "--password", secret).returncode == 0
    control = free_port()
    with nat_lab(control) as lab:
        rtp = ("--rtp-ports", f"{RTP_RANGE[0]}-{RTP_RANGE[1]}")
        with SwitchProcess(tmp_path, *rtp, bind=lab.host_ip) as switch:
            phones: list[BaresipPhone] = []
            try:
                for user, hz, host, ctrl, ports, prefix in (
                    ("201", 440, lab.phone_ip, control, (42000, 42099), lab.prefix),
                    ("202", 1000, lab.host_ip, free_port(), (42100, 42199), ()),
                ):
                    folder = tmp_path / f"phone-{user}"
                    folder.mkdir()
                    phones.append(BaresipPhone(
                        baresip, folder, user=user, password=secrets[user],
                        switch=(lab.host_ip, switch.port), sip_port=5070, ctrl_port=ctrl,
                        rtp_ports=ports, source_wav=tone(folder / "mic.wav", sox, hz, 20.0),
                        host=host, prefix=prefix,
                    ))  # fmt: skip
                natted, outside = phones
                for user in ("201", "202"):
                    switch.wait_for(re.compile(rf"event=registered aor={user} "), timeout=20)
                # The switch knows the phone by its public address and a translated port.
                [(received_host, received_port, contact)] = (
                    open_database(db)
                    .execute("SELECT received_host, received_port, contact FROM registrations "
                             "WHERE aor = '201'")
                    .fetchall()
                )  # fmt: skip
                assert received_host == lab.public_ip and received_port in PUBLIC_PORTS
                assert lab.phone_ip in contact  # what the phone itself believes
                # Called from outside: the INVITE can only arrive through the NAT's mapping.
                outside.command("dial", f"sip:201@{lab.host_ip}:{switch.port}")
                natted.wait_event("CALL_ESTABLISHED", 20)
                outside.wait_event("CALL_ESTABLISHED", 20)
                talking = time.monotonic()
                while time.monotonic() - talking < 4.0:  # four seconds of conversation
                    time.sleep(0.1)
                outside.command("hangup")
                natted.wait_event("CALL_CLOSED", 15)
                outside.wait_event("CALL_CLOSED", 15)
                end = switch.wait_for(re.compile(r"event=call_end .*answered=True"), timeout=10)
            finally:
                for phone in phones:
                    phone.stop()
    # Each side heard the other's tone, through the relay.
    for phone, expected in ((natted, 1000.0), (outside, 440.0)):
        peak, loud = heard(phone.recordings)
        assert abs(peak - expected) < 10, (phone.user, peak)
        assert loud >= 3.0, (phone.user, loud)
    # The relay latched the NAT'd phone's leg onto its public address, not the SDP's.
    latched = re.search(r"'b': \{[^}]*'latched': \('([0-9.]+)', (\d+)\)", end)
    assert latched is not None, end
    assert latched.group(1) == lab.public_ip and int(latched.group(2)) in PUBLIC_PORTS, end
