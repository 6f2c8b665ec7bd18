"""The Replaces header (RFC 3891): its grammar, §3's matching rule and the verdicts of §3."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx.sip.dialog import DialogId
from pbx.sip.errors import SipParseError
from pbx.sip.replaces import (
    MAX_REPLACES_LENGTH,
    ReplaceableDialog,
    ReplacedDialogState,
    Replaces,
    ReplacesVerdict,
    judge_replaces,
    parse_replaces,
    replaces_of_request,
)

# ---------------------------------------------------------------------------
# Grammar (§6.1), on the RFC's own examples


def test_rfc_example_with_from_tag_first() -> None:
    # RFC 3891 §6.1: "Replaces: 98732@sip.example.com;from-tag=r33th4x0r;to-tag=ff87ff"
    value = parse_replaces("98732@sip.example.com\t;from-tag=r33th4x0r ;to-tag=ff87ff")
    assert value == Replaces(call_id="98732@sip.example.com", to_tag="ff87ff",
                             from_tag="r33th4x0r")  # fmt: skip
    assert not value.early_only
    assert str(value) == "98732@sip.example.com;to-tag=ff87ff;from-tag=r33th4x0r"


def test_rfc_example_with_early_only() -> None:
    # RFC 3891 §6.1: "Replaces: 12adf2f34456gs5;to-tag=12345;from-tag=54321;early-only"
    text = "12adf2f34456gs5;to-tag=12345;from-tag=54321;early-only"
    value = parse_replaces(text)
    assert (value.call_id, value.to_tag, value.from_tag) == ("12adf2f34456gs5", "12345", "54321")
    assert value.early_only
    assert str(value) == text


def test_unknown_params_are_kept() -> None:
    value = parse_replaces("a@b;to-tag=1;from-tag=2;x-vendor=7;flag")
    assert value.extensions == (("x-vendor", "7"), ("flag", None))
    assert parse_replaces(str(value)) == value


def test_call_id_with_word_characters() -> None:
    # callid = word [ "@" word ]; word takes ( ) < > : \ " / [ ] ? { }
    value = parse_replaces('x(1)<2>:"3"/[4]?{5}@host;to-tag=a;from-tag=b')
    assert value.call_id == 'x(1)<2>:"3"/[4]?{5}@host'


@pytest.mark.parametrize(
    "text",
    [
        "",
        ";to-tag=1;from-tag=2",
        "a@b;from-tag=2",  # no to-tag
        "a@b;to-tag=1",  # no from-tag
        "a@b;to-tag=1;to-tag=3;from-tag=2",  # "exactly one to-tag"
        "a@b;to-tag=1;from-tag=2;from-tag=3",
        "a@b;to-tag;from-tag=2",
        "a@b;to-tag=1;from-tag=2;early-only=yes",
        "a@b@c;to-tag=1;from-tag=2",
        "a b;to-tag=1;from-tag=2",
        "a@b;to-tag=1;from-tag=2;;",
        'a@b;to-tag="1";from-tag=2',
        "a" * MAX_REPLACES_LENGTH + ";to-tag=1;from-tag=2",
    ],
)
def test_malformed_values_are_a_400(text: str) -> None:
    with pytest.raises(SipParseError) as caught:
        parse_replaces(text)
    assert caught.value.status == 400


def test_a_value_is_checked_when_made() -> None:
    with pytest.raises(SipParseError):
        Replaces(call_id="a b", to_tag="1", from_tag="2")
    with pytest.raises(SipParseError):
        Replaces(call_id="a", to_tag="", from_tag="2")


# ---------------------------------------------------------------------------
# Which requests may carry one (§3)


def test_one_replaces_on_an_invite() -> None:
    found = replaces_of_request("INVITE", ["c@h;to-tag=1;from-tag=2"])
    assert found is not None and found.call_id == "c@h"
    assert replaces_of_request("INVITE", []) is None


@pytest.mark.parametrize(
    ("method", "values"),
    [
        ("INVITE", ["c@h;to-tag=1;from-tag=2", "d@h;to-tag=1;from-tag=2"]),
        ("INVITE", ["c@h;to-tag=1;from-tag=2, d@h;to-tag=1;from-tag=2"]),
        ("UPDATE", ["c@h;to-tag=1;from-tag=2"]),
        ("REFER", ["c@h;to-tag=1;from-tag=2"]),
    ],
)
def test_two_replaces_or_one_outside_an_invite_is_a_400(method: str, values: list[str]) -> None:
    with pytest.raises(SipParseError) as caught:
        replaces_of_request(method, values)
    assert caught.value.status == 400


# ---------------------------------------------------------------------------
# Matching (§3): the to-tag is the matcher's local tag


def test_the_sender_names_its_dialog_for_the_other_party() -> None:
    # Bob's dialog with Carol, seen by Bob (its UAC): local tag bob-1, remote tag carol-2.
    bob_side = DialogId("consult@bob", local_tag="bob-1", remote_tag="carol-2")
    replaces = Replaces.naming(bob_side)
    assert (replaces.to_tag, replaces.from_tag) == ("carol-2", "bob-1")
    # Carol, the other party, finds it as her own dialog ...
    carol_side = DialogId("consult@bob", local_tag="carol-2", remote_tag="bob-1")
    assert replaces.matches(carol_side)
    # ... and Bob's own view does not match (the tags are the other way round).
    assert not replaces.matches(bob_side)


def test_a_uas_dialog_matches_with_its_own_tag_as_to_tag() -> None:
    # We answered an INVITE from a phone: our tag is in the To of its requests, so a
    # Replaces the phone builds for that dialog has to-tag = our local tag.
    ours = DialogId("c1@phone", local_tag="switch-tag", remote_tag="phone-tag")
    assert parse_replaces("c1@phone;to-tag=switch-tag;from-tag=phone-tag").matches(ours)
    assert not parse_replaces("c1@phone;to-tag=phone-tag;from-tag=switch-tag").matches(ours)


@pytest.mark.parametrize(
    "other",
    [
        DialogId("C1@phone", "switch-tag", "phone-tag"),  # Call-ID is case-sensitive
        DialogId("c1@phone", "SWITCH-tag", "phone-tag"),
        DialogId("c1@phone", "switch-tag", "phone"),
        DialogId("c2@phone", "switch-tag", "phone-tag"),
    ],
)
def test_any_difference_is_no_match(other: DialogId) -> None:
    assert not parse_replaces("c1@phone;to-tag=switch-tag;from-tag=phone-tag").matches(other)


# ---------------------------------------------------------------------------
# The verdicts of §3

MINE = DialogId("call@here", local_tag="L", remote_tag="R")
NAMING_MINE = Replaces(call_id="call@here", to_tag="L", from_tag="R")


def dialog(
    state: ReplacedDialogState, *, invite: bool = True, initiated_here: bool = True,
    ident: DialogId = MINE,
) -> ReplaceableDialog:  # fmt: skip
    return ReplaceableDialog(id=ident, state=state, invite=invite, initiated_here=initiated_here)


CONFIRMED = ReplacedDialogState.CONFIRMED
EARLY = ReplacedDialogState.EARLY
TERMINATED = ReplacedDialogState.TERMINATED


@pytest.mark.parametrize(
    ("dialogs", "replaces", "authorized", "verdict", "status"),
    [
        ([], NAMING_MINE, True, ReplacesVerdict.NO_DIALOG, 481),
        ([dialog(CONFIRMED, ident=DialogId("other", "L", "R"))], NAMING_MINE, True,
         ReplacesVerdict.NO_DIALOG, 481),
        ([dialog(CONFIRMED, invite=False)], NAMING_MINE, True,
         ReplacesVerdict.NOT_INVITE_DIALOG, 481),
        ([dialog(TERMINATED)], NAMING_MINE, True, ReplacesVerdict.TERMINATED, 603),
        ([dialog(EARLY, initiated_here=False)], NAMING_MINE, True,
         ReplacesVerdict.EARLY_NOT_OURS, 481),
        ([dialog(CONFIRMED)], NAMING_MINE, False, ReplacesVerdict.NOT_AUTHORIZED, 403),
        ([dialog(CONFIRMED)], Replaces(call_id="call@here", to_tag="L", from_tag="R",
                                       early_only=True), True,
         ReplacesVerdict.CONFIRMED_BUT_EARLY_ONLY, 486),
        ([dialog(CONFIRMED)], NAMING_MINE, True, ReplacesVerdict.REPLACE_CONFIRMED, None),
        ([dialog(CONFIRMED, initiated_here=False)], NAMING_MINE, True,
         ReplacesVerdict.REPLACE_CONFIRMED, None),
        ([dialog(EARLY)], NAMING_MINE, True, ReplacesVerdict.REPLACE_EARLY, None),
        ([dialog(EARLY)], Replaces(call_id="call@here", to_tag="L", from_tag="R",
                                   early_only=True), True, ReplacesVerdict.REPLACE_EARLY, None),
    ],
)  # fmt: skip
def test_verdicts(
    dialogs: list[ReplaceableDialog], replaces: Replaces, authorized: bool,
    verdict: ReplacesVerdict, status: int | None,
) -> None:  # fmt: skip
    found, matched = judge_replaces(replaces, dialogs, authorized=authorized)
    assert found is verdict
    assert found.status == status
    assert found.accepted is (status is None)
    if verdict is ReplacesVerdict.NO_DIALOG:
        assert matched is None
    else:
        assert matched is dialogs[-1]


def test_of_several_matches_the_most_recently_active_is_taken() -> None:
    older = dialog(TERMINATED)
    newer = dialog(CONFIRMED)
    verdict, matched = judge_replaces(NAMING_MINE, [older, newer], authorized=True)
    assert verdict is ReplacesVerdict.REPLACE_CONFIRMED and matched is newer


def test_every_verdict_has_a_status_rule() -> None:
    assert {v.status for v in ReplacesVerdict} == {None, 481, 603, 486, 403}


# ---------------------------------------------------------------------------
# Round trips

_TOKEN_CHARS = st.characters(
    codec="ascii", categories=["Lu", "Ll", "Nd"], include_characters="-.!%*_+`'~"
)
_WORD_CHARS = st.characters(
    codec="ascii", categories=["Lu", "Ll", "Nd"], include_characters="-.!%*_+`'~()<>:\\\"/[]?{}"
)
tokens = st.text(_TOKEN_CHARS, min_size=1, max_size=20)
words = st.text(_WORD_CHARS, min_size=1, max_size=30)
call_ids = st.one_of(words, st.builds(lambda a, b: f"{a}@{b}", words, words))


@settings(max_examples=200, deadline=None)
@given(call_id=call_ids, to_tag=tokens, from_tag=tokens, early_only=st.booleans())
def test_serialize_then_parse_is_identity(
    call_id: str, to_tag: str, from_tag: str, early_only: bool
) -> None:
    value = Replaces(call_id=call_id, to_tag=to_tag, from_tag=from_tag, early_only=early_only)
    assert parse_replaces(str(value)) == value


@settings(max_examples=200, deadline=None)
@given(call_id=call_ids, local=tokens, remote=tokens)
def test_naming_matches_the_other_end(call_id: str, local: str, remote: str) -> None:
    sender = DialogId(call_id, local, remote)
    receiver = DialogId(call_id, remote, local)
    assert Replaces.naming(sender).matches(receiver)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_is_a_value_or_a_400(text: str) -> None:
    try:
        value = parse_replaces(text)
    except SipParseError as exc:
        assert exc.status == 400
    else:
        assert parse_replaces(str(value)) == value
