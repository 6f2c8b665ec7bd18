"""Every page, form and API call of the web admin through Flask's test client, on a real file."""

from __future__ import annotations

import io
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from pbx.store.admins import setup_code
from pbx.store.bans import save_ban
from pbx.store.calls import CallRecord, finish_call
from pbx.store.database import open_database
from pbx.store.extensions import get_extension, stored_secrets
from pbx.store.records import Binding, SourceBan
from pbx.store.registrations import save_bindings
from pbx.store.settings import get_setting
from webadmin import create_app

ADMIN_PASSWORD = "correct horse battery"


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    return create_app({"DB": str(tmp_path / "pbx.db"), "TESTING": True, "SIP_HOST": "192.0.2.1"})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def token(client: FlaskClient) -> str:
    page = client.get("/login" if not _logged_in(client) else "/extensions/").get_data(True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match:
        return match.group(1)
    return client.get("/api/csrf").get_json()["csrf_token"]  # type: ignore[no-any-return]


def _logged_in(client: FlaskClient) -> bool:
    with client.session_transaction() as session:
        return bool(session.get("admin"))


def db_of(app: Flask) -> Any:
    return open_database(app.config["DB"])


def do_setup(app: Flask, client: FlaskClient) -> None:
    code = setup_code(db_of(app))
    csrf = client.get("/api/csrf").get_json()["csrf_token"]
    response = client.post(
        "/setup",
        data={"code": code, "username": "boss", "password": ADMIN_PASSWORD, "csrf_token": csrf},
    )
    assert response.status_code == 302


@pytest.fixture
def admin(app: Flask, client: FlaskClient) -> FlaskClient:
    do_setup(app, client)
    return client


def post(client: FlaskClient, path: str, **data: Any) -> Any:
    return client.post(path, data={**data, "csrf_token": token(client)})


# -- first run and login ------------------------------------------------------------------------
def test_first_visit_goes_to_setup_and_needs_the_code(app: Flask, client: FlaskClient) -> None:
    assert client.get("/").status_code == 302
    assert client.get("/login").headers["Location"].endswith("/setup")
    csrf = client.get("/api/csrf").get_json()["csrf_token"]
    wrong = client.post(
        "/setup", data={"code": "AAAA-BBBB-CCCC", "username": "boss", "password": ADMIN_PASSWORD,
                        "csrf_token": csrf},
    )  # fmt: skip
    assert wrong.status_code == 400 and "not the setup code" in wrong.get_data(True)
    do_setup(app, client)
    assert setup_code(db_of(app)) is None  # used once, gone
    assert client.get("/setup").status_code == 302


def test_setup_refuses_a_short_password(app: Flask, client: FlaskClient) -> None:
    csrf = client.get("/api/csrf").get_json()["csrf_token"]
    response = client.post(
        "/setup", data={"code": setup_code(db_of(app)), "username": "boss", "password": "short",
                        "csrf_token": csrf},
    )  # fmt: skip
    assert response.status_code == 400 and "at least 10" in response.get_data(True)


def test_login_logout_and_the_same_answer_for_unknown_users(app: Flask, admin: FlaskClient) -> None:
    post(admin, "/logout")
    assert admin.get("/").status_code == 302
    wrong = post(admin, "/login", username="boss", password="nope-nope-nope")
    unknown = post(admin, "/login", username="ghost", password="nope-nope-nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password." in wrong.get_data(True)
    assert "Wrong user name or password." in unknown.get_data(True)
    ok = post(admin, "/login", username="boss", password=ADMIN_PASSWORD)
    assert ok.status_code == 302 and admin.get("/").status_code == 200


def test_logins_are_rate_limited_per_source(app: Flask, admin: FlaskClient) -> None:
    post(admin, "/logout")
    for _ in range(10):
        post(admin, "/login", username="boss", password="wrong-password")
    blocked = post(admin, "/login", username="boss", password=ADMIN_PASSWORD)
    assert blocked.status_code == 429 and "Too many failed logins" in blocked.get_data(True)


def test_forms_without_the_csrf_token_change_nothing(app: Flask, admin: FlaskClient) -> None:
    response = admin.post("/extensions/", data={"number": "201", "name": "x"})
    assert response.status_code == 400 and "CSRF" in response.get_data(True)
    assert get_extension(db_of(app), "201") is None
    api = admin.post("/api/extensions", json={"number": "201"})
    assert api.status_code == 400 and "CSRF" in api.get_json()["error"]


def test_security_headers_and_cookie_flags(app: Flask, admin: FlaskClient) -> None:
    response = admin.get("/")
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    fresh = app.test_client()
    cookie = fresh.get("/api/csrf").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


# -- extensions ---------------------------------------------------------------------------------
def test_add_an_extension_and_see_the_password_once(app: Flask, admin: FlaskClient) -> None:
    created = post(admin, "/extensions/", number="201", name="Reception")
    assert created.status_code == 302
    page = admin.get(created.headers["Location"]).get_data(True)
    password = re.search(r'id="sip-password"><code>([^<]+)</code>', page)
    assert password and len(password.group(1)) >= 16
    assert stored_secrets(db_of(app), "201") is not None
    assert "Reception" in admin.get("/extensions/").get_data(True)
    later = admin.get("/extensions/201").get_data(True)
    assert password.group(1) not in later and "Reveal" in later
    assert password.group(1) in admin.get("/extensions/201?reveal=1").get_data(True)


@pytest.mark.parametrize(
    ("number", "password", "message"),
    [("20a", "", "2 to 8 digits"), ("201", "short", "at least 12")],
)
def test_bad_extension_input_is_a_message_not_a_500(
    app: Flask, admin: FlaskClient, number: str, password: str, message: str
) -> None:
    response = post(admin, "/extensions/", number=number, name="x", password=password)
    assert response.status_code == 400 and message in response.get_data(True)
    assert get_extension(db_of(app), "201") is None


def test_duplicate_extension(app: Flask, admin: FlaskClient) -> None:
    post(admin, "/extensions/", number="201", name="A")
    response = post(admin, "/extensions/", number="201", name="B")
    assert response.status_code == 400 and "already exists" in response.get_data(True)


def test_edit_reset_and_delete(app: Flask, admin: FlaskClient) -> None:
    post(admin, "/extensions/", number="201", name="A")
    before = stored_secrets(db_of(app), "201")
    post(admin, "/extensions/201/edit", name="Front desk", pin="4321")
    extension = get_extension(db_of(app), "201")
    assert extension is not None and extension.display_name == "Front desk"
    assert not extension.outbound_allowed  # unchecked box
    bad_pin = post(admin, "/extensions/201/edit", name="Front desk", pin="12")
    assert bad_pin.status_code == 400 and "4 to 8 digits" in bad_pin.get_data(True)
    post(admin, "/extensions/201/password")
    assert stored_secrets(db_of(app), "201") != before
    post(admin, "/extensions/201/delete")
    assert get_extension(db_of(app), "201") is None
    assert admin.get("/extensions/201").status_code == 404


# -- the other pages ----------------------------------------------------------------------------
def _fill(app: Flask) -> None:
    db = db_of(app)
    from pbx.store.extensions import add_extension

    add_extension(db, number="201", name="A", password="long-enough-password", now=1.0)
    now = time.time()
    save_bindings(db, [Binding(
        aor="201", binding_key="k", contact="sip:201@10.0.0.5", expires_at=now + 300,
        received_host="10.0.0.5", received_port=5060, transport="UDP", call_id="c", cseq=1,
        registered_at=now, user_agent="Yealink T46S", reachable=True, rtt_ms=4.2,
    )], [])  # fmt: skip
    for i in range(3):
        finish_call(db, CallRecord(
            call_id=f"c{i}", caller="201", callee="202", started_at=now - 60 * i,
            answered_at=now - 60 * i + 2 if i else None, ended_at=now - 60 * i + 30,
            end_reason="caller hung up", status=200, caller_codec="PCMU", callee_codec="PCMU",
        ))  # fmt: skip
    save_ban(db, SourceBan(address="198.51.100.7", banned_at=now, until=now + 3600, failures=10,
                           reason="10 auth failures in 60s"))  # fmt: skip


def test_dashboard_phones_calls_security_pages(app: Flask, admin: FlaskClient) -> None:
    _fill(app)
    dashboard = admin.get("/").get_data(True)
    assert "Yealink T46S" in dashboard and "198.51.100.7" in dashboard
    status = admin.get("/api/status").get_json()
    assert status["today"]["calls"] >= 1 and status["phones"][0]["extension"] == "201"
    assert "4.2 ms" in admin.get("/phones/").get_data(True)
    every = admin.get("/calls/").get_data(True)
    assert "Calls per day" in every and "Calls by hour of day" in every
    hours = re.findall(r"<title>(\d\d):00-\d\d:59: (\d+)</title>", every)
    assert len(hours) == 24 and sum(int(n) for _, n in hours) == 3  # the three records
    calls = admin.get("/calls/?extension=201&answered=yes").get_data(True)
    assert calls.count("caller hung up") == 2
    assert "a date like" in admin.get("/calls/?since=yesterday").get_data(True)
    csv_text = admin.get("/calls/export.csv").get_data(True)
    assert (
        csv_text.splitlines()[0].startswith("call_id,caller,callee")
        and len(csv_text.splitlines()) == 4
    )
    assert "198.51.100.7" in admin.get("/security/").get_data(True)
    post(admin, "/security/unban", address="198.51.100.7")
    assert "Nobody is banned" in admin.get("/security/").get_data(True)


SUPERVISION_FORM = {
    "answer_after_rings": "2", "ring_gone_seconds": "7", "loop_drop_ms": "300",
    "tone_disconnect": "on", "dial_tone_disconnect": "on", "silence_timeout_seconds": "300",
    "max_call_minutes": "240",
}  # fmt: skip
LINE_FORM = {
    "line_backend": "sim", "line_device": "", "line_country": "DE", "outside_prefix": "0",
    "inbound_target": "201", "outbound_patterns": "NXXXXXX", "blocked_prefixes": "00",
    **SUPERVISION_FORM,
}  # fmt: skip


def test_line_settings_are_validated(app: Flask, admin: FlaskClient) -> None:
    _fill(app)
    good = post(admin, "/line/", **LINE_FORM)
    assert good.status_code == 302
    bad = post(admin, "/line/", **{**LINE_FORM, "line_backend": "fax", "line_country": "XX",
               "outside_prefix": "99x", "inbound_target": "299",
               "outbound_patterns": "hello world", "blocked_prefixes": ""})  # fmt: skip
    text = bad.get_data(True)
    assert bad.status_code == 400
    for message in ("backend:", "country:", "prefix", "no extension 299", "not a dial pattern"):
        assert message in text


def supervision_fields(page: str) -> dict[str, str | bool]:
    """The Call supervision section as the page shows it: numbers by name, checkboxes ticked."""
    section = page.split('<fieldset id="supervision">', 1)[1].split("</fieldset>", 1)[0]
    shown: dict[str, str | bool] = {}
    for tag in re.findall(r"<input [^>]*>", section):
        name = re.search(r'name="([^"]+)"', tag).group(1)  # type: ignore[union-attr]
        if 'type="checkbox"' in tag:
            shown[name] = " checked" in tag
        else:
            shown[name] = re.search(r'value="([^"]*)"', tag).group(1)  # type: ignore[union-attr]
    return shown


LINE_KEYS = (
    "line_answer_after_rings", "line_ring_gone_seconds", "line_loop_drop_seconds",
    "line_polarity_disconnect", "line_tone_disconnect", "line_dial_tone_disconnect",
    "line_silence_timeout_seconds", "line_max_call_seconds",
)  # fmt: skip


def test_call_supervision_defaults_are_the_gateways(app: Flask, admin: FlaskClient) -> None:
    from gateway_fxo.line_policy import AgentSettings

    page = admin.get("/line/").get_data(True)
    assert "Call supervision" in page
    defaults = AgentSettings(account="line1", password="x", switch=("127.0.0.1", 5060))
    assert supervision_fields(page) == {
        "answer_after_rings": str(defaults.answer_after_rings),
        "ring_gone_seconds": f"{defaults.ring_gone:g}",
        "loop_drop_ms": str(round(defaults.loop_drop_threshold * 1000)),
        "polarity_disconnect": defaults.polarity_disconnect,
        "tone_disconnect": defaults.tone_disconnect,
        "dial_tone_disconnect": defaults.dial_tone_disconnect,
        "silence_timeout_seconds": f"{defaults.silence_timeout:g}",
        "max_call_minutes": f"{defaults.max_call / 60:g}",
    }


def test_call_supervision_is_saved_in_the_gateways_units_and_shown_back(
    app: Flask, admin: FlaskClient
) -> None:
    _fill(app)
    form = {**LINE_FORM, "answer_after_rings": "4", "ring_gone_seconds": "10",
            "loop_drop_ms": "150", "polarity_disconnect": "on", "silence_timeout_seconds": "45",
            "max_call_minutes": "90"}  # fmt: skip
    del form["tone_disconnect"]  # an unticked checkbox is not sent at all
    assert post(admin, "/line/", **form).status_code == 302
    db = db_of(app)
    assert {key: get_setting(db, key) for key in LINE_KEYS} == {
        "line_answer_after_rings": "4",
        "line_ring_gone_seconds": "10",
        "line_loop_drop_seconds": "0.15",
        "line_polarity_disconnect": "yes",
        "line_tone_disconnect": "no",
        "line_dial_tone_disconnect": "yes",
        "line_silence_timeout_seconds": "45",
        "line_max_call_seconds": "5400",
    }
    assert supervision_fields(admin.get("/line/").get_data(True)) == {
        "answer_after_rings": "4", "ring_gone_seconds": "10", "loop_drop_ms": "150",
        "polarity_disconnect": True, "tone_disconnect": False, "dial_tone_disconnect": True,
        "silence_timeout_seconds": "45", "max_call_minutes": "90",
    }  # fmt: skip
    # Saving the page as shown changes nothing: the units survive the round trip.
    page = admin.get("/line/").get_data(True)
    again = {k: ("on" if v is True else v) for k, v in supervision_fields(page).items() if v}
    routes = {k: v for k, v in LINE_FORM.items() if k not in SUPERVISION_FORM}
    assert post(admin, "/line/", **routes, **again).status_code == 302
    assert get_setting(db_of(app), "line_loop_drop_seconds") == "0.15"
    assert get_setting(db_of(app), "line_max_call_seconds") == "5400"
    assert get_setting(db_of(app), "line_tone_disconnect") == "no"


SILENCE = "silence timeout: a whole number of seconds from 10 to 3600"
MAX_CALL = "maximum call length: a whole number of minutes from 1 to 1440"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("answer_after_rings", "0", "answer after: a whole number of rings from 1 to 10"),
        ("answer_after_rings", "11", "answer after: a whole number of rings from 1 to 10"),
        ("answer_after_rings", "", "answer after: a whole number of rings from 1 to 10"),
        ("ring_gone_seconds", "3", "caller gave up after: a whole number of seconds from 4 to 15"),
        ("ring_gone_seconds", "16", "caller gave up after: a whole number of seconds from 4 to 15"),
        ("loop_drop_ms", "99", "loop-current drop: a whole number of ms from 100 to 500"),
        ("loop_drop_ms", "0.3", "loop-current drop: a whole number of ms from 100 to 500"),
        ("loop_drop_ms", "501", "loop-current drop: a whole number of ms from 100 to 500"),
        ("silence_timeout_seconds", "9", SILENCE),
        ("silence_timeout_seconds", "1e9", SILENCE),
        ("max_call_minutes", "1441", MAX_CALL),
        ("max_call_minutes", "-5", MAX_CALL),
        ("max_call_minutes", "\u0663", MAX_CALL),
        ("max_call_minutes", "nan", MAX_CALL),
    ],
)
def test_bad_call_supervision_is_a_message_and_saves_nothing(
    app: Flask, admin: FlaskClient, field: str, value: str, message: str
) -> None:
    _fill(app)
    response = post(admin, "/line/", **{**LINE_FORM, field: value})
    assert response.status_code == 400
    text = response.get_data(True)
    assert message in text
    assert text.count('class="flash error"') == 1  # only the bad field is named
    assert 'id="supervision"' in text  # the form again, with what was typed
    db = db_of(app)
    assert all(get_setting(db, key) is None for key in (*LINE_KEYS, "line_country"))


