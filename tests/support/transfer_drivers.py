"""Making the real phones transfer a call with their own commands, and reading the REFER back.

baresip 1.0: the ``transfer`` command of its menu module (over ctrl_tcp as
``{"command":"transfer","params":"203"}``; ``/transfer 203`` on its console) sends REFER in the
current call's dialog with ``Refer-To: sip:203@<the account's host:port>`` (a bare number is
completed with the account's domain). It reports the outcome as ctrl_tcp events:
``TRANSFER_FAILED`` with the status (``481 Call/Transaction Does Not Exist``).

linphonec 5.1: ``transfer <call id> <sip-uri>`` (blind) sends REFER with ``Refer-To: <sip-uri>``
and ``Referred-By``, then sends BYE for the call at once, before any answer to the REFER (it
does not wait for the NOTIFYs; linphonec prints no "ended" line for it);
``transfer <call id1> --to-call <call id2>`` (attended) sends REFER on call 1 whose Refer-To
names call 2's remote party with an embedded ``Replaces`` for call 2's dialog.

What each phone sent is read from its own SIP trace (baresip ``-s`` in ``baresip.log``, the
liblinphone log at ``-d 6``), parsed with the switch's own parser: no capture privileges
needed, and the REFER is checked as the bytes that went out.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pbx.sip.errors import SipParseError
from pbx.sip.message import Message, Request, parse_message
from pbx.sip.refer import ReferredBy, ReferTo, parse_referred_by, refer_to_of_request
from tests.support.baresip import BaresipPhone
from tests.support.linphone import LinphonePhone


@dataclass(frozen=True, slots=True)
class TracedMessage:
    """One SIP message a phone's trace shows: who sent it to whom, and the message."""

    source: str
    destination: str
    message: Message


@dataclass(frozen=True, slots=True)
class ReferSent:
    """A REFER a phone sent, with its Refer-To (and Referred-By, when it had one) parsed."""

    request: Request
    refer_to: ReferTo
    referred_by: ReferredBy | None

    @property
    def target_user(self) -> str | None:
        return getattr(self.refer_to.target, "user", None)


# ---------------------------------------------------------------------------
# Reading the traces

# baresip -s: "\x1b[36;1m#\nUDP 127.0.0.1:5070 -> 127.0.0.1:5060\n<message>\x1b[;m"
_BARESIP_HEAD_RE = re.compile(rb"^(?:UDP|TCP|TLS) (\S+) -> (\S+)\r?\n", re.MULTILINE)
# liblinphone: "message sent to [UDP://127.0.0.1:5060], size: [796] bytes\n<796 bytes>"
_LINPHONE_SENT_RE = re.compile(rb"message sent to \[\w+://([^\]]+)\], size: \[(\d+)\] bytes\n")
_LINPHONE_RECEIVED_RE = re.compile(rb"received \[(\d+)\] new bytes from \[\w+://([^\]]+)\]:\n")


def _parse(raw: bytes) -> Message | None:
    try:
        return parse_message(raw)
    except SipParseError:
        return None


def _one_message(raw: bytes) -> bytes:
    """The message at the start of ``raw``: head, blank line and Content-Length bytes of body
    (a trace prints more after it: colours, the next log line)."""
    head, sep, rest = raw.partition(b"\r\n\r\n")
    if not sep:
        return raw
    found = re.search(rb"^(?:Content-Length|l)[ \t]*:[ \t]*([0-9]+)", head, re.I | re.M)
    length = int(found.group(1)) if found else 0
    return head + sep + rest[:length]


def baresip_trace(log_path: Path) -> list[TracedMessage]:
    """Every SIP message in a baresip ``-s`` log, sent or received, in order."""
    data = log_path.read_bytes()
    heads = list(_BARESIP_HEAD_RE.finditer(data))
    out = []
    for head, following in zip(heads, [*heads[1:], None], strict=True):
        block = data[head.end() : following.start() if following else len(data)]
        message = _parse(_one_message(block))
        if message is not None:
            out.append(TracedMessage(head.group(1).decode(), head.group(2).decode(), message))
    return out


