"""Telephone-event payloads (RFC 4733 §2.3): fields, the digit table, totality, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.media.rfc4733 import (
    DTMF_EVENTS,
    TelephoneEvent,
    TelephoneEventError,
    event_for_digit,
)


def test_end_of_digit_5() -> None:
    event = TelephoneEvent.parse(bytes.fromhex("058a0500"))
    assert event == TelephoneEvent(event=5, end=True, volume=10, duration=1280)
    assert event.digit == "5"
    assert bytes(event) == bytes.fromhex("058a0500")


def test_reserved_bit_is_kept_and_other_events_have_no_digit() -> None:
    event = TelephoneEvent.parse(bytes.fromhex("424a00a0"))  # event 66, R=1, volume 10
    assert event.reserved and not event.end and event.volume == 10 and event.duration == 160
    assert event.digit is None
    assert bytes(event) == bytes.fromhex("424a00a0")


@pytest.mark.parametrize(("digit", "number"), [("0", 0), ("9", 9), ("*", 10), ("#", 11), ("d", 15)])
def test_dtmf_digits_are_events_0_to_15(digit: str, number: int) -> None:
    assert event_for_digit(digit) == number
    assert TelephoneEvent(event=number).digit == digit.upper()


def test_not_a_digit() -> None:
    for text in ("E", "", "12"):
        with pytest.raises(ValueError, match="not a DTMF digit"):
            event_for_digit(text)


@pytest.mark.parametrize("field", [{"event": 256}, {"volume": 64}, {"duration": 65536}])
def test_values_out_of_range_are_refused(field: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        TelephoneEvent(**{"event": 1, **field})


@given(st.binary(max_size=8))
def test_parse_is_total(data: bytes) -> None:
    try:
        event = TelephoneEvent.parse(data)
    except TelephoneEventError:
        assert len(data) != 4
        return
    assert bytes(event) == data


@given(
    st.builds(
        TelephoneEvent,
        event=st.integers(0, 255),
        end=st.booleans(),
        volume=st.integers(0, 63),
        duration=st.integers(0, 0xFFFF),
        reserved=st.booleans(),
    )
)
def test_generated_events_round_trip(event: TelephoneEvent) -> None:
    assert TelephoneEvent.parse(bytes(event)) == event
    assert len(DTMF_EVENTS) == 16
