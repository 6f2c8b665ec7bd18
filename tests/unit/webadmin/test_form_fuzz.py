"""Whatever an admin (or a script) types into any form or sends to any API write, the web admin
answers with a page or JSON, never a 500: generated text, numbers, control characters,
right-to-left marks and overlong values in every field of every form, and JSON bodies of any
shape to every API write. Run through Flask's test client on a real database file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbx.store.admins import setup_code
from pbx.store.database import open_database
from webadmin import create_app

FORMS: dict[str, tuple[str, ...]] = {
    "/extensions/": ("number", "name", "password"),
    "/extensions/201/edit": (
        "name", "outbound", "pin", "forwarding_form", "forward_always", "forward_busy",
        "forward_no_answer", "forward_after", "forward_unregistered", "dnd", "redirect",
    ),
    "/features/": ("forward_on", "forward_off", "dnd_on", "dnd_off"),
    "/extensions/201/password": (),
    "/line/": (
        "line_backend", "line_device", "line_country", "outside_prefix", "inbound_target",
        "outbound_patterns", "blocked_prefixes", "answer_after_rings", "ring_gone_seconds",
        "loop_drop_ms", "polarity_disconnect", "tone_disconnect", "dial_tone_disconnect",
        "silence_timeout_seconds", "max_call_minutes",
    ),
    "/extensions/201/phones": ("mac", "vendor"),
    "/security/unban": ("address",),
}  # fmt: skip

texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789", max_size=12),
    st.sampled_from(["", " ", "0", "-1", "1e9", "99999999999999999999", "on", "1", "\u202e201",
                     "*72", "sip:bob@example.com", "95551234", "911",
                     "\x00", "a\r\nb", "<script>", "201,202", "9XXX", "/dev/ttyACM0", "US"]),
    st.text(min_size=300, max_size=5000),
)  # fmt: skip
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=3),
    max_leaves=8,
)  # fmt: skip
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, FlaskClient]]:
    folder = tmp_path_factory.mktemp("fuzz")
    app = create_app({"DB": str(folder / "pbx.db"), "TESTING": True, "SIP_HOST": "192.0.2.1"})
    client = app.test_client()
    csrf = client.get("/api/csrf").get_json()["csrf_token"]
    code = setup_code(open_database(app.config["DB"]))
    made = client.post(
        "/setup",
        data={
            "code": code,
            "username": "boss",
            "password": "correct horse battery",
            "csrf_token": csrf,
        },
    )
    assert made.status_code == 302  # fmt: skip
    extension = client.post(
        "/extensions/", data={"number": "201", "name": "Reception", "csrf_token": _token(client)}
    )
    assert extension.status_code in (200, 302)  # fmt: skip
    yield app, client


def _token(client: FlaskClient) -> str:
    page = client.get("/extensions/").get_data(True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


@FUZZ
@given(data=st.data())
def test_no_form_input_gives_a_500(admin: tuple[Flask, FlaskClient], data: st.DataObject) -> None:
    _, client = admin
    path = data.draw(st.sampled_from(sorted(FORMS)))
    fields = {name: data.draw(texts) for name in FORMS[path]}
    response = client.post(path, data={**fields, "csrf_token": _token(client)})
    assert response.status_code < 500, (path, fields, response.status_code)


@FUZZ
@given(data=st.data())
def test_no_json_body_gives_a_500(admin: tuple[Flask, FlaskClient], data: st.DataObject) -> None:
    _, client = admin
    csrf = client.get("/api/csrf").get_json()["csrf_token"]
    method, path = data.draw(st.sampled_from([
        ("post", "/api/extensions"), ("patch", "/api/extensions/201"),
        ("patch", "/api/extensions/299"), ("post", "/api/login"),
    ]))  # fmt: skip
    body = data.draw(json_values | st.dictionaries(
        st.sampled_from(["number", "name", "password", "outbound_allowed", "voicemail_pin",
                         "username", "forward_always", "forward_busy", "forward_no_answer",
                         "forward_after", "forward_unregistered", "dnd", "redirect"]),
        json_values | st.sampled_from(["202", "95551234", "sip:x@y", "1"]), max_size=4,
    ))  # fmt: skip
    response = getattr(client, method)(path, json=body, headers={"X-CSRF-Token": csrf})
    assert response.status_code < 500, (method, path, body, response.status_code)
    if path == "/api/login" and response.status_code == 200:
        pytest.fail("a generated body logged in")
    assert response.is_json, response.get_data(True)[:200]


def test_the_fuzzed_forms_reach_their_handlers(admin: tuple[Flask, FlaskClient]) -> None:
    """The CSRF token the fuzz sends is accepted (else every case would just be a 400)."""
    _, client = admin
    response = client.post(
        "/extensions/201/edit", data={"name": "Front desk", "pin": "", "csrf_token": _token(client)}
    )
    assert response.status_code == 302  # fmt: skip
    assert "Front desk" in client.get("/extensions/").get_data(True)


def test_every_fuzzed_form_exists(admin: tuple[Flask, FlaskClient]) -> None:
    _, client = admin
    for path in FORMS:
        response = client.post(path, data={"csrf_token": _token(client)})
        assert response.status_code not in (404, 405), path
