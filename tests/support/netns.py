"""A phone behind a real NAT, made of network namespaces the test owns.

    phone namespace            router namespace                      this namespace
    192.168.N.2 ── veth ── 192.168.N.1 | 100.72.N.2 ── veth ── 100.72.N.1 (the switch, phones)

The router masquerades what the phone sends out (to ports of its own choosing, so the public
port differs from the private one) and, like a home router, forwards nothing new from outside
in: only replies to what the phone sent, and TCP to the phone's control port (so the test can
drive it). This namespace has a route to the private network through the router, so a switch
that wrongly sends to the private address the phone's Contact and SDP name is dropped there
rather than failing for lack of a route. Everything is deleted on exit; traffic never leaves
the machine. Needs root, iproute2 and iptables.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.support.tools import require_tool


@dataclass(frozen=True)
class NatLab:
    phone_ns: str
    phone_ip: str
    public_ip: str
    """The router's outside address: what the switch sees the phone's packets come from."""
    host_ip: str
    """This namespace's address on the outside network (where the switch listens)."""

    @property
    def prefix(self) -> tuple[str, ...]:
        """Run a command inside the phone's namespace."""
        return ("ip", "netns", "exec", self.phone_ns)


def _free_subnet_tag(ip: str) -> int:
    """A third octet whose 100.72.N.0/24 (shared address space, as a carrier's NAT uses) and
    192.168.N.0/24 nothing on this machine uses yet, so the lab never shadows a real route."""
    used = (
        subprocess.run(
            [ip, "-4", "-o", "addr", "show"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        + subprocess.run(
            [ip, "-4", "route", "show", "table", "all"], capture_output=True, text=True, timeout=30
        ).stdout
    )
    start = os.getpid() % 200
    for step in range(200):
        tag = 20 + (start + step) % 200
        if f"100.72.{tag}." not in used and f"192.168.{tag}." not in used:
            return tag
    raise AssertionError("no free subnet for the NAT lab")


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, timeout=30)


@contextmanager
def nat_lab(control_port: int) -> Iterator[NatLab]:
    """Build the namespaces, veths, addresses, routes and NAT rules; tear them down after."""
    ip = require_tool("ip", "iproute2")
    iptables = require_tool("iptables", "iptables")
    if os.geteuid() != 0:
        message = "network namespaces need root"
        if os.environ.get("SWITCHBOARD_REQUIRE_TOOLS") == "1":
            pytest.fail(message + " and SWITCHBOARD_REQUIRE_TOOLS=1", pytrace=False)
        pytest.skip(message)
    tag = _free_subnet_tag(ip)
    phone_ns, router_ns = f"sbphone{os.getpid()}", f"sbnat{os.getpid()}"
    host_if, router_out, router_in, phone_if = (f"sb{n}{os.getpid()}" for n in "horp")
    lab = NatLab(
        phone_ns=phone_ns,
        phone_ip=f"192.168.{tag}.2",
        public_ip=f"100.72.{tag}.2",
        host_ip=f"100.72.{tag}.1",
    )
    router = (ip, "netns", "exec", router_ns)
    phone = (ip, "netns", "exec", phone_ns)
    try:
        _run(ip, "netns", "add", phone_ns)
        _run(ip, "netns", "add", router_ns)
        _run(ip, "link", "add", host_if, "type", "veth", "peer", "name", router_out)
        _run(ip, "link", "add", router_in, "type", "veth", "peer", "name", phone_if)
        _run(ip, "link", "set", router_out, "netns", router_ns)
        _run(ip, "link", "set", router_in, "netns", router_ns)
        _run(ip, "link", "set", phone_if, "netns", phone_ns)
        _run(ip, "addr", "add", f"{lab.host_ip}/24", "dev", host_if)
        _run(ip, "link", "set", host_if, "up")
        _run(ip, "route", "add", f"192.168.{tag}.0/24", "via", lab.public_ip)
        _run(*router, ip, "addr", "add", f"{lab.public_ip}/24", "dev", router_out)
        _run(*router, ip, "addr", "add", f"192.168.{tag}.1/24", "dev", router_in)
        for link in (router_out, router_in, "lo"):
            _run(*router, ip, "link", "set", link, "up")
        _run(*router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        _run(*phone, ip, "addr", "add", f"{lab.phone_ip}/24", "dev", phone_if)
        for link in (phone_if, "lo"):
            _run(*phone, ip, "link", "set", link, "up")
        _run(*phone, ip, "route", "add", "default", "via", f"192.168.{tag}.1")
        nat = (*router, iptables)
        _run(*nat, "-t", "nat", "-A", "POSTROUTING", "-o", router_out, "-p", "udp",
             "-j", "MASQUERADE", "--to-ports", "47000-47999")  # fmt: skip
        _run(*nat, "-t", "nat", "-A", "POSTROUTING", "-o", router_out, "-j", "MASQUERADE")
        _run(*nat, "-A", "FORWARD", "-i", router_out, "-m", "conntrack",
             "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT")  # fmt: skip
        _run(*nat, "-A", "FORWARD", "-i", router_out, "-p", "tcp", "-d", lab.phone_ip,
             "--dport", str(control_port), "-j", "ACCEPT")  # fmt: skip
        _run(*nat, "-A", "FORWARD", "-i", router_out, "-j", "DROP")
        yield lab
    finally:
        subprocess.run([ip, "link", "del", host_if], capture_output=True, timeout=30)
        for namespace in (phone_ns, router_ns):
            subprocess.run([ip, "netns", "del", namespace], capture_output=True, timeout=30)
