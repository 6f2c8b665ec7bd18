"""The registrar (RFC 3261 §10.3): REGISTER in, a response and binding changes out.

Pure: it reads the in-memory location and the stored digest secrets (through an injected
lookup), and returns what to answer and which bindings to save or delete; the edge writes
those to the store and sends the response. Time (wall clock, since bindings outlive the
process) and randomness are arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate

from pbx.registrar.location import Location
from pbx.routing.digest_check import offer_for
from pbx.sip.auth import (
    DigestAlgorithm,
    DigestAuthenticator,
    DigestCredentials,
    DigestOutcome,
    parse_credentials,
)
from pbx.sip.digest_grammar import is_digest_scheme
from pbx.sip.errors import SipParseError
from pbx.sip.headers import NameAddress, parse_expires
from pbx.sip.message import Request, Response, make_response
from pbx.sip.uri import SipUri
from pbx.store.extensions import StoredSecrets
from pbx.store.records import Binding
from pbx.transport.flow import Flow

SecretsLookup = Callable[[str], StoredSecrets | None]
"""The stored HA1 pair of an extension number, or None when there is no such extension."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrarPolicy:
    min_expires: int = 60
    """Shorter requests get 423 with Min-Expires (§10.3 step 7)."""
    max_expires: int = 3600
    """Longer requests are shortened to this (§10.3 step 7 lets the registrar pick)."""
    default_expires: int = 3600
    """When neither the Contact nor the request says (§10.2.1.1)."""
    max_contacts: int = 10
    """Per extension; the oldest binding gives way, so a phone that keeps changing ports
    without an instance id cannot pile bindings up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterOutcome:
    response: Response
    saved: tuple[Binding, ...] = ()
    removed: tuple[Binding, ...] = ()
    added: int = 0
    """How many of ``saved`` are contacts the AOR did not have (the rest are refreshes)."""
    auth_failed: bool = False
    """Wrong credentials (or an unknown user): counts toward banning the source."""
    user: str | None = None
    """The authenticated extension, when authentication succeeded."""
    algorithm: str | None = None


@dataclass(slots=True)
class _Changes:
    saved: dict[str, Binding] = field(default_factory=dict)
    removed: dict[str, Binding] = field(default_factory=dict)
    added: int = 0


class _Reject(Exception):
    def __init__(self, status: int, reason: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or []


class Registrar:
    """Serves REGISTER for the extensions of one realm."""

    def __init__(
        self,
        *,
        authenticator: DigestAuthenticator,
        secrets_of: SecretsLookup,
        location: Location,
        new_tag: Callable[[], str],
        new_salt: Callable[[], bytes],
        policy: RegistrarPolicy | None = None,
        server: str = "Switchboard",
        default_offer: tuple[DigestAlgorithm, ...] = (DigestAlgorithm.MD5,),
    ) -> None:
        """``default_offer``: the digest algorithms challenged for an extension that has not
        chosen its own, and for an unknown user (so it is answered like a known one)."""
        self._auth = authenticator
        self._default_offer = default_offer
        self._secrets_of = secrets_of
        self.location = location
        self._new_tag = new_tag
        self._new_salt = new_salt
        self.policy = policy or RegistrarPolicy()
        self._server = server
        self._date_second = -1
        self._date_text = ""

    # -- the request -----------------------------------------------------------------------
    def handle(self, request: Request, flow: Flow, now: float) -> RegisterOutcome:
        credentials = self._credentials(request)
        if isinstance(credentials, Response):
            return RegisterOutcome(response=credentials)
        aor = _aor_user(request.to)
        if credentials is None:
            return RegisterOutcome(response=self._challenge(request, aor, now, stale=False))
        secrets = self._secrets_of(credentials.username)
        ha1 = None if secrets is None else secrets.ha1_for(credentials.algorithm)
        outcome = self._auth.verify(
            credentials, ha1=ha1, method="REGISTER", request_uri=str(request.uri), now=now,
            offer=offer_for(secrets, self._default_offer),  # SHA-256 only means no MD5
        )  # fmt: skip
        if outcome is DigestOutcome.STALE:
            return RegisterOutcome(response=self._challenge(request, aor, now, stale=True))
        if outcome is DigestOutcome.REPLAY:
            # Over UDP a phone retransmits a REGISTER whose 200 was lost, same nc and all:
            # a request we already applied is answered again; any other replay is challenged.
            if not (aor and self._already_applied(aor, request)):
                return RegisterOutcome(response=self._challenge(request, aor, now, stale=False))
        elif outcome is not DigestOutcome.OK:
            # Unknown user, wrong password, wrong realm or URI: one answer for all, so a
            # scanner learns nothing about which extensions exist.
            return RegisterOutcome(
                response=self._reply(request, 403, "Forbidden"), auth_failed=True
            )
        algorithm = credentials.algorithm.value
        if aor != credentials.username:
            # §10.3 step 4: authenticated, but not as the owner of this address of record.
            return RegisterOutcome(
                response=self._reply(request, 403, "Forbidden"), user=credentials.username
            )
        try:
            changes = self._apply(request, flow, aor, algorithm, now)
        except _Reject as reject:
            return RegisterOutcome(
                response=self._reply(request, reject.status, reject.reason, reject.headers),
                user=aor,
                algorithm=algorithm,
            )
        except SipParseError as exc:
            return RegisterOutcome(
                response=self._reply(request, exc.status, exc.reason), user=aor, algorithm=algorithm
            )
        return RegisterOutcome(
            response=self._ok(request, aor, now),
            saved=tuple(changes.saved.values()),
            removed=tuple(changes.removed.values()),
            added=changes.added,
            user=aor,
            algorithm=algorithm,
        )

    def _credentials(self, request: Request) -> DigestCredentials | Response | None:
        """Our realm's Authorization answer; None when there is none (challenge)."""
        for value in request.headers.get_all("authorization"):
            if not is_digest_scheme(value):
                continue  # another scheme: challenged as if absent (RFC 4475 §3.3.7)
            try:
                credentials = parse_credentials(value)
            except (SipParseError, ValueError):
                return self._reply(request, 400, "Malformed Authorization header")
            if credentials.realm == self._auth.realm:
                return credentials
        return None

    def _already_applied(self, aor: str, request: Request) -> bool:
        cseq = request.cseq.seq
        call_id = request.call_id
        return any(b.call_id == call_id and b.cseq == cseq for b in self.location.bindings_of(aor))

    # -- bindings (§10.3 steps 6-8) ---------------------------------------------------------
    def _apply(
        self, request: Request, flow: Flow, aor: str, algorithm: str, now: float
    ) -> _Changes:
        policy = self.policy
        header_expires = _header_expires(request)
        call_id = request.call_id
        cseq = request.cseq.seq
        changes = _Changes()
        current = {b.binding_key: b for b in self.location.bindings_of(aor)}

        if request.contact_star:
            # §10.3 step 6: "*" only alone and only with Expires: 0.
            if request.contacts or header_expires != 0:
                raise _Reject(400, "Invalid wildcard Contact")
            for key, binding in current.items():
                if binding.call_id == call_id and binding.cseq >= cseq:
                    continue  # step 6: a newer request from the same Call-ID wins
                changes.removed[key] = binding
            self._commit(aor, changes)
            return changes

        planned: list[tuple[NameAddress, str, int]] = []
        for contact in request.contacts:
            expires = _contact_expires(contact, header_expires, policy.default_expires)
            if 0 < expires < policy.min_expires:
                raise _Reject(423, "Interval Too Brief", [("Min-Expires", str(policy.min_expires))])
            planned.append((contact, _binding_key(contact), min(expires, policy.max_expires)))

        for contact, key, expires in planned:
            existing = current.get(key)
            if existing is not None and existing.call_id == call_id:
                if existing.cseq == cseq:
                    continue  # a retransmission of what is already applied
                if existing.cseq > cseq:
                    raise _Reject(400, "CSeq out of order")
            if expires == 0:
                if existing is not None:
                    changes.removed[key] = existing
                continue
            changes.saved[key] = self._binding(
                request, flow, aor, contact, key, expires, algorithm, now, existing
            )
            if existing is None:
                changes.added += 1

        # Keep at most max_contacts: the least recently registered give way.
        remaining = {k: b for k, b in current.items() if k not in changes.removed}
        remaining.update(changes.saved)
        excess = len(remaining) - policy.max_contacts
        if excess > 0:
            oldest = sorted(
                (b for k, b in remaining.items() if k not in changes.saved),
                key=lambda b: b.registered_at,
            )
            for binding in oldest[:excess]:
                changes.removed[binding.binding_key] = binding
        self._commit(aor, changes)
        return changes

    def _commit(self, aor: str, changes: _Changes) -> None:
        for key in changes.removed:
            self.location.remove(aor, key)
        for binding in changes.saved.values():
            self.location.put(binding)

    def _binding(
        self,
        request: Request,
        flow: Flow,
        aor: str,
        contact: NameAddress,
        key: str,
        expires: int,
        algorithm: str,
        now: float,
        existing: Binding | None,
    ) -> Binding:
        q_text = contact.param("q")
        reg_id = contact.param("reg-id")
        return Binding(
            aor=aor,
            binding_key=key,
            contact=str(contact.uri),
            expires_at=now + expires,
            q=_q_value(q_text),
            received_host=flow.remote[0],
            received_port=flow.remote[1],
            transport=flow.transport,
            local_host=flow.local[0],
            local_port=flow.local[1],
            instance_id=_instance_id(contact),
            reg_id=int(reg_id) if reg_id and reg_id.isdigit() else None,
            user_agent=request.headers.get("user-agent"),
            call_id=request.call_id,
            cseq=request.cseq.seq,
            path=tuple(request.headers.values("path")),
            auth_algorithm=algorithm,
            registered_at=now,
            # A refresh keeps what qualify learnt until the next probe says otherwise.
            reachable=None if existing is None else existing.reachable,
            rtt_ms=None if existing is None else existing.rtt_ms,
            qualified_at=None if existing is None else existing.qualified_at,
        )

    # -- responses -------------------------------------------------------------------------
    def _ok(self, request: Request, aor: str, now: float) -> Response:
        """§10.3 step 8: 200 listing every current binding with its remaining time."""
        headers: list[tuple[str, str]] = []
        for binding in self.location.bindings_of(aor):
            params = f";expires={max(0, int(binding.expires_at - now + 0.5))}"
            if binding.q is not None:
                params += f";q={binding.q:g}"
            if binding.instance_id is not None:
                params += f';+sip.instance="{binding.instance_id}"'
                if binding.reg_id is not None:
                    params += f";reg-id={binding.reg_id}"
            headers.append(("Contact", f"<{binding.contact}>{params}"))
            if binding.path and binding.call_id == request.call_id:
                # RFC 3327 §5.3: echo the Path the registering phone's proxies added.
                headers.extend(("Path", hop) for hop in binding.path)
        headers.append(("Date", self._date(now)))
        return self._reply(request, 200, "OK", headers)

    def _date(self, now: float) -> str:
        """The Date header's value (§20.17), formatted once per second, not per 200."""
        second = int(now)
        if second != self._date_second:
            self._date_second, self._date_text = second, formatdate(second, usegmt=True)
        return self._date_text

    def _challenge(self, request: Request, aor: str | None, now: float, *, stale: bool) -> Response:
        """§22.4 / RFC 8760: one WWW-Authenticate per algorithm the extension is offered."""
        offer = offer_for(None if aor is None else self._secrets_of(aor), self._default_offer)
        values = self._auth.challenge_values(
            now=now, salt=self._new_salt(), stale=stale, offer=offer
        )
        return self._reply(
            request, 401, "Unauthorized", [("WWW-Authenticate", value) for value in values]
        )

    def _reply(
        self,
        request: Request,
        status: int,
        reason: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> Response:
        extra = list(headers or [])
        extra.append(("Server", self._server))
        return make_response(request, status, reason, to_tag=self._new_tag(), headers=extra)


# -- small rules ---------------------------------------------------------------------------
def _aor_user(to: NameAddress) -> str | None:
    uri = to.uri
    if isinstance(uri, SipUri) and uri.user:
        return uri.user
    return None


def _header_expires(request: Request) -> int | None:
    value = request.headers.get("expires")
    return None if value is None else parse_expires(value)


def _contact_expires(contact: NameAddress, header: int | None, default: int) -> int:
    """§10.2.1.1: the Contact's expires parameter, else the Expires header, else ours."""
    text = contact.param("expires")
    if text is not None:
        try:
            return parse_expires(text)
        except SipParseError:
            raise _Reject(400, "Malformed expires parameter") from None
    return default if header is None else header


def _instance_id(contact: NameAddress) -> str | None:
    """RFC 5626 §4.1: +sip.instance is a quoted URN, e.g. "<urn:uuid:...>"."""
    value = contact.param("+sip.instance")
    if not value:
        return None
    return value.strip('"')


def _binding_key(contact: NameAddress) -> str:
    """A phone that says who it is (+sip.instance, reg-id) replaces its own binding even
    when it comes back from a new address; otherwise the contact URI names the binding."""
    instance = _instance_id(contact)
    if instance is not None:
        reg_id = contact.param("reg-id")
        return f"instance {instance};reg-id={reg_id}" if reg_id else f"instance {instance}"
    return str(contact.uri)


def _q_value(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        q = float(text)
    except ValueError:
        raise _Reject(400, "Malformed q parameter") from None
    if not 0.0 <= q <= 1.0:
        raise _Reject(400, "Malformed q parameter")
    return q
