"""G.711: the decoder outputs of Tables 1 and 2, encoding within a quantisation step, and the
u-law <-> A-law tables (Tables 3 and 4) with the double-conversion notes of the Recommendation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx.media import g711
from pbx.media.g711 import (
    ALAW_DECODE,
    ALAW_TO_ULAW,
    ULAW_DECODE,
    ULAW_TO_ALAW,
    alaw_encode_sample,
    ulaw_encode_sample,
)

int16 = st.integers(-32768, 32767)


def ulaw_number(code: int) -> int:
    """Decoder output value number of Table 2 (0..127, magnitude)."""
    return ~code & 0x7F


def alaw_number(code: int) -> int:
    """Decoder output value number of Table 1 (1..128, magnitude)."""
    return ((code ^ 0x55) & 0x7F) + 1


def ulaw_step(code: int) -> int:
    """Width of the code's decision interval, in 16-bit units (Table 2: 2, 4, ... 256 x 4)."""
    return 8 << ((ulaw_number(code) >> 4) & 7)


def alaw_step(code: int) -> int:
    """Width of the code's decision interval, in 16-bit units (Table 1: 2, 2, 4, ... 128 x 8)."""
    segment = (alaw_number(code) - 1) >> 4
    return 16 << max(segment - 1, 0)


def test_decoder_outputs_of_tables_1_and_2() -> None:
    # Table 2 (u-law): value numbers 0, 1, 16, 127 decode to 0, 2, 33, 8031 in 14-bit units.
    assert [ULAW_DECODE[~n & 0xFF] for n in (0, 1, 16, 127)] == [0, 8, 132, 32124]
    assert ULAW_DECODE[0x7F] == 0 and ULAW_DECODE[0x00] == -32124  # -0 and the negative end
    # Table 1 (A-law): value numbers 1, 2, 17, 128 decode to 1, 3, 33, 4032 in 13-bit units.
    assert [ALAW_DECODE[((n - 1) | 0x80) ^ 0x55] for n in (1, 2, 17, 128)] == [8, 24, 264, 32256]
    assert ALAW_DECODE[0x55] == -8 and ALAW_DECODE[0x2A] == -32256
    # The line codes of silence and of full scale (even bits inverted for A-law).
    assert ulaw_encode_sample(0) == 0xFF and alaw_encode_sample(0) == 0xD5
    assert ulaw_encode_sample(32767) == 0x80 and alaw_encode_sample(32767) == 0xAA


def test_decode_tables_are_odd_symmetric_and_monotonic() -> None:
    positive_u = [ULAW_DECODE[~n & 0xFF] for n in range(128)]
    positive_a = [ALAW_DECODE[((n - 1) | 0x80) ^ 0x55] for n in range(1, 129)]
    assert positive_u == sorted(set(positive_u)) and positive_a == sorted(set(positive_a))
    for code in range(256):
        assert ULAW_DECODE[code] == -ULAW_DECODE[code ^ 0x80]
        assert ALAW_DECODE[code] == -ALAW_DECODE[code ^ 0x80]


@given(int16)
def test_ulaw_decode_of_encode_is_within_the_quantisation_step(sample: int) -> None:
    code = ulaw_encode_sample(sample)
    if abs(sample) > 32124 + 4 * 128:  # beyond the last decision value: clipped
        assert abs(ULAW_DECODE[code]) == 32124
        return
    assert abs(ULAW_DECODE[code] - sample) <= ulaw_step(code)


@given(int16)
def test_alaw_decode_of_encode_is_within_the_quantisation_step(sample: int) -> None:
    code = alaw_encode_sample(sample)
    assert abs(ALAW_DECODE[code] - sample) <= alaw_step(code)


def test_encoding_a_decoded_value_gives_the_code_back() -> None:
    for code in range(256):
        # Every code but u-law's negative zero (which decodes to 0, encoded as positive zero).
        assert ulaw_encode_sample(ULAW_DECODE[code]) == (0xFF if code == 0x7F else code)
        assert alaw_encode_sample(ALAW_DECODE[code]) == code


@given(st.lists(int16, max_size=200))
def test_buffer_functions_agree_with_the_sample_functions(samples: list[int]) -> None:
    ulaw = g711.ulaw_encode(samples)
    alaw = g711.alaw_encode(samples)
    assert ulaw == bytes(map(ulaw_encode_sample, samples))
    assert alaw == bytes(map(alaw_encode_sample, samples))
    assert list(g711.ulaw_decode(ulaw)) == [ULAW_DECODE[c] for c in ulaw]
    assert list(g711.alaw_decode(alaw)) == [ALAW_DECODE[c] for c in alaw]