def test_call_supervision_without_the_csrf_token_changes_nothing(
    app: Flask, admin: FlaskClient
) -> None:
    response = admin.post("/line/", data={**SUPERVISION_FORM, "answer_after_rings": "5"})
    assert response.status_code == 400 and "CSRF" in response.get_data(True)
    assert get_setting(db_of(app), "line_answer_after_rings") is None


def test_backup_downloads_a_consistent_copy_and_restores_it(
    app: Flask, admin: FlaskClient, tmp_path: Path
) -> None:
    _fill(app)
    backup = admin.get("/backup/download")
    assert backup.status_code == 200 and backup.data.startswith(b"SQLite format 3\x00")
    post(admin, "/extensions/201/delete")
    restored = admin.post(
        "/backup/restore",
        data={"csrf_token": token(admin), "backup": (io.BytesIO(backup.data), "backup.db")},
        content_type="multipart/form-data",
    )
    assert restored.status_code == 302
    assert get_extension(db_of(app), "201") is not None


def test_a_file_that_is_not_our_backup_changes_nothing(
    app: Flask, admin: FlaskClient, tmp_path: Path
) -> None:
    _fill(app)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE x (y)")
    conn.close()
    for payload, message in ((b"not a database at all", "not an SQLite database"),
                             (other.read_bytes(), "no schema of ours")):  # fmt: skip
        response = admin.post(
            "/backup/restore",
            data={"csrf_token": token(admin), "backup": (io.BytesIO(payload), "x.db")},
            content_type="multipart/form-data", follow_redirects=True,
        )  # fmt: skip
        assert message in response.get_data(True) and "Nothing was changed" in response.get_data(
            True
        )
    assert get_extension(db_of(app), "201") is not None


