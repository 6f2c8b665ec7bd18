"""The agent's line-side disconnect decision (``disconnect_reason``), for every tone the
detector reports and every setting that turns a layer on or off, with time as an argument.
The same layers with the real switch are in tests/integration/test_line_supervision.py."""

from __future__ import annotations

import pytest

from gateway_fxo.line_policy import AgentSettings, LineCall, disconnect_reason

TONES = (None, "dial", "ringback", "busy", "congestion")


def settings(**overrides: object) -> AgentSettings:
    return AgentSettings(account="line1", password="x", switch=("127.0.0.1", 5060), **overrides)  # type: ignore[arg-type]


def call(*, answered: bool = True) -> LineCall:
    return LineCall(direction="in", call_id="c", local_tag="t", answered=answered, started=0.0,
                 last_sound=0.0)  # fmt: skip


@pytest.mark.parametrize("tone", TONES)
@pytest.mark.parametrize("tone_disconnect", [True, False])
@pytest.mark.parametrize("dial_tone_disconnect", [True, False])
def test_tones_end_an_answered_call_only_where_their_layer_is_on(
    tone: str | None, tone_disconnect: bool, dial_tone_disconnect: bool
) -> None:
    s = settings(tone_disconnect=tone_disconnect, dial_tone_disconnect=dial_tone_disconnect)
    expected = {
        "busy": "busy tone" if tone_disconnect else None,
        "congestion": "congestion tone" if tone_disconnect else None,
        "dial": "dial tone" if dial_tone_disconnect else None,
    }.get(tone or "")
    assert disconnect_reason(s, call(), tone, now=1.0) == expected
    # Before the call is answered (an outbound call still dialling) no tone ends it.
    assert disconnect_reason(s, call(answered=False), tone, now=1.0) is None


def test_backstops_apply_whatever_the_tone_layers_say() -> None:
    s = settings(tone_disconnect=False, dial_tone_disconnect=False, silence_timeout=10.0,
                 max_call=60.0)  # fmt: skip
    quiet = call()
    assert disconnect_reason(s, quiet, "busy", now=10.0) is None  # not more than 10 s yet
    assert disconnect_reason(s, quiet, "busy", now=10.01) == "silence"
    talking = call()
    talking.last_sound = 59.0
    assert disconnect_reason(s, talking, None, now=60.0) is None
    assert disconnect_reason(s, talking, None, now=60.5) == "maximum call length"
    assert disconnect_reason(s, call(answered=False), None, now=11.0) == "silence"


def test_the_defaults_are_the_issues() -> None:
    s = settings()
    assert (s.tone_disconnect, s.dial_tone_disconnect, s.polarity_disconnect) == (
        True, True, False,
    )  # fmt: skip
    assert s.answer_after_rings == 2
    assert 0.1 <= s.loop_drop_threshold <= 0.5
