"""Forwarding, DND and redirect on the extension page and in the API; the Feature codes page."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pbx.store.extensions import add_extension, get_extension
from pbx.store.feature_codes import FeatureCodes, feature_codes
from pbx.store.records import ForwardingRecord
from tests.unit.webadmin.test_app import db_of, do_setup, post


@pytest.fixture
def admin(app: Flask, client: FlaskClient) -> FlaskClient:
    do_setup(app, client)
    db = db_of(app)
    for number in ("201", "202"):
        add_extension(db, number=number, name="", password="long-enough-password", now=1.0)
    return client


@pytest.fixture
def app(tmp_path: Any) -> Flask:
    from webadmin import create_app

    return create_app({"DB": str(tmp_path / "pbx.db"), "TESTING": True})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def forwarding_of(app: Flask, number: str) -> ForwardingRecord | None:
    extension = get_extension(db_of(app), number)
    assert extension is not None
    return extension.forwarding


PAGE_FORM = {
    "name": "Front desk", "outbound": "on", "digest": "default", "forwarding_form": "1",
    "forward_always": "", "forward_busy": "202", "forward_no_answer": "95551234",
    "forward_after": "25", "forward_unregistered": "202", "dnd": "on",
}  # fmt: skip


def test_the_page_sets_and_shows_forwarding(app: Flask, admin: FlaskClient) -> None:
    saved = post(admin, "/extensions/201/edit", **PAGE_FORM)
    assert saved.status_code == 302
    assert forwarding_of(app, "201") == ForwardingRecord(
        number="201", busy="202", no_answer="95551234", after=25, unregistered="202", dnd=True
    )
    page = admin.get("/extensions/201").get_data(True)
    assert 'name="forward_no_answer" id="forward_no_answer" value="95551234"' in page
    assert 'id="dnd" checked' in page and 'id="redirect" >' in page
    assert "*72 then a number" in page  # the phone's own codes are told
    cleared = post(
        admin,
        "/extensions/201/edit",
        **{**PAGE_FORM, "forward_busy": "", "dnd": "", "forward_unregistered": ""},
    )
    assert cleared.status_code == 302  # fmt: skip
    record = forwarding_of(app, "201")
    assert record is not None and record.busy is None and not record.dnd


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("forward_busy", "299", "neither an extension nor an outside number"),
        ("forward_after", "4", "from 5 to 300"),
        ("forward_always", "sip:bob@example.com", "turn redirect on"),
        ("outbound", "", "may not call out"),  # the no-answer forward goes outside
    ],
)
def test_a_bad_field_is_a_message_on_the_page_and_nothing_is_lost(
    app: Flask, admin: FlaskClient, field: str, value: str, message: str
) -> None:
    post(admin, "/extensions/201/edit", **PAGE_FORM)
    before = get_extension(db_of(app), "201")
    bad = post(admin, "/extensions/201/edit", **{**PAGE_FORM, "name": "Renamed", field: value})
    page = bad.get_data(True)
    assert bad.status_code == 400 and message in page
    assert 'value="Renamed"' in page  # what was typed is still in the form
    assert get_extension(db_of(app), "201") == before


def test_a_form_without_the_forwarding_section_leaves_it(app: Flask, admin: FlaskClient) -> None:
    post(admin, "/extensions/201/edit", **PAGE_FORM)
    only_name = post(admin, "/extensions/201/edit", name="Only the name", outbound="on")
    assert only_name.status_code == 302
    record = forwarding_of(app, "201")
    assert record is not None and record.dnd and record.busy == "202"


def api(admin: FlaskClient) -> dict[str, str]:
    return {"X-CSRF-Token": admin.get("/api/csrf").get_json()["csrf_token"]}


def test_the_api_creates_changes_and_shows_forwarding(app: Flask, admin: FlaskClient) -> None:
    headers = api(admin)
    created = admin.post(
        "/api/extensions", headers=headers,
        json={"number": "203", "forward_busy": "202", "dnd": True, "voicemail_pin": "1234"},
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["forward_busy"] == "202" and body["dnd"] is True and body["voicemail_pin_set"]
    patched = admin.patch(
        "/api/extensions/203", headers=headers,
        json={"forward_busy": None, "forward_no_answer": "201", "forward_after": 40,
              "redirect": True, "forward_always": "sip:bob@elsewhere.example.com"},
    )  # fmt: skip
    assert patched.status_code == 200, patched.get_json()
    shown = admin.get("/api/extensions/203").get_json()
    assert {k: shown[k] for k in shown if k.startswith(("forward", "dnd", "redirect"))} == {
        "forward_always": "sip:bob@elsewhere.example.com", "forward_busy": None,
        "forward_no_answer": "201", "forward_after": 40, "forward_unregistered": None,
        "dnd": True, "redirect": True,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"dnd": "yes"}, "dnd: true or false"),
        ({"redirect": 1}, "redirect: true or false"),
        ({"forward_always": 202}, "forward_always: a number"),
        ({"forward_after": 2.5}, "forward_after: a whole number"),
        ({"forward_after": True}, "forward_after: a whole number"),
        ({"forward_after": 3}, "from 5 to 300"),
        ({"forward_busy": "299"}, "neither an extension"),
        ({"forward_busy": "202", "outbound_allowed": "no"}, "outbound_allowed: true or false"),
    ],
)
def test_bad_api_fields_are_400_and_change_nothing(
    app: Flask, admin: FlaskClient, body: dict[str, Any], message: str
) -> None:
    before = get_extension(db_of(app), "201")
    response = admin.patch("/api/extensions/201", headers=api(admin), json=body)
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert get_extension(db_of(app), "201") == before
    created = admin.post("/api/extensions", headers=api(admin), json={"number": "204", **body})
    assert created.status_code == 400 and get_extension(db_of(app), "204") is None


def test_the_feature_codes_page(app: Flask, admin: FlaskClient) -> None:
    page = admin.get("/features/").get_data(True)
    assert 'id="forward_on" value="*72"' in page and 'id="dnd_off" value="*79"' in page
    codes = {"forward_on": "#72", "forward_off": "#73", "dnd_on": "#78", "dnd_off": "#79"}
    assert post(admin, "/features/", **codes).status_code == 302
    assert feature_codes(db_of(app)) == FeatureCodes(**codes)
    assert "#72 then a number" in admin.get("/extensions/201").get_data(True)
    bad = post(admin, "/features/", **{**codes, "dnd_on": "#7"})
    assert bad.status_code == 400 and "clashes" in bad.get_data(True)
    assert 'id="dnd_on" value="#7"' in bad.get_data(True)
    assert feature_codes(db_of(app)) == FeatureCodes(**codes)
