"""RFC 3261 §10.3 (and RFC 5626, 3327, 3581, 7616, 8760) rules, one test each, no I/O."""

from __future__ import annotations

from pbx.registrar.registrar import RegistrarPolicy
from pbx.sip.auth import DigestAlgorithm
from pbx.sip.digest_grammar import parse_challenge
from pbx.transport.flow import Flow
from tests.unit.registrar.harness import (
    PASSWORDS,
    PHONE,
    REALM,
    T0,
    Harness,
    edit,
    fixture,
    with_authorization,
)

YEALINK = "register_yealink_instance.sip"
LINPHONE = "register_linphone_two_contacts.sip"


def contact_values(outcome) -> list[str]:  # type: ignore[no-untyped-def]
    return outcome.response.headers.values("contact")


# -- authentication ----------------------------------------------------------------------------
SHA256_FIRST = (DigestAlgorithm.SHA_256, DigestAlgorithm.MD5)
"""The digest_algorithms setting of a box whose phones all answer SHA-256 (RFC 8760 order)."""


def test_first_register_gets_two_challenges_sha256_first() -> None:
    response = Harness(algorithms=SHA256_FIRST).challenge(fixture(YEALINK))
    challenges = [parse_challenge(v) for v in response.headers.get_all("www-authenticate")]
    assert [c.algorithm for c in challenges] == [DigestAlgorithm.SHA_256, DigestAlgorithm.MD5]
    assert all(c.realm == REALM and c.qop == ("auth",) for c in challenges)
    assert challenges[0].nonce == challenges[1].nonce  # one nonce, two algorithms
    assert response.to.tag  # §8.2.6.2


def test_unknown_extension_is_challenged_exactly_like_a_known_one() -> None:
    harness = Harness()
    known = harness.challenge(fixture(YEALINK))
    unknown_request = edit(
        fixture(YEALINK), To="<sip:299@192.0.2.1>", From="<sip:299@192.0.2.1>;tag=1938712311"
    )
    unknown = harness.challenge(unknown_request)
    assert known.status == unknown.status and known.reason == unknown.reason
    assert [n for n, _ in known.headers] == [n for n, _ in unknown.headers]
    shape = [
        v.replace(parse_challenge(v).nonce, "N") for v in known.headers.get_all("www-authenticate")
    ]
    other = [
        v.replace(parse_challenge(v).nonce, "N")
        for v in unknown.headers.get_all("www-authenticate")
    ]
    assert shape == other


def test_register_with_sha256_credentials_binds_the_contact() -> None:
    harness = Harness(algorithms=SHA256_FIRST)
    outcome = harness.register(fixture(YEALINK), algorithm="SHA-256")
    assert outcome.response.status == 200
    assert outcome.user == "201" and outcome.algorithm == "SHA-256"
    [binding] = outcome.saved
    assert binding.aor == "201"
    assert binding.contact == "sip:201@10.0.0.21:5062"
    assert binding.expires_at == T0 + 3600
    assert binding.user_agent == "Yealink SIP-T46S 66.86.0.15"
    assert binding.auth_algorithm == "SHA-256"
    assert harness.location.bindings_of("201") == [binding]


def test_a_refresh_saves_the_binding_but_adds_no_contact() -> None:
    harness = Harness()
    first = harness.register(fixture(YEALINK))
    assert (first.added, len(first.saved)) == (1, 1)
    refresh = harness.register(edit(fixture(YEALINK), CSeq="10 REGISTER"), now=T0 + 1800)
    assert refresh.response.status == 200
    assert (refresh.added, len(refresh.saved)) == (0, 1)  # the service logs it at DEBUG
    assert refresh.saved[0].expires_at == T0 + 1800 + 3600


def test_register_with_md5_credentials_is_accepted_and_recorded() -> None:
    outcome = Harness().register(fixture(YEALINK), algorithm="MD5")
    assert outcome.response.status == 200 and outcome.algorithm == "MD5"
    assert outcome.saved[0].auth_algorithm == "MD5"


def test_wrong_password_and_unknown_user_get_the_same_403_and_count_as_failures() -> None:
    harness = Harness()
    wrong = harness.register(fixture(YEALINK), password="not-the-password")
    unknown = harness.register(
        edit(fixture(YEALINK), To="<sip:299@192.0.2.1>"), password="whatever-password"
    )
    for outcome in (wrong, unknown):
        assert outcome.response.status == 403 and outcome.response.reason == "Forbidden"
        assert outcome.auth_failed and not outcome.saved
    assert [n for n, _ in wrong.response.headers] == [n for n, _ in unknown.response.headers]
    assert len(harness.location) == 0


def test_missing_credentials_are_not_a_failure() -> None:
    outcome = Harness().send(fixture(YEALINK))
    assert outcome.response.status == 401 and not outcome.auth_failed


def test_expired_nonce_gets_a_stale_challenge_not_a_failure() -> None:
    harness = Harness()
    request = fixture(YEALINK)
    challenge = harness.challenge(request, T0)
    value = harness.authorization(challenge, user="201", password=PASSWORDS["201"])
    outcome = harness.send(with_authorization(request, value, 2), T0 + 3600)
    assert outcome.response.status == 401 and not outcome.auth_failed
    assert all(
        parse_challenge(v).stale for v in outcome.response.headers.get_all("www-authenticate")
    )