# -- the API ------------------------------------------------------------------------------------
def test_api_needs_a_login(client: FlaskClient) -> None:
    assert client.get("/api/extensions").status_code == 401


def test_api_login_and_extensions_crud(app: Flask, client: FlaskClient) -> None:
    do_setup(app, client)
    fresh = app.test_client()
    csrf = fresh.get("/api/csrf").get_json()["csrf_token"]
    bad = fresh.post("/api/login", json={"username": "boss", "password": "x"},
                     headers={"X-CSRF-Token": csrf})  # fmt: skip
    assert bad.status_code == 401
    ok = fresh.post("/api/login", json={"username": "boss", "password": ADMIN_PASSWORD},
                    headers={"X-CSRF-Token": csrf})  # fmt: skip
    headers = {"X-CSRF-Token": ok.get_json()["csrf_token"]}
    created = fresh.post("/api/extensions", json={"number": "301", "name": "API"}, headers=headers)
    assert created.status_code == 201 and len(created.get_json()["password"]) >= 16
    assert fresh.post("/api/extensions", json={"number": "301"}, headers=headers).status_code == 400
    assert fresh.post("/api/extensions", json={"number": "x1"}, headers=headers).status_code == 400
    assert fresh.get("/api/extensions").get_json()["extensions"][0]["number"] == "301"
    change = {"name": "Renamed", "outbound_allowed": False}
    patched = fresh.patch("/api/extensions/301", json=change, headers=headers)
    assert (
        patched.get_json()["name"] == "Renamed" and patched.get_json()["outbound_allowed"] is False
    )
    assert fresh.patch("/api/extensions/301", json={"outbound_allowed": "yes"},
                       headers=headers).status_code == 400  # fmt: skip
    assert fresh.get("/api/extensions/399").status_code == 404
    assert fresh.delete("/api/extensions/301", headers=headers).status_code == 200
    assert fresh.delete("/api/extensions/301", headers=headers).status_code == 404
    assert fresh.get("/api/calls?limit=abc").status_code == 400
    assert fresh.get("/api/calls").get_json() == {"calls": []}


