"""Driving the pure registrar with recorded REGISTER messages, a fake clock and real digests."""

from __future__ import annotations

import itertools
from dataclasses import replace

from pbx.config import Settings
from pbx.registrar.location import Location
from pbx.registrar.registrar import RegisterOutcome, Registrar, RegistrarPolicy
from pbx.sip.auth import DigestAlgorithm, DigestAuthenticator, compute_ha1
from pbx.sip.auth_client import answer_challenge
from pbx.sip.digest_grammar import parse_challenge
from pbx.sip.message import Request, Response, parse_message
from pbx.store.extensions import StoredSecrets
from pbx.transport.flow import Flow
from tests.unit.sip.sipdata import load_request

DEFAULT_OFFER = tuple(DigestAlgorithm(name) for name in Settings().digest_algorithms)
"""The box's default offer, as a user gets it (MD5)."""
REALM = "switchboard"
SECRET = b"registrar-tests-secret-0123456789"
PASSWORDS = {"201": "Reception-pass-201", "202": "Linphone-pass-202", "203": "Edge-pass-203"}
PHONE = Flow(transport="UDP", local=("192.0.2.1", 5060), remote=("198.51.100.21", 40021))
T0 = 1_800_000_000.0


def edit(request: Request, **fields: str | None) -> Request:
    """The request with header fields set (``Call_ID`` -> ``Call-ID``; None removes)."""
    headers = request.headers
    for key, value in fields.items():
        name = key.replace("_", "-")
        headers = headers.without(name) if value is None else headers.with_set(name, value)
    message = parse_message(bytes(replace(request, headers=headers)))
    assert isinstance(message, Request)
    return message


def with_authorization(request: Request, value: str, cseq: int) -> Request:
    bumped = edit(request, CSeq=f"{cseq} REGISTER")
    message = parse_message(
        bytes(replace(bumped, headers=bumped.headers.with_added("Authorization", value)))
    )
    assert isinstance(message, Request)
    return message


class Harness:
    def __init__(
        self,
        *,
        policy: RegistrarPolicy | None = None,
        algorithms: tuple[DigestAlgorithm, ...] = DEFAULT_OFFER,
        offers: dict[str, tuple[DigestAlgorithm, ...]] | None = None,
    ) -> None:
        """``algorithms``: the box's default offer (the digest_algorithms setting);
        ``offers``: extensions that chose their own."""
        self.authenticator = DigestAuthenticator(
            realm=REALM, secret=SECRET, algorithms=(DigestAlgorithm.SHA_256, DigestAlgorithm.MD5)
        )
        self.secrets = {
            number: StoredSecrets(
                compute_ha1(
                    username=number, realm=REALM, password=pw, algorithm=DigestAlgorithm.MD5
                ),
                compute_ha1(
                    username=number, realm=REALM, password=pw, algorithm=DigestAlgorithm.SHA_256
                ),
                (offers or {}).get(number),
            )
            for number, pw in PASSWORDS.items()
        }
        self.location = Location()
        tags = itertools.count(1)
        salts = itertools.count(1)
        self.registrar = Registrar(
            authenticator=self.authenticator,
            secrets_of=self.secrets.get,
            location=self.location,
            new_tag=lambda: f"tag{next(tags)}",
            new_salt=lambda: next(salts).to_bytes(16, "big"),
            policy=policy,
            default_offer=algorithms,
        )

    def send(self, request: Request, now: float = T0, flow: Flow = PHONE) -> RegisterOutcome:
        return self.registrar.handle(request, flow, now)

    def challenge(self, request: Request, now: float = T0) -> Response:
        outcome = self.send(request, now)
        assert outcome.response.status == 401, outcome.response
        return outcome.response

    def authorization(
        self,
        challenge: Response,
        *,
        user: str,
        password: str,
        algorithm: str = "MD5",
        uri: str = "sip:192.0.2.1",
        nc: int = 1,
    ) -> str:
        for value in challenge.headers.get_all("www-authenticate"):
            parsed = parse_challenge(value)
            if parsed.algorithm.value == algorithm:
                credentials = answer_challenge(
                    parsed,
                    username=user,
                    password=password,
                    method="REGISTER",
                    uri=uri,
                    cnonce="0a4f113b",
                    nc=nc,
                )
                return credentials.to_header_value()
        raise AssertionError(f"no {algorithm} challenge")

    def register(
        self,
        request: Request,
        *,
        now: float = T0,
        flow: Flow = PHONE,
        password: str | None = None,
        algorithm: str = "MD5",
    ) -> RegisterOutcome:
        """The whole exchange: REGISTER, 401, REGISTER with credentials (CSeq + 1)."""
        user = request.to.uri.user  # type: ignore[union-attr]
        assert user is not None
        challenge = self.challenge(request, now)
        value = self.authorization(
            challenge,
            user=user,
            password=PASSWORDS.get(user, "x") if password is None else password,
            algorithm=algorithm,
        )
        return self.send(with_authorization(request, value, request.cseq.seq + 1), now, flow)


def fixture(name: str) -> Request:
    return load_request(name)