def test_a_replayed_authorization_on_a_new_request_is_challenged_again() -> None:
    harness = Harness()
    request = fixture(YEALINK)
    challenge = harness.challenge(request)
    value = harness.authorization(challenge, user="201", password=PASSWORDS["201"])
    assert harness.send(with_authorization(request, value, 2)).response.status == 200
    replay = harness.send(with_authorization(request, value, 3), T0 + 1)
    assert replay.response.status == 401 and not replay.saved and not replay.auth_failed


def test_a_retransmitted_register_is_answered_200_without_changes() -> None:
    harness = Harness()
    request = fixture(YEALINK)
    challenge = harness.challenge(request)
    value = harness.authorization(challenge, user="201", password=PASSWORDS["201"])
    first = harness.send(with_authorization(request, value, 2))
    again = harness.send(with_authorization(request, value, 2), T0 + 0.5)
    assert first.response.status == again.response.status == 200
    assert again.saved == () and again.removed == ()
    assert contact_values(again) == contact_values(first)


def test_authenticated_as_another_extension_is_forbidden_but_not_a_failure() -> None:
    harness = Harness()
    request = edit(fixture(YEALINK), To="<sip:202@192.0.2.1>")
    challenge = harness.challenge(request)
    value = harness.authorization(challenge, user="201", password=PASSWORDS["201"])
    outcome = harness.send(with_authorization(request, value, 2))
    assert outcome.response.status == 403 and not outcome.auth_failed
    assert outcome.user == "201" and not outcome.saved


def test_malformed_authorization_gets_400() -> None:
    request = with_authorization(fixture(YEALINK), 'Digest username="201", realm=', 2)
    assert Harness().send(request).response.status == 400


def test_credentials_for_another_realm_are_ignored_and_challenged() -> None:
    value = (
        'Digest username="201", realm="elsewhere", nonce="abc", uri="sip:192.0.2.1", '
        'response="0123456789abcdef0123456789abcdef"'
    )
    outcome = Harness().send(with_authorization(fixture(YEALINK), value, 2))
    assert outcome.response.status == 401


# -- expiry -------------------------------------------------------------------------------------
def test_contact_expires_parameter_wins_over_the_header() -> None:
    outcome = Harness().register(fixture(LINPHONE))
    assert outcome.response.status == 200
    by_contact = {b.contact: b for b in outcome.saved}
    assert by_contact["sip:202@10.0.0.22:5060;transport=udp"].expires_at == T0 + 600
    assert by_contact["sip:202@10.0.0.23:5060"].expires_at == T0 + 1200  # Expires header
    assert by_contact["sip:202@10.0.0.22:5060;transport=udp"].q == 0.8


def test_no_expires_anywhere_means_the_default() -> None:
    policy = RegistrarPolicy(default_expires=1800)
    outcome = Harness(policy=policy).register(edit(fixture(YEALINK), Expires=None))
    assert outcome.saved[0].expires_at == T0 + 1800


def test_too_brief_gets_423_with_min_expires_and_changes_nothing() -> None:
    harness = Harness(policy=RegistrarPolicy(min_expires=60))
    outcome = harness.register(edit(fixture(YEALINK), Expires="30"))
    assert outcome.response.status == 423
    assert outcome.response.headers.get("min-expires") == "60"
    assert not outcome.saved and len(harness.location) == 0


def test_too_long_is_shortened_to_the_maximum() -> None:
    harness = Harness(policy=RegistrarPolicy(max_expires=900))
    outcome = harness.register(edit(fixture(YEALINK), Expires="86400"))
    assert outcome.saved[0].expires_at == T0 + 900
    assert ";expires=900" in contact_values(outcome)[0]


def test_200_lists_every_binding_with_its_remaining_time_and_a_date() -> None:
    harness = Harness()
    harness.register(fixture(LINPHONE))
    query = harness.register(fixture("register_query_no_contact.sip"), now=T0 + 100)
    assert query.response.status == 200 and not query.saved
    values = sorted(contact_values(query))
    assert values == [
        "<sip:202@10.0.0.22:5060;transport=udp>;expires=500;q=0.8",
        "<sip:202@10.0.0.23:5060>;expires=1100",
    ]
    assert query.response.headers.get("date") == "Fri, 15 Jan 2027 08:01:40 GMT"


def test_expires_zero_removes_one_binding() -> None:
    harness = Harness()
    harness.register(fixture(LINPHONE))
    request = edit(
        fixture(LINPHONE), CSeq="30 REGISTER", Contact="<sip:202@10.0.0.23:5060>;expires=0"
    )
    outcome = harness.register(request)
    assert [b.contact for b in outcome.removed] == ["sip:202@10.0.0.23:5060"]
    assert [b.contact for b in harness.location.bindings_of("202")] == [
        "sip:202@10.0.0.22:5060;transport=udp"
    ]