# -- provisioning --------------------------------------------------------------------------------
def test_provisioning_panel_desk_phones_and_files(app: Flask, admin: FlaskClient) -> None:
    created = post(admin, "/extensions/", number="201", name="Reception")
    page = admin.get(created.headers["Location"]).get_data(True)
    assert "<svg" in page and "192.0.2.1" in page  # QR code and the server in plain words
    password = re.search(r'id="sip-password"><code>([^<]+)</code>', page).group(1)  # type: ignore[union-attr]
    bad = post(admin, "/extensions/201/phones", mac="not-a-mac", vendor="yealink")
    assert "MAC" in admin.get(bad.headers["Location"]).get_data(True)
    post(admin, "/extensions/201/phones", mac="00:15:65:AB:CD:EF", vendor="yealink")
    config = admin.get("/provision/001565abcdef.cfg")
    assert config.status_code == 200 and password in config.get_data(True)
    assert "account.1.user_name = 201" in config.get_data(True).replace("=", " = ").replace(
        "  ", " "
    )
    assert admin.get("/provision/cfg001565abcdef.xml").status_code == 404  # not a Grandstream
    assert admin.get("/provision/0015650000ff.cfg").status_code == 404  # not assigned
    outside = admin.get(
        "/provision/001565abcdef.cfg", environ_base={"REMOTE_ADDR": "93.184.216.34"}
    )
    assert outside.status_code == 403
    with app.test_request_context("/"):
        from webadmin.views.provision import linphone_token

        secret = linphone_token("201")  # what the QR code's URL carries
    linphone = admin.get(f"/provision/linphone/201/{secret}.xml")
    assert linphone.status_code == 200 and password in linphone.get_data(True)
    assert admin.get("/provision/linphone/201/0000.xml").status_code == 404


