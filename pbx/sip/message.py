"""SIP requests and responses (RFC 3261 §7): parse, validate, serialize, build.

``parse_message`` is total: any bytes give a Request, a Response, or one
``SipParseError`` that knows the status and reason to answer with. It checks
what every layer above relies on (start line, header syntax, the mandatory
headers of §8.1.1, Via, From, To, CSeq, Content-Length) once, so the layers
above read typed values without re-checking. Everything else stays text and
passes through untouched.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from pbx.sip.abnf import SIP_VERSION_RE, TOKEN_RE, is_digits
from pbx.sip.errors import SipParseError
from pbx.sip.headers import (
    MAX_HEADER_FIELDS,
    CSeq,
    Headers,
    NameAddress,
    Via,
    canonical_name,
    header_key,
    parse_cseq,
    parse_name_addr,
    parse_name_addr_list,
    parse_token_list,
    parse_via_list,
    split_comma_list,
)
from pbx.sip.status import reason_phrase
from pbx.sip.uri import SipUri, Uri, parse_uri

MAX_MESSAGE_SIZE = 65535
"""The largest message we take (a UDP datagram's limit; §18.1.1 wants big ones on TCP)."""

SIP_VERSION = "SIP/2.0"

_FOLD_RE = re.compile(r"\r\n[ \t]+")
_LF_FOLD_RE = re.compile(r"\n[ \t]+")
# (a regex search is about three times faster here than `"\n " in head`: SP is
# frequent in a header section, and str's search keys on a needle's last character)
_FOLDED_RE = re.compile(r"\n[ \t]")
_STATUS_CODE_RE = re.compile(r"[1-6][0-9][0-9]")

# Header names we meet all the time, spelled any way a phone spells them: one
# dict lookup instead of a regex per line on the hot path.
_COMMON_HEADER_SPELLINGS = """
Via v From f To t Call-ID Call-Id CALL-ID call-id i CSeq CSEQ Cseq cseq Contact m Max-Forwards
Content-Length l Content-Type c User-Agent Allow Supported k Expires Route Record-Route
Authorization WWW-Authenticate Proxy-Authenticate Proxy-Authorization Accept Server Date Require
Min-Expires Allow-Events u Event o Session-Expires x Min-SE via from to contact max-forwards
content-length content-type user-agent allow supported expires P-Asserted-Identity Privacy
Timestamp Subject s Organization Path Reason Refer-To r RAck RSeq
"""
# A plain dict (never mutated): its .get is about twice as fast as a MappingProxyType's.
_KNOWN_NAMES: dict[str, str] = {name: header_key(name) for name in _COMMON_HEADER_SPELLINGS.split()}


@dataclass(frozen=True, slots=True, kw_only=True)
class _Message:
    headers: Headers
    body: bytes = b""
    # Typed views parsed from ``headers`` on first use (the parser fills them).
    _cache: dict[str, object] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    # -- typed views of the headers every layer needs ------------------------
    @property
    def vias(self) -> list[Via]:
        value = self._cache.get("vias")
        if value is None:
            value = parse_via_list(self.headers.get_all("via"))
            self._cache["vias"] = value
        return value  # type: ignore[return-value]

    @property
    def top_via(self) -> Via:
        vias = self.vias
        if not vias:
            raise SipParseError("Missing Via header")
        return vias[0]

    @property
    def from_(self) -> NameAddress:
        value = self._cache.get("from")
        if value is None:
            value = _single_address(self.headers, "from", "From")
            self._cache["from"] = value
        return value  # type: ignore[return-value]

    @property
    def to(self) -> NameAddress:
        value = self._cache.get("to")
        if value is None:
            value = _single_address(self.headers, "to", "To")
            self._cache["to"] = value
        return value  # type: ignore[return-value]

    @property
    def call_id(self) -> str:
        value = self.headers.get("call-id")
        if value is None:
            raise SipParseError("Missing Call-ID header")
        return value

    @property
    def cseq(self) -> CSeq:
        value = self._cache.get("cseq")
        if value is None:
            text = self.headers.get("cseq")
            if text is None:
                raise SipParseError("Missing CSeq header")
            value = parse_cseq(text)
            self._cache["cseq"] = value
        return value  # type: ignore[return-value]

    @property
    def contacts(self) -> list[NameAddress]:
        """Contact addresses; a ``*`` contact (§10.2.2) is not listed here: see ``contact_star``."""
        values = self.headers.values("contact")
        return parse_name_addr_list([v for v in values if v.strip() != "*"], "Contact")

    @property
    def contact_star(self) -> bool:
        return any(v.strip() == "*" for v in self.headers.values("contact"))

    @property
    def routes(self) -> list[NameAddress]:
        return parse_name_addr_list(self.headers.get_all("route"), "Route")

    @property
    def record_routes(self) -> list[NameAddress]:
        return parse_name_addr_list(self.headers.get_all("record-route"), "Record-Route")

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("content-type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def option_tags(self, name: str) -> list[str]:
        """Option tags of Require / Supported / Proxy-Require / Unsupported."""
        return parse_token_list(self.headers.get_all(name))

    def _serialize(self, start_line: str) -> bytes:
        body = self.body
        parts = [start_line]
        length_written = False
        for (name, value), key in zip(self.headers._fields, self.headers._keys, strict=True):
            if key == "content-length":
                if length_written:
                    continue
                value = str(len(body))
                length_written = True
            parts.append(f"{name}: {value}")
        if not length_written:
            parts.append(f"Content-Length: {len(body)}")
        parts.append("")
        parts.append("")
        return "\r\n".join(parts).encode() + body


@dataclass(frozen=True, slots=True, kw_only=True)
class Request(_Message):
    """A SIP request; ``uri`` is the parsed Request-URI."""

    method: str
    uri: Uri
    version: str = SIP_VERSION

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("max-forwards")
        if value is None:
            return None
        value = value.strip(" \t")
        if not is_digits(value):
            raise SipParseError("Malformed Max-Forwards header")
        return int(value)

    def __bytes__(self) -> bytes:
        return self._serialize(f"{self.method} {self.uri} {self.version}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Response(_Message):
    """A SIP response."""

    status: int
    reason: str = ""
    version: str = SIP_VERSION

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    def __bytes__(self) -> bytes:
        return self._serialize(f"{self.version} {self.status} {self.reason}")


Message = Request | Response


def _single_address(headers: Headers, key: str, label: str) -> NameAddress:
    values = headers.get_all(key)
    if not values:
        raise SipParseError(f"Missing {label} header")
    if len(values) > 1:
        raise SipParseError(f"More than one {label} header")
    return parse_name_addr(values[0], label)


# ---------------------------------------------------------------------------
# Parsing


def parse_message(data: bytes, *, stream: bool = False) -> Message:
    """Parse one whole SIP message.

    ``stream`` says the bytes came framed from TCP/TLS, where Content-Length is
    mandatory (§18.3, §20.14); over UDP a missing one means "the rest of the
    datagram", and a datagram shorter than Content-Length is an error.
    """
    if len(data) > MAX_MESSAGE_SIZE:
        raise SipParseError("Message too large", status=513)
    # §7.5: ignore CRLFs before the start line.
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    # Lines end in CRLF (§7); bare LF is tolerated when the first line uses it, and
    # then throughout: a mix is refused below, as a stray CR or LF.
    first_lf = data.find(b"\n")
    crlf = first_lf > 0 and data[first_lf - 1] == 0x0D
    end = data.find(b"\r\n\r\n") if crlf else data.find(b"\n\n")
    if end < 0:
        # A datagram cut short, or no blank line: the last header may be cut too.
        raise SipParseError(
            "Header section does not end with an empty line",
            method=_method_of(data[: first_lf if first_lf >= 0 else len(data)]),
        )
    rest = data[end + 4 :] if crlf else data[end + 2 :]
    try:
        head = data[:end].decode()
    except UnicodeDecodeError:
        raise SipParseError("Header section is not UTF-8") from None
    if _FOLDED_RE.search(head) is not None:
        # §7.3.1: a line starting with whitespace continues the previous one.
        head = (_FOLD_RE if crlf else _LF_FOLD_RE).sub(" ", head)
    lines = head.split("\r\n") if crlf else head.split("\n")
    # Any CR or LF left is a bare one inside a line (a join and two memchr scans:
    # cheaper than counting them in the head).
    joined = "".join(lines)
    bad_line = (
        _first_bad_line(lines) if "\r" in joined or "\n" in joined or "\x00" in joined else None
    )

    start = lines[0]
    is_response = start[:4].upper() == "SIP/"
    parts: list[str] = []
    method = None
    if not is_response:
        # Request-Line = Method SP Request-URI SP SIP-Version CRLF; runs of SP between the
        # elements tolerated (RFC 4475 §3.1.2.9), never forwarded: we write single SPs.
        # SP before the CRLF is refused below (§3.1.2.10), once the method is known.
        parts = start.split(" ")
        if len(parts) != 3:
            parts = [part for part in parts if part]
        # The method is known (and the request answerable) when the line looks like
        # a request line at all; garbage has no method.
        if (
            len(parts) > 1
            and parts[-1][:4].upper() == "SIP/"
            and TOKEN_RE.fullmatch(parts[0]) is not None
        ):
            method = parts[0]
    if bad_line == 0:
        raise SipParseError("Stray CR, LF or NUL in start line")
    if len(lines) - 1 > MAX_HEADER_FIELDS:
        raise SipParseError("Too many header fields", method=method)

    # One pass over the header lines: check names, keep every field as written,
    # and note the ones the checks below need.
    fields: list[tuple[str, str]] = []
    keys: list[str] = []
    vias: list[str] = []
    singles: dict[str, list[str]] = {}
    known = _KNOWN_NAMES
    answer_with = fields if method is not None else []
    for line in lines[1:bad_line]:
        name, colon, value = line.partition(":")
        key = known.get(name)
        if key is None or not colon:
            if not colon:
                raise SipParseError(
                    "Malformed header line (no colon)", headers=answer_with, method=method
                )
            name = name.rstrip(" \t")
            if TOKEN_RE.fullmatch(name) is None:
                raise SipParseError("Malformed header name", headers=answer_with, method=method)
            key = header_key(name)
        value = value.strip(" \t")
        fields.append((name, value))
        keys.append(key)
        if key == "via":
            vias.append(value)
        elif key in _CHECKED:
            singles.setdefault(key, []).append(value)
    if bad_line is not None:
        raise SipParseError(
            "Stray CR, LF or NUL in header field", headers=answer_with, method=method
        )
    headers = Headers._from_parts(tuple(fields), tuple(keys))

    try:
        body = _body_of(singles.get("content-length"), rest, stream)
        message: Message
        if is_response:
            message = _response_from(start, headers, body)
        elif start[-1:] == " ":
            # RFC 4475 §3.1.2.10: nothing may stand between SIP-Version and CRLF.
            raise SipParseError("Malformed Request-Line: SP before CRLF")
        else:
            message = _request_from(parts, method, headers, body)
        _check_and_cache(message, parts, method, vias, singles)
    except SipParseError as exc:
        raise SipParseError(
            exc.reason, status=exc.status, headers=answer_with, method=method
        ) from None
    return message


def _first_bad_line(lines: list[str]) -> int | None:
    """The index of the first line with a bare CR or LF, or a NUL outside a quoted-pair.

    (quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F), §25.1: an escaped NUL is
    grammatical; a raw one would cut the line short in C-string software.)
    """
    for i, line in enumerate(lines):
        if "\r" in line or "\n" in line:
            return i
        after_previous = 0
        nul = line.find("\x00")
        while nul >= 0:
            # The backslashes just before it (they cannot reach past the previous NUL).
            segment = line[after_previous:nul]
            if (len(segment) - len(segment.rstrip("\\"))) % 2 == 0:
                return i
            after_previous = nul + 1
            nul = line.find("\x00", after_previous)
    return None


def _method_of(start_line: bytes) -> str | None:
    """The method of a request line, for an error raised before the head is decoded."""
    parts = [p for p in start_line.rstrip(b"\r").decode(errors="replace").split(" ") if p]
    if len(parts) > 1 and parts[-1][:4].upper() == "SIP/" and TOKEN_RE.fullmatch(parts[0]):
        return parts[0]
    return None


def _body_of(lengths: list[str] | None, rest: bytes, stream: bool) -> bytes:
    if lengths is None:
        if stream:
            raise SipParseError("Missing Content-Length header")
        return rest
    text = lengths[0]
    if (
        not (text.isdigit() and text.isascii())
        or len(text) > 10
        or any(v != text for v in lengths[1:])
    ):
        raise SipParseError("Malformed Content-Length header")
    length = int(text)
    if length > len(rest):
        # §18.3: a datagram shorter than Content-Length is broken.
        raise SipParseError("Content-Length larger than message body")
    return rest[:length] if length < len(rest) else rest


_CHECKED = frozenset({"from", "to", "call-id", "cseq", "content-length", "max-forwards"})


def _request_from(parts: list[str], method: str | None, headers: Headers, body: bytes) -> Request:
    # Request-Line = Method SP Request-URI SP SIP-Version CRLF
    if len(parts) != 3 or method is None:
        raise SipParseError("Malformed Request-Line")
    _, uri_text, version = parts
    if version != SIP_VERSION:
        if SIP_VERSION_RE.fullmatch(version) is None:
            raise SipParseError("Malformed SIP-Version")
        if version.upper() != SIP_VERSION:
            raise SipParseError("Version Not Supported", status=505)
        version = SIP_VERSION
    try:
        uri = parse_uri(uri_text)
    except SipParseError as exc:
        raise SipParseError(f"Bad Request-URI: {exc.reason}", status=exc.status) from None
    if type(uri) is SipUri and uri.headers:
        # §19.1.1 (table): headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        raise SipParseError("Bad Request-URI: URI headers are not allowed here")
    return Request(method=method, uri=uri, version=version, headers=headers, body=body)


def _response_from(start: str, headers: Headers, body: bytes) -> Response:
    # Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
    version, _, tail = start.partition(" ")
    code, _, reason = tail.lstrip(" ").partition(" ")
    if version.upper() != SIP_VERSION or _STATUS_CODE_RE.fullmatch(code) is None:
        raise SipParseError("Malformed Status-Line")
    return Response(status=int(code), reason=reason.strip(" \t"), headers=headers, body=body)


def _check_and_cache(
    message: Message,
    parts: list[str],
    method: str | None,
    vias: list[str],
    singles: dict[str, list[str]],
) -> None:
    """The checks of §8.1.1 / §8.2 every layer relies on; fills the typed cache."""
    cache = message._cache
    if not vias:
        raise SipParseError("Missing Via header")
    cache["vias"] = parse_via_list(vias)
    # To usually names the Request-URI, and in a REGISTER the same AOR as From:
    # parse each distinct URI text once per message.
    uri_memo: dict[str, Uri] = {}
    if isinstance(message, Request):
        uri_memo[parts[1]] = message.uri
    for key, label in (("from", "From"), ("to", "To")):
        values = singles.get(key)
        if values is None:
            raise SipParseError(f"Missing {label} header")
        if len(values) > 1:
            raise SipParseError(f"More than one {label} header")
        cache[key] = parse_name_addr(values[0], label, uri_memo)
    call_ids = singles.get("call-id")
    if call_ids is None:
        raise SipParseError("Missing Call-ID header")
    if len(call_ids) > 1 or not call_ids[0]:
        raise SipParseError("Malformed Call-ID header")
    cseqs = singles.get("cseq")
    if cseqs is None:
        raise SipParseError("Missing CSeq header")
    if len(cseqs) > 1:
        raise SipParseError("More than one CSeq header")
    cseq = parse_cseq(cseqs[0])
    cache["cseq"] = cseq
    if method is not None:
        # §8.2.2.3 / §12.2.1.1: the CSeq method must match the request method.
        if cseq.method != method:
            raise SipParseError("CSeq method does not match Request-Line")
        max_forwards = singles.get("max-forwards")
        if max_forwards is not None and not (
            len(max_forwards) == 1
            and max_forwards[0].isdigit()
            and max_forwards[0].isascii()
            and len(max_forwards[0]) <= 10
        ):
            raise SipParseError("Malformed Max-Forwards header")


# ---------------------------------------------------------------------------
# Building


def with_top_via(request: Request, via: Via) -> Request:
    """``request`` with its first Via replaced by ``via`` (the §18.2.1 received/rport stamp).

    Every parsed view but the Vias carries over, so a stamped request is not parsed again.
    """
    headers = request.headers
    index = headers._keys.index("via")
    name, value = headers._fields[index]
    rest = split_comma_list(value)[1:] if "," in value else []
    value = ", ".join([str(via), *rest])
    fields = (*headers._fields[:index], (name, value), *headers._fields[index + 1 :])
    stamped = Request(
        method=request.method,
        uri=request.uri,
        version=request.version,
        headers=Headers._from_parts(fields, headers._keys),
        body=request.body,
    )
    stamped._cache.update(request._cache)
    stamped._cache["vias"] = [via, *request.vias[1:]]
    return stamped


def without_top_via(response: Response) -> Response | None:
    """``response`` with its topmost Via value taken off, as a proxy forwards it (§16.7 step 3).

    The value, not the field: a peer may write every Via value in one comma-separated field
    (§7.3.1), and taking off that whole field would lose the Vias the response still needs to
    find its way back. None when no Via value remains: the response was meant for us and is
    not forwarded (§16.7 step 3).
    """
    vias = response.vias
    if len(vias) < 2:
        return None
    headers = response.headers
    index = headers._keys.index("via")
    name, value = headers._fields[index]
    rest = split_comma_list(value)[1:] if "," in value else []
    if rest:
        fields = (*headers._fields[:index], (name, ", ".join(rest)), *headers._fields[index + 1 :])
        keys = headers._keys
    else:
        fields = (*headers._fields[:index], *headers._fields[index + 1 :])
        keys = (*headers._keys[:index], *headers._keys[index + 1 :])
    forwarded = Response(
        status=response.status,
        reason=response.reason,
        version=response.version,
        headers=Headers._from_parts(fields, keys),
        body=response.body,
    )
    forwarded._cache.update(response._cache)
    forwarded._cache["vias"] = vias[1:]
    return forwarded


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    copy_record_route: bool = False,
) -> Response:
    """A response to ``request`` built per §8.2.6.2.

    Via, From, Call-ID and CSeq are copied verbatim; To is copied and gets
    ``to_tag`` when it has none (a UAS adds its tag to every response but a 100,
    §8.2.6.2). ``copy_record_route`` is for dialog-creating responses (§12.1.1).
    """
    fields: list[tuple[str, str]] = []
    keys: list[str] = []
    src = request.headers
    add_tag = to_tag is not None and status != 100 and request.to.tag is None
    for (_name, value), key in zip(src._fields, src._keys, strict=True):
        if key in _COPIED_TO_RESPONSE:
            fields.append((_RESPONSE_SPELLING[key], value))
        elif key == "to":
            fields.append(("To", f"{value};tag={to_tag}" if add_tag else value))
        elif key == "record-route" and copy_record_route:
            fields.append(("Record-Route", value))
        elif key == "timestamp" and status == 100:
            fields.append(("Timestamp", value))  # §8.2.6.1
        else:
            continue
        keys.append(key)
    for name, value in headers:
        fields.append((name, value))
        keys.append(header_key(name))
    response = Response(
        status=status,
        reason=reason if reason is not None else reason_phrase(status),
        headers=Headers._from_parts(tuple(fields), tuple(keys)),
        body=body,
    )
    # The copied headers mean what they meant in the request: share the parsed views.
    cache = response._cache
    request_cache = request._cache
    for view in ("vias", "from", "cseq"):
        parsed = request_cache.get(view)
        if parsed is not None:
            cache[view] = parsed
    if not add_tag and "to" in request_cache:
        cache["to"] = request_cache["to"]
    return response


_COPIED_TO_RESPONSE = frozenset({"via", "from", "call-id", "cseq"})
_RESPONSE_SPELLING = {"via": "Via", "from": "From", "call-id": "Call-ID", "cseq": "CSeq"}


def make_response_from_fields(
    fields: Iterable[tuple[str, str]],
    status: int,
    reason: str,
    *,
    headers: Iterable[tuple[str, str]] = (),
) -> Response | None:
    """A response built from the raw fields of a request that failed to parse.

    Returns None when the fields lack what a response needs to be routed and
    matched (a Via, From, To, Call-ID and CSeq): such a message is garbage and
    gets no answer. A To without a tag gets one (§8.2.6.2) that is a digest of
    the copied fields, so a retransmitted request gets the same answer: what a
    stateless UAS must do (§8.2.7).
    """
    copied: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, value in fields:
        key = header_key(name)
        # Every Via (the response follows them back); the first of the single headers only,
        # so a request that repeated one still gets a response a strict parser accepts.
        if key == "via" or (key in ("from", "to", "call-id", "cseq") and key not in seen):
            copied.append((canonical_name(name), value))
            seen.add(key)
    if seen != {"via", "from", "to", "call-id", "cseq"}:
        return None
    if status != 100:
        _add_stateless_to_tag(copied)
    response = Response(
        status=status, reason=reason, headers=Headers([*copied, *headers]), body=b""
    )
    try:
        parse_via_list(response.headers.get_all("via"))
    except SipParseError:
        return None
    return response


def _add_stateless_to_tag(fields: list[tuple[str, str]]) -> None:
    for i, (name, value) in enumerate(fields):
        if name == "To":
            try:
                if parse_name_addr(value, "To").tag is not None:
                    return
            except SipParseError:
                return  # a broken To goes back as it came
            text = "\n".join(v for _, v in fields).encode()
            tag = hashlib.blake2s(text, digest_size=8).hexdigest()
            fields[i] = (name, f"{value};tag={tag}")
            return


def make_request(
    method: str,
    uri: Uri,
    *,
    via: Via,
    from_: NameAddress,
    to: NameAddress,
    call_id: str,
    cseq: int,
    max_forwards: int = 70,
    contact: NameAddress | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """A new request from a UAC core (§8.1.1) with the mandatory headers first."""
    fields: list[tuple[str, str]] = [
        ("Via", str(via)),
        ("Max-Forwards", str(max_forwards)),
        ("From", str(from_)),
        ("To", str(to)),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {method}"),
    ]
    if contact is not None:
        fields.append(("Contact", str(contact)))
    fields.extend(headers)
    if body and content_type:
        fields.append(("Content-Type", content_type))
    return Request(method=method, uri=uri, headers=Headers(fields), body=body)
