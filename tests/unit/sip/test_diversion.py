"""Diversion (RFC 5806) entries parse and serialize to the same values; History-Info builds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.sip.diversion import (
    Diversion,
    DiversionReason,
    add_diversion,
    format_diversion,
    format_history_info,
    forwarding_history,
    parse_diversion,
    total_diversions,
)
from pbx.sip.errors import SipParseError
from pbx.sip.headers import parse_name_addr_list
from pbx.sip.uri import SipUri, parse_sip_uri

TOKEN_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
tokens = st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12)
quoted_content = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=12
)
uris = st.builds(
    SipUri,
    user=st.text(alphabet="0123456789", min_size=2, max_size=8),
    host=st.sampled_from(["192.0.2.1", "pbx.example.com", "[2001:db8::1]", "switch"]),
    port=st.none() | st.integers(1, 65535),
)
extension_params = st.lists(
    st.tuples(
        tokens.filter(lambda t: t.lower() not in {"reason", "counter", "limit", "privacy",
                                                  "screen"}),
        st.none() | tokens,
    ),
    max_size=2,
    unique_by=lambda p: p[0].lower(),
)  # fmt: skip
diversions = st.builds(
    Diversion,
    uri=uris,
    display_name=st.none() | quoted_content,
    reason=st.sampled_from(list(DiversionReason)).map(str) | tokens | quoted_content,
    counter=st.integers(1, 99),
    limit=st.none() | st.integers(0, 99),
    privacy=st.none() | st.sampled_from(["full", "name", "uri", "off"]) | quoted_content,
    screen=st.none() | st.sampled_from(["yes", "no"]),
    extensions=extension_params.map(tuple),
)


@given(st.lists(diversions, min_size=1, max_size=3))
def test_parse_of_serialize_is_the_same_entries(entries: list[Diversion]) -> None:
    assert parse_diversion([format_diversion(entries)]) == tuple(entries)


def test_a_forwarded_call_from_201_when_busy() -> None:
    ours = add_diversion(
        (), uri=parse_sip_uri("sip:201@192.0.2.1"), reason=DiversionReason.USER_BUSY,
        display_name="Reception",
    )  # fmt: skip
    assert format_diversion(ours) == '"Reception" <sip:201@192.0.2.1>;reason=user-busy;counter=1'


def test_what_phones_and_trunks_send_parses() -> None:
    entries = parse_diversion(
        [
            "<sip:202@pbx.example.com>;reason=no-answer;counter=2;privacy=off",
            '"Bob" <tel:+15551234>;reason="unconditional";screen=no, <sip:203@pbx>',
        ]
    )
    assert [e.reason for e in entries] == ["no-answer", "unconditional", "unknown"]
    assert [e.counter for e in entries] == [2, 1, 1]  # an absent counter is 1 (RFC 5806)
    assert entries[1].display_name == "Bob" and entries[1].screen == "no"
    assert total_diversions(entries) == 4
    again = add_diversion(entries, uri=parse_sip_uri("sip:204@pbx"), reason="deflection")
    assert again[0].reason == "deflection" and again[1:] == entries


@pytest.mark.parametrize(
    "text",
    ["<sip:201@pbx>;counter=abc", "<sip:201@pbx>;counter=100", "<sip:201@pbx>;counter=0",
     "<sip:201@pbx>;limit=x", "<sip:201@pbx", "not a uri at all"],
)  # fmt: skip
def test_malformed_entries_are_a_parse_error(text: str) -> None:
    with pytest.raises(SipParseError):
        parse_diversion([text])


def test_out_of_range_counters_cannot_be_built() -> None:
    with pytest.raises(ValueError):
        Diversion(uri=parse_sip_uri("sip:201@pbx"), counter=0)


def test_history_info_for_a_forward_names_both_targets_and_the_cause() -> None:
    entries = forwarding_history(
        parse_sip_uri("sip:201@pbx"), parse_sip_uri("sip:202@pbx"), DiversionReason.NO_ANSWER
    )
    text = format_history_info(entries)
    assert text == (
        "<sip:201@pbx?Reason=SIP%3Bcause%3D408>;index=1, <sip:202@pbx;cause=408>;index=1.1;mp=1"
    )
    parsed = parse_name_addr_list([text], "History-Info")
    assert [p.param("index") for p in parsed] == ["1", "1.1"] and parsed[1].param("mp") == "1"
    assert isinstance(parsed[1].uri, SipUri) and parsed[1].uri.param("cause") == "408"
    onward = forwarding_history(
        parse_sip_uri("sip:202@pbx"), parse_sip_uri("sip:203@pbx"), "user-busy", prior=entries
    )
    assert [e.index for e in onward] == ["1", "1.1", "1.1.1"]
    assert onward[-1].mp == "1.1" and onward[-1].uri.param("cause") == "486"
