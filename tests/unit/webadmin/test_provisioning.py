"""Provisioning: settings in plain words, QR codes that scan back, phone config files."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import segno

from tests.support.tools import require_tool, scan_qr
from webadmin.provisioning import (
    SipAccount,
    SipServer,
    grandstream_config,
    grandstream_filename,
    linphone_config,
    match_config_filename,
    normalize_mac,
    qr_payload,
    qr_svg,
    settings_rows,
    settings_text,
    yealink_config,
    yealink_filename,
)

ACCOUNT = SipAccount(number="201", display_name="Reception", password="s3cretPassw0rd42")
SERVER = SipServer(host="192.168.1.10", port=5060, transport="udp", realm="switchboard")
MAC = "00:15:65:AB:CD:EF"
# Everything XML and config lines care about, in a name and a password a person could choose.
AWKWARD_NAME = 'Tom & Jerry\'s <Desk> "1" Zoë = # ;'
AWKWARD_PASSWORD = "p&ss<w>rd\"x'y=#;\\z"

LINE_BREAKS = ["\n", "\r", "\r\n", "\x00", "\x0b", "\x85", "\u2028", "\u2029", "\t"]


# --- MAC addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "00:15:65:AB:CD:EF",
        "00-15-65-ab-cd-ef",
        "001565ABCDEF",
        "001565abcdef",
        " 00:15:65:ab:cd:ef ",
    ],
)
def test_normalize_mac_accepts_the_usual_spellings(text: str) -> None:
    assert normalize_mac(text) == "001565abcdef"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "001565abcde",  # 11 digits
        "001565abcdef0",  # 13 digits
        "00:15:65:ab:cd",
        "00:15:65:ab:cd:ef:01",
        "00:15-65:ab:cd:ef",  # mixed separators
        "0:15:65:ab:cd:ef",
        "0015.65ab.cdef",
        "001565abcdeg",
        "00 15 65 ab cd ef",
        "001565abcdef/../x",
    ],
)
def test_normalize_mac_refuses_anything_else_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="is not a MAC address: expected 12 hexadecimal digits"):
        normalize_mac(text)


def test_file_names_are_what_the_phones_ask_for() -> None:
    assert yealink_filename(MAC) == "001565abcdef.cfg"
    assert grandstream_filename(MAC) == "cfg001565abcdef.xml"


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("001565abcdef.cfg", ("yealink", "001565abcdef")),
        ("001565ABCDEF.cfg", ("yealink", "001565abcdef")),
        ("cfg001565abcdef.xml", ("grandstream", "001565abcdef")),
        ("cfg001565abcdef", ("grandstream", "001565abcdef")),
        ("y000000000028.cfg", None),
        ("cfg.xml", None),
        ("001565abcdef.xml", None),
        ("../001565abcdef.cfg", None),
    ],
)
def test_match_config_filename(filename: str, expected: tuple[str, str] | None) -> None:
    assert match_config_filename(filename) == expected


# --- Validation ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", LINE_BREAKS)
def test_a_name_cannot_carry_a_line_break_or_control_character(bad: str) -> None:
    with pytest.raises(ValueError, match="display name may not contain line breaks"):
        SipAccount(number="201", display_name=f"Bob{bad}account.1.enable = 0", password="x" * 16)


@pytest.mark.parametrize("bad", LINE_BREAKS)
def test_a_password_cannot_carry_a_line_break_or_control_character(bad: str) -> None:
    with pytest.raises(ValueError, match="password may not contain line breaks"):
        SipAccount(number="201", display_name="Bob", password=f"secret{bad}account.2.enable = 1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"number": "20 1"}, "is not a SIP user name"),
        ({"number": ""}, "is not a SIP user name"),
        ({"number": "201@evil"}, "is not a SIP user name"),
        ({"password": ""}, "password is empty"),
        ({"password": " padded "}, "password may not start or end with a space"),
    ],
)
def test_account_validation(kwargs: dict[str, str], message: str) -> None:
    fields = {"number": "201", "display_name": "Bob", "password": "x" * 16} | kwargs
    with pytest.raises(ValueError, match=message):
        SipAccount(**fields)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"host": "pbx office"}, "neither an IP address nor a host name"),
        ({"host": "pbx\nlocal"}, "neither an IP address nor a host name"),
        ({"host": ""}, "neither an IP address nor a host name"),
        ({"host": "-pbx.lan"}, "neither an IP address nor a host name"),
        ({"port": 0}, "not between 1 and 65535"),
        ({"port": 65536}, "not between 1 and 65535"),
        ({"transport": "sctp"}, "is not one of udp, tcp, tls"),
        ({"realm": ""}, "realm is empty"),
    ],
)
def test_server_validation(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"host": "pbx.lan", "realm": "switchboard"} | kwargs
    with pytest.raises(ValueError, match=message):
        SipServer(**fields)  # type: ignore[arg-type]


def test_ipv6_hosts_are_bracketed_where_a_port_follows() -> None:
    server = SipServer(host="2001:db8::10", realm="switchboard")
    assert server.hostport == "[2001:db8::10]:5060"
    assert SipServer(host="pbx.lan.", realm="r").hostport == "pbx.lan.:5060"


# --- Plain words -----------------------------------------------------------------------------


def test_settings_text_names_every_setting_a_softphone_asks_for() -> None:
    assert settings_text(ACCOUNT, SERVER) == (
        "Extension 201\n"
        "\n"
        "Display name:             Reception\n"
        "SIP server:               192.168.1.10\n"
        "Port:                     5060\n"
        "Transport:                UDP\n"
        "User name:                201\n"
        "Authentication user name: 201\n"
        "Password:                 s3cretPassw0rd42\n"
        "Domain:                   192.168.1.10\n"
        "Realm:                    switchboard\n"
    )


def test_settings_rows_leave_out_an_empty_name_and_show_tls() -> None:
    account = SipAccount(number="202", display_name="", password="x" * 16)
    server = SipServer(host="pbx.lan", port=5061, transport="tls", realm="switchboard")
    rows = dict(settings_rows(account, server))
    assert "Display name" not in rows
    assert rows["Transport"] == "TLS" and rows["Port"] == "5061"


# --- Yealink ---------------------------------------------------------------------------------


def yealink_keys(text: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for line in text.splitlines()[1:]:
        if line.startswith("#") or not line.strip():
            continue
        key, separator, value = line.partition(" = ")
        assert separator, line
        assert key not in keys, f"{key} written twice"
        keys[key] = value
    return keys


def test_yealink_file_exact_keys() -> None:
    config = yealink_config(MAC, ACCOUNT, SERVER)
    assert config.filename == "001565abcdef.cfg"
    assert config.media_type == "text/plain"
    assert config.text.splitlines()[0] == "#!version:1.0.0.1"
    assert yealink_keys(config.text) == {
        "account.1.enable": "1",
        "account.1.label": "201",
        "account.1.display_name": "Reception",
        "account.1.auth_name": "201",
        "account.1.user_name": "201",
        "account.1.password": "s3cretPassw0rd42",
        "account.1.sip_server.1.address": "192.168.1.10",
        "account.1.sip_server.1.port": "5060",
        "account.1.sip_server.1.transport_type": "0",
        "account.1.transport": "0",
    }


@pytest.mark.parametrize(("transport", "code"), [("udp", "0"), ("tcp", "1"), ("tls", "2")])
def test_yealink_transport_codes(transport: str, code: str) -> None:
    server = SipServer(host="pbx.lan", port=5061, transport=transport, realm="r")  # type: ignore[arg-type]
    keys = yealink_keys(yealink_config(MAC, ACCOUNT, server).text)
    assert keys["account.1.sip_server.1.transport_type"] == code
    assert keys["account.1.transport"] == code
    assert keys["account.1.sip_server.1.address"] == "pbx.lan"
    assert keys["account.1.sip_server.1.port"] == "5061"


def test_yealink_values_are_written_as_they_are_one_line_each() -> None:
    account = SipAccount(number="203", display_name=AWKWARD_NAME, password=AWKWARD_PASSWORD)
    text = yealink_config(MAC, account, SERVER).text
    keys = yealink_keys(text)
    assert keys["account.1.display_name"] == AWKWARD_NAME
    assert keys["account.1.password"] == AWKWARD_PASSWORD
    assert len(text.splitlines()) == len(yealink_config(MAC, ACCOUNT, SERVER).text.splitlines())


def test_yealink_display_name_falls_back_to_the_number() -> None:
    account = SipAccount(number="204", display_name="", password="x" * 16)
    keys = yealink_keys(yealink_config(MAC, account, SERVER).text)
    assert keys["account.1.display_name"] == "204"


def test_yealink_refuses_a_bad_mac() -> None:
    with pytest.raises(ValueError, match="not a MAC address"):
        yealink_config("not-a-mac", ACCOUNT, SERVER)


# --- Grandstream -----------------------------------------------------------------------------


def grandstream_values(text: str) -> tuple[str, dict[str, str]]:
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "gs_provision" and root.get("version") == "1"
    mac = root.findtext("mac")
    config = root.find("config")
    assert mac is not None and config is not None and config.get("version") == "1"
    values: dict[str, str] = {}
    for element in config:
        assert element.tag not in values, f"{element.tag} written twice"
        values[element.tag] = element.text or ""
    return mac, values


def test_grandstream_file_exact_p_values() -> None:
    config = grandstream_config(MAC, ACCOUNT, SERVER)
    assert config.filename == "cfg001565abcdef.xml"
    assert config.media_type == "application/xml"
    assert config.text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    mac, values = grandstream_values(config.text)
    assert mac == "001565abcdef"
    assert values == {
        "P271": "1",
        "P270": "Reception",
        "P47": "192.168.1.10:5060",
        "P35": "201",
        "P36": "201",
        "P34": "s3cretPassw0rd42",
        "P3": "Reception",
        "P52": "0",
        "P130": "0",
    }


@pytest.mark.parametrize(("transport", "code"), [("udp", "0"), ("tcp", "1"), ("tls", "2")])
def test_grandstream_transport_codes(transport: str, code: str) -> None:
    server = SipServer(host="2001:db8::10", port=5061, transport=transport, realm="r")  # type: ignore[arg-type]
    _, values = grandstream_values(grandstream_config(MAC, ACCOUNT, server).text)
    assert values["P130"] == code
    assert values["P47"] == "[2001:db8::10]:5061"


def test_grandstream_escapes_xml_in_names_and_passwords() -> None:
    account = SipAccount(number="203", display_name=AWKWARD_NAME, password=AWKWARD_PASSWORD)
    text = grandstream_config(MAC, account, SERVER).text
    _, values = grandstream_values(text)
    assert values["P3"] == AWKWARD_NAME
    assert values["P270"] == AWKWARD_NAME
    assert values["P34"] == AWKWARD_PASSWORD
    assert "<Desk>" not in text and "p&ss" not in text


def test_grandstream_without_a_name() -> None:
    account = SipAccount(number="204", display_name="", password="x" * 16)
    _, values = grandstream_values(grandstream_config(MAC, account, SERVER).text)
    assert values["P3"] == "" and values["P270"] == "204"


# --- Linphone --------------------------------------------------------------------------------

LPCONFIG = "{http://www.linphone.org/xsds/lpconfig.xsd}"


def linphone_sections(text: str) -> dict[str, dict[str, str]]:
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == f"{LPCONFIG}config"
    sections: dict[str, dict[str, str]] = {}
    for section in root.findall(f"{LPCONFIG}section"):
        entries = sections.setdefault(section.get("name", ""), {})
        for entry in section.findall(f"{LPCONFIG}entry"):
            entries[entry.get("name", "")] = entry.text or ""
    return sections


def test_linphone_file_exact_entries() -> None:
    config = linphone_config(ACCOUNT, SERVER)
    assert config.media_type == "application/xml"
    assert linphone_sections(config.text) == {
        "misc": {"transient_provisioning": "1"},
        "sip": {"default_proxy": "0"},
        "proxy_0": {
            "reg_proxy": "<sip:192.168.1.10:5060;transport=udp>",
            "reg_identity": '"Reception" <sip:201@192.168.1.10>',
            "reg_expires": "3600",
            "reg_sendregister": "1",
            "realm": "switchboard",
        },
        "auth_info_0": {
            "username": "201",
            "userid": "201",
            "passwd": "s3cretPassw0rd42",
            "realm": "switchboard",
            "domain": "192.168.1.10",
        },
    }


def test_linphone_escapes_names_and_passwords() -> None:
    account = SipAccount(number="203", display_name=AWKWARD_NAME, password=AWKWARD_PASSWORD)
    server = SipServer(host="pbx.lan", port=5061, transport="tls", realm="switchboard")
    sections = linphone_sections(linphone_config(account, server).text)
    assert sections["auth_info_0"]["passwd"] == AWKWARD_PASSWORD
    assert sections["proxy_0"]["reg_proxy"] == "<sip:pbx.lan:5061;transport=tls>"
    # RFC 3261 quoted-string: the name's own quotes are escaped with a backslash.
    quoted = AWKWARD_NAME.replace('"', '\\"')
    assert sections["proxy_0"]["reg_identity"] == f'"{quoted}" <sip:203@pbx.lan>'


def test_linphone_identity_without_a_name() -> None:
    account = SipAccount(number="204", display_name="", password="x" * 16)
    sections = linphone_sections(linphone_config(account, SERVER).text)
    assert sections["proxy_0"]["reg_identity"] == "sip:204@192.168.1.10"


# --- QR codes --------------------------------------------------------------------------------


def test_qr_payload_is_the_settings_or_the_provisioning_url() -> None:
    assert qr_payload(ACCOUNT, SERVER) == (
        "Display name: Reception\nSIP server: 192.168.1.10\nPort: 5060\nTransport: UDP\n"
        "User name: 201\nAuthentication user name: 201\nPassword: s3cretPassw0rd42\n"
        "Domain: 192.168.1.10\nRealm: switchboard"
    )
    url = "http://192.168.1.10:8080/provision/linphone/Zx81abc.xml"
    assert qr_payload(ACCOUNT, SERVER, provisioning_url=url) == url


@pytest.mark.parametrize(
    "url", ["ftp://pbx.lan/x.xml", "javascript:alert(1)", "pbx.lan/x.xml", "http://pbx\n.lan/"]
)
def test_qr_payload_refuses_other_urls(url: str) -> None:
    with pytest.raises(ValueError, match="provisioning URL"):
        qr_payload(ACCOUNT, SERVER, provisioning_url=url)


def svg_modules(svg: str) -> list[list[bool]]:
    """Rasterize segno's SVG back to modules: one stroked horizontal line per dark run."""
    view = re.search(r'viewBox="0 0 (\d+) (\d+)"', svg)
    scale = re.search(r'transform="scale\((\d+)\)"', svg)
    path = re.search(r'<path class="qrline" stroke="#000" d="([^"]+)"', svg)
    assert view and scale and path, svg[:200]
    size = int(view.group(1)) // int(scale.group(1))
    grid = [[False] * size for _ in range(size)]
    x = y = 0.0
    for command, a, b in re.findall(r"([MmHh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1)):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            for column in range(int(x), int(x + float(a))):
                grid[int(y)][column] = True
            x += float(a)
    return grid


def test_qr_svg_draws_exactly_the_code_of_the_payload() -> None:
    payload = qr_payload(ACCOUNT, SERVER)
    svg = qr_svg(payload)
    assert svg.startswith("<svg ") and 'class="qr"' in svg
    assert "width=" not in svg.split(">", 1)[0]  # sized by CSS through its viewBox
    assert '<path fill="#fff"' in svg  # a light background even on a dark page
    grid = svg_modules(svg)
    border = 4
    inner = [row[border:-border] for row in grid[border:-border]]
    expected = segno.make_qr(payload, error="m").matrix
    assert inner == [[bool(cell) for cell in row] for row in expected]
    assert not any(grid[border - 1]) and not any(row[0] for row in grid)  # quiet zone


def write_pbm(grid: list[list[bool]], path: Path, *, pixels: int = 6) -> None:
    rows = [" ".join("1" if cell else "0" for cell in row for _ in range(pixels)) for row in grid]
    lines = [line for line in rows for _ in range(pixels)]
    width = len(grid[0]) * pixels
    path.write_text(f"P1\n{width} {len(lines)}\n" + "\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "provisioning_url", [None, "http://192.168.1.10:8080/provision/linphone/Zx81abc.xml"]
)
def test_qr_svg_scans_back_with_zbarimg(tmp_path: Path, provisioning_url: str | None) -> None:
    zbarimg = require_tool("zbarimg", "zbar-tools")
    account = SipAccount(number="203", display_name="Tom & Jerry <Desk>", password=AWKWARD_PASSWORD)
    payload = qr_payload(account, SERVER, provisioning_url=provisioning_url)
    image = tmp_path / "qr.pbm"
    write_pbm(svg_modules(qr_svg(payload)), image)
    assert scan_qr(zbarimg, image) == payload