def linphone_trace(log_path: Path, own: str = "linphone") -> list[TracedMessage]:
    """Every SIP message liblinphone logged sending or receiving (``own`` names its end: the
    log does not say which local address it used)."""
    data = log_path.read_bytes() if log_path.exists() else b""
    found: list[tuple[int, TracedMessage]] = []
    for sent in _LINPHONE_SENT_RE.finditer(data):
        raw = data[sent.end() : sent.end() + int(sent.group(2))]
        message = _parse(_one_message(raw))
        if message is not None:
            found.append((sent.start(), TracedMessage(own, sent.group(1).decode(), message)))
    for got in _LINPHONE_RECEIVED_RE.finditer(data):
        raw = data[got.end() : got.end() + int(got.group(1))]
        message = _parse(_one_message(raw))
        if message is not None:
            found.append((got.start(), TracedMessage(got.group(2).decode(), own, message)))
    return [traced for _, traced in sorted(found, key=lambda pair: pair[0])]


def refers_sent(trace: list[TracedMessage], own: str) -> list[ReferSent]:
    """The REFERs (each retransmission or authenticated retry once per CSeq) sent from
    ``own`` (``host:port`` for baresip, the ``own`` name given to linphone_trace)."""
    out: dict[tuple[str, int], ReferSent] = {}
    for traced in trace:
        message = traced.message
        if traced.source != own or not isinstance(message, Request):
            continue
        if message.method != "REFER":
            continue
        refer_to = refer_to_of_request(message.headers.get_all("Refer-To"))
        by = message.headers.get("Referred-By")
        out[(message.call_id, message.cseq.seq)] = ReferSent(
            request=message,
            refer_to=refer_to,
            referred_by=None if by is None else parse_referred_by(by),
        )
    return list(out.values())


def responses_to(trace: list[TracedMessage], request: Request) -> list[int]:
    """The status codes the phone received for ``request`` (matched by Call-ID and CSeq)."""
    return [
        traced.message.status
        for traced in trace
        if not isinstance(traced.message, Request)
        and traced.message.call_id == request.call_id
        and traced.message.cseq == request.cseq
    ]


def _wait_refer(read: Callable[[], list[ReferSent]], timeout: float, what: str) -> ReferSent:
    deadline = time.monotonic() + timeout
    while True:
        found = read()
        if found:
            return found[-1]
        if time.monotonic() > deadline:
            raise AssertionError(f"no REFER from {what} in {timeout}s")
        time.sleep(0.05)  # polling a log file the phone writes; the condition decides


# ---------------------------------------------------------------------------
# baresip


def baresip_address(phone: BaresipPhone) -> str:
    """The ``host:port`` baresip sends SIP from (its ``sip_listen`` line)."""
    config = (phone.folder / "config").read_text()
    match = re.search(r"^sip_listen (\S+)$", config, re.MULTILINE)
    assert match is not None, config
    return match.group(1)


def baresip_refers(phone: BaresipPhone) -> list[ReferSent]:
    phone.log()  # flushes the log file the trace is read from
    return refers_sent(baresip_trace(phone.log_path), baresip_address(phone))


def baresip_blind_transfer(phone: BaresipPhone, target: str, *, timeout: float = 10) -> ReferSent:
    """Transfer baresip's current call to ``target`` (a number, completed with the account's
    domain, or a whole ``sip:`` URI) with its own ``transfer`` command; the REFER it sent."""
    before = len(baresip_refers(phone))
    phone.command("transfer", target)
    return _wait_refer(lambda: baresip_refers(phone)[before:], timeout, f"baresip {phone.user}")


# ---------------------------------------------------------------------------
# linphonec


def linphone_refers(phone: LinphonePhone) -> list[ReferSent]:
    return refers_sent(linphone_trace(phone.log_path), "linphone")


def linphone_blind_transfer(
    phone: LinphonePhone, call_id: int, target_uri: str, *, timeout: float = 10
) -> ReferSent:
    """``transfer <call id> <sip-uri>``: the REFER linphonec sent for it (it then sends BYE
    for the call by itself, without waiting for the REFER's answer)."""
    before = len(linphone_refers(phone))
    phone.command(f"transfer {call_id} {target_uri}")
    return _wait_refer(lambda: linphone_refers(phone)[before:], timeout, f"linphone {phone.user}")


def linphone_attended_transfer(
    phone: LinphonePhone, call_id: int, to_call: int, *, timeout: float = 10
) -> ReferSent:
    """``transfer <call id1> --to-call <call id2>``: REFER on call 1 with a Refer-To naming call
    2's party and, embedded, the Replaces of call 2's dialog."""
    before = len(linphone_refers(phone))
    phone.command(f"transfer {call_id} --to-call {to_call}")
    return _wait_refer(lambda: linphone_refers(phone)[before:], timeout, f"linphone {phone.user}")