def test_encoders_saturate_outside_int16() -> None:
    assert g711.ulaw_encode([40000, -40000]) == bytes([0x80, 0x00])
    assert g711.alaw_encode([40000, -40000]) == bytes([0xAA, 0x2A])


# --- Tables 3 and 4: u-law <-> A-law -----------------------------------------------------------


def test_translation_keeps_the_sign() -> None:
    for code in range(256):
        assert (ALAW_DECODE[ULAW_TO_ALAW[code]] > 0) == bool(code & 0x80)
        assert (ULAW_DECODE[ALAW_TO_ULAW[code]] > 0) == (ALAW_DECODE[code] > 0)


def test_translation_is_within_one_step_of_the_target_law() -> None:
    for code in range(256):
        a = ULAW_TO_ALAW[code]
        assert abs(ALAW_DECODE[a] - ULAW_DECODE[code]) <= alaw_step(a) + ulaw_step(code) // 2
        u = ALAW_TO_ULAW[code]
        assert abs(ULAW_DECODE[u] - ALAW_DECODE[code]) <= ulaw_step(u) + alaw_step(code) // 2


def test_translation_is_monotonic() -> None:
    by_level = sorted(range(256), key=ULAW_DECODE.__getitem__)
    levels = [ALAW_DECODE[ULAW_TO_ALAW[c]] for c in by_level]
    assert levels == sorted(levels)
    by_level = sorted(range(256), key=ALAW_DECODE.__getitem__)
    levels = [ULAW_DECODE[ALAW_TO_ULAW[c]] for c in by_level]
    assert levels == sorted(levels)


def test_u_to_a_to_u_changes_only_what_note_2_to_table_3_says() -> None:
    # G.711 Table 3, note 2: in a u-A-u double conversion, u-law value numbers
    # "0, 2, 4, 6, 8, 10, 12, 14 are changed (the numbers being increased by 1)"; in these
    # octets "only bit No. 8 (least significant bit in PCM) is changed".
    changed = set()
    for code in range(256):
        back = ALAW_TO_ULAW[ULAW_TO_ALAW[code]]
        if back != code:
            assert back == code ^ 0x01
            assert ulaw_number(back) == ulaw_number(code) + 1
            changed.add(ulaw_number(code))
    assert changed == {0, 2, 4, 6, 8, 10, 12, 14}


def test_a_to_u_to_a_changes_only_what_note_2_to_table_4_says() -> None:
    # G.711 Table 4, note 2: in an A-u-A double conversion, A-law value numbers
    # 26, 28, 30, 32, 45, 47, 63 and 80 are changed, and "again, only bit 8 is changed".
    changed = set()
    for code in range(256):
        back = ULAW_TO_ALAW[ALAW_TO_ULAW[code]]
        if back != code:
            assert back == code ^ 0x01
            changed.add(alaw_number(code))
    assert changed == {26, 28, 30, 32, 45, 47, 63, 80}


def test_a_second_double_conversion_changes_nothing() -> None:
    once = bytes(range(256)).translate(ULAW_TO_ALAW).translate(ALAW_TO_ULAW)
    assert once.translate(ULAW_TO_ALAW).translate(ALAW_TO_ULAW) == once
    once = bytes(range(256)).translate(ALAW_TO_ULAW).translate(ULAW_TO_ALAW)
    assert once.translate(ALAW_TO_ULAW).translate(ULAW_TO_ALAW) == once


def test_a_transcoded_tone_keeps_its_level() -> None:
    tone = [round(10000 * math.sin(2 * math.pi * 1000 * n / 8000)) for n in range(160)]
    via_alaw = g711.alaw_decode(g711.ulaw_encode(tone).translate(ULAW_TO_ALAW))
    direct = g711.alaw_decode(g711.alaw_encode(tone))
    error = max(abs(x - y) for x, y in zip(via_alaw, direct, strict=True))
    assert error <= 512  # one step of the top segments, no drift in level


def test_translation_by_encoding_name() -> None:
    assert g711.translation("PCMU", "pcma") is ULAW_TO_ALAW
    assert g711.translation("PCMA", "PCMU") is ALAW_TO_ULAW
    assert g711.translation("pcmu", "PCMU") is None
    with pytest.raises(ValueError, match="G.711"):
        g711.translation("G722", "PCMU")