# -- the digest choice per extension ------------------------------------------------------------
def test_the_digest_choice_is_set_on_the_page_and_kept_on_bad_input(
    app: Flask, admin: FlaskClient
) -> None:
    post(admin, "/extensions/", number="201", name="A")
    page = admin.get("/extensions/201").get_data(True)
    assert re.search(r'<option value="default" selected>', page)  # MD5 unless chosen
    post(admin, "/extensions/201/edit", name="A", digest="SHA-256")
    extension = get_extension(db_of(app), "201")
    assert extension is not None and extension.digest_algorithms == ("SHA-256",)
    assert '<option value="SHA-256" selected>' in admin.get("/extensions/201").get_data(True)
    secrets = stored_secrets(db_of(app), "201")
    assert secrets is not None and [a.value for a in secrets.algorithms or ()] == ["SHA-256"]
    bad = post(admin, "/extensions/201/edit", name="A", digest="SHA-1")
    assert bad.status_code == 400 and "digest algorithms must be" in bad.get_data(True)
    extension = get_extension(db_of(app), "201")
    assert extension is not None and extension.digest_algorithms == ("SHA-256",)  # unchanged
    post(admin, "/extensions/201/edit", name="A", digest="default")
    extension = get_extension(db_of(app), "201")
    assert extension is not None and extension.digest_algorithms is None


