"""Which digest algorithms a phone is challenged with: the box's default, or its extension's own
choice; answers outside the offer fail; other schemes are challenged as if absent."""

from __future__ import annotations

import pytest

from pbx.sip.auth import DigestAlgorithm
from pbx.sip.digest_grammar import parse_challenge
from pbx.sip.message import Response
from tests.unit.registrar.harness import Harness, edit, fixture, with_authorization

YEALINK = "register_yealink_instance.sip"  # extension 201
MD5, SHA_256 = DigestAlgorithm.MD5, DigestAlgorithm.SHA_256


def offered(response: Response) -> list[str]:
    return [
        parse_challenge(v).algorithm.value for v in response.headers.get_all("www-authenticate")
    ]


def test_the_box_default_offer_is_md5_alone() -> None:
    assert offered(Harness().challenge(fixture(YEALINK))) == ["MD5"]


@pytest.mark.parametrize(
    "choice",
    [(SHA_256,), (SHA_256, MD5), (MD5,), (MD5, SHA_256)],
    ids=lambda c: ",".join(a.value for a in c),
)
def test_an_extension_is_challenged_with_its_own_choice_in_its_order(
    choice: tuple[DigestAlgorithm, ...],
) -> None:
    harness = Harness(offers={"201": choice})
    assert offered(harness.challenge(fixture(YEALINK))) == [a.value for a in choice]


def test_an_unknown_user_gets_the_default_like_an_extension_that_did_not_choose() -> None:
    harness = Harness(offers={"201": (SHA_256,)})
    unknown = edit(fixture(YEALINK), To="<sip:299@192.0.2.1>", From="<sip:299@192.0.2.1>;tag=9")
    default = edit(fixture(YEALINK), To="<sip:202@192.0.2.1>", From="<sip:202@192.0.2.1>;tag=9")
    assert offered(harness.challenge(unknown)) == offered(harness.challenge(default)) == ["MD5"]


def test_sha256_only_refuses_an_md5_answer_like_a_wrong_password() -> None:
    harness = Harness(offers={"201": (SHA_256,)})
    challenge = harness.challenge(fixture(YEALINK))
    [value] = challenge.headers.get_all("www-authenticate")
    # The same nonce answered in MD5 (a downgrade): the digest is right, the algorithm is not.
    downgraded = Response(
        headers=challenge.headers.with_set(
            "WWW-Authenticate", value.replace("algorithm=SHA-256", "algorithm=MD5")
        ),
        body=b"",
        status=401,
        reason="Unauthorized",
    )
    answer = harness.authorization(downgraded, user="201", password="Reception-pass-201",
                                   algorithm="MD5")  # fmt: skip
    outcome = harness.send(with_authorization(fixture(YEALINK), answer, 2))
    assert (outcome.response.status, outcome.auth_failed) == (403, True)
    ok = harness.register(fixture(YEALINK), algorithm="SHA-256")
    assert (ok.response.status, ok.algorithm) == (200, "SHA-256")


def test_an_md5_extension_is_not_challenged_with_sha256_and_registers_with_md5() -> None:
    harness = Harness()
    outcome = harness.register(fixture(YEALINK), algorithm="MD5")
    assert (outcome.response.status, outcome.algorithm) == (200, "MD5")
    assert outcome.saved[0].auth_algorithm == "MD5"


@pytest.mark.parametrize(
    "authorization",
    ["Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==", "NoOneKnowsThisScheme opaque-data=here",
     "Bearer abc.def"],
)  # fmt: skip
def test_credentials_of_an_unknown_scheme_get_a_challenge_not_a_400(authorization: str) -> None:
    """RFC 4475 §3.3.7: the registrar knows no such scheme, so it challenges (401)."""
    harness = Harness()
    outcome = harness.send(with_authorization(fixture(YEALINK), authorization, 2))
    assert outcome.response.status == 401 and offered(outcome.response) == ["MD5"]
    assert not outcome.auth_failed


def test_a_malformed_digest_answer_is_still_a_400() -> None:
    outcome = Harness().send(with_authorization(fixture(YEALINK), "Digest username=", 2))
    assert outcome.response.status == 400


def test_rfc4475_unknown_authorization_scheme_register_is_challenged() -> None:
    """RFC 4475 §3.3.7's message (addressed to our extension 201)."""
    outcome = Harness().send(fixture("register_unknown_authorization_scheme.sip"))
    assert outcome.response.status == 401
    assert outcome.response.headers.get_all("www-authenticate")