def test_star_with_expires_zero_removes_every_binding() -> None:
    harness = Harness()
    harness.register(fixture(LINPHONE))
    request = edit(fixture("register_star_unregister.sip"), Call_ID="another-call-id")
    outcome = harness.register(request)
    assert outcome.response.status == 200
    assert len(outcome.removed) == 2 and len(harness.location) == 0
    assert contact_values(outcome) == []


def test_star_needs_expires_zero_and_no_other_contact() -> None:
    harness = Harness()
    star = fixture("register_star_unregister.sip")
    assert harness.register(edit(star, Expires="60")).response.status == 400
    both = edit(star, Contact="*, <sip:202@10.0.0.22>")
    assert harness.register(both).response.status == 400


# -- CSeq order per Call-ID (§10.3 step 7) ------------------------------------------------------
def test_an_older_cseq_from_the_same_call_id_is_refused() -> None:
    harness = Harness()
    harness.register(edit(fixture(YEALINK), CSeq="10 REGISTER"))  # binds with CSeq 11
    outcome = harness.register(edit(fixture(YEALINK), CSeq="4 REGISTER", Expires="0"))
    assert outcome.response.status == 400 and outcome.response.reason == "CSeq out of order"
    assert len(harness.location) == 1


def test_a_new_call_id_may_start_with_any_cseq() -> None:
    harness = Harness()
    harness.register(edit(fixture(YEALINK), CSeq="10 REGISTER"))
    outcome = harness.register(edit(fixture(YEALINK), Call_ID="rebooted@10.0.0.21"), now=T0 + 5)
    assert outcome.response.status == 200 and outcome.saved[0].expires_at == T0 + 5 + 3600


# -- NAT and RFC 5626 ---------------------------------------------------------------------------
def test_the_binding_keeps_where_the_request_really_came_from() -> None:
    nat = Flow(transport="TCP", local=("192.0.2.1", 5060), remote=("203.0.113.9", 61000))
    outcome = Harness().register(fixture(YEALINK), flow=nat)
    binding = outcome.saved[0]
    assert (binding.received_host, binding.received_port, binding.transport) == (
        "203.0.113.9",
        61000,
        "TCP",
    )
    assert binding.contact == "sip:201@10.0.0.21:5062"  # the private address stays as sent


def test_same_instance_from_a_new_port_replaces_its_binding() -> None:
    harness = Harness()
    harness.register(fixture(YEALINK))
    moved = edit(
        fixture(YEALINK),
        Call_ID="after-nat-rebind",
        Contact='<sip:201@10.0.0.21:6000>;reg-id=1;+sip.instance="<urn:uuid:00000000-0000-1000-8000-805ec0a1b2c3>"',
    )
    other_port = Flow(transport="UDP", local=PHONE.local, remote=("198.51.100.21", 50000))
    outcome = harness.register(moved, flow=other_port)
    assert outcome.response.status == 200
    [binding] = harness.location.bindings_of("201")
    assert binding.contact == "sip:201@10.0.0.21:6000" and binding.received_port == 50000
    assert binding.instance_id == "<urn:uuid:00000000-0000-1000-8000-805ec0a1b2c3>"
    assert binding.reg_id == 1


def test_without_an_instance_a_new_contact_is_a_new_binding() -> None:
    harness = Harness()
    harness.register(fixture(LINPHONE))
    request = edit(fixture(LINPHONE), Call_ID="x2", Contact="<sip:202@10.0.0.99:5060>")
    harness.register(request)
    assert len(harness.location.bindings_of("202")) == 3


def test_the_oldest_binding_gives_way_past_max_contacts() -> None:
    harness = Harness(policy=RegistrarPolicy(max_contacts=2))
    for port, when in ((5001, T0), (5002, T0 + 1), (5003, T0 + 2)):
        request = edit(fixture(LINPHONE), Call_ID=f"c{port}", Contact=f"<sip:202@10.0.0.9:{port}>")
        outcome = harness.register(request, now=when)
        assert outcome.response.status == 200
    assert [b.contact for b in outcome.removed] == ["sip:202@10.0.0.9:5001"]
    assert sorted(b.contact for b in harness.location.bindings_of("202")) == [
        "sip:202@10.0.0.9:5002",
        "sip:202@10.0.0.9:5003",
    ]


# -- Path (RFC 3327) ----------------------------------------------------------------------------
def test_path_is_stored_and_echoed_in_the_200() -> None:
    outcome = Harness().register(fixture("register_through_edge_proxy_path.sip"))
    assert outcome.response.status == 200
    assert outcome.saved[0].path == ("<sip:edge@192.0.2.50;lr>",)
    assert outcome.response.headers.get_all("path") == ["<sip:edge@192.0.2.50;lr>"]


def test_malformed_expires_parameter_gets_400() -> None:
    request = edit(fixture(LINPHONE), Contact="<sip:202@10.0.0.22>;expires=soon")
    assert Harness().register(request).response.status == 400


def test_malformed_q_gets_400() -> None:
    request = edit(fixture(LINPHONE), Contact="<sip:202@10.0.0.22>;q=7")
    assert Harness().register(request).response.status == 400