def test_the_api_sets_and_shows_the_digest_choice(app: Flask, client: FlaskClient) -> None:
    do_setup(app, client)
    headers = {"X-CSRF-Token": token(client)}
    made = client.post(
        "/api/extensions",
        json={"number": "301", "digest_algorithms": "SHA-256,MD5"},
        headers=headers,
    )
    assert made.status_code == 201 and made.get_json()["digest_algorithms"] == "SHA-256,MD5"
    bad = client.post(
        "/api/extensions", json={"number": "302", "digest_algorithms": "MD4"}, headers=headers
    )
    assert bad.status_code == 400 and get_extension(db_of(app), "302") is None
    patched = client.patch(
        "/api/extensions/301", json={"digest_algorithms": "md5"}, headers=headers
    )
    assert patched.get_json()["digest_algorithms"] == "MD5"
    wrong = client.patch("/api/extensions/301", json={"digest_algorithms": 5}, headers=headers)
    assert wrong.status_code == 400
    assert client.get("/api/extensions/301").get_json()["digest_algorithms"] == "MD5"


def test_the_phones_page_shows_each_phones_algorithm_and_marks_md5(
    app: Flask, admin: FlaskClient
) -> None:
    _fill(app)  # 201's phone authenticated with nothing recorded
    now = time.time()
    save_bindings(db_of(app), [
        Binding(aor="201", binding_key=key, contact=f"sip:201@10.0.0.{n}", expires_at=now + 300,
                received_host=f"10.0.0.{n}", received_port=5060, transport="UDP", call_id=key,
                cseq=1, registered_at=now, user_agent=agent, auth_algorithm=algorithm)
        for n, key, agent, algorithm in ((6, "m", "baresip", "MD5"), (7, "s", "Lin", "SHA-256"))
    ], [])  # fmt: skip
    page = admin.get("/phones/").get_data(True)
    assert re.search(r'<span class="md5"[^>]*>MD5</span>', page)
    assert '<td class="auth">SHA-256</td>' in page
    assert "choose it on the extension" in page
