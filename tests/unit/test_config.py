from __future__ import annotations

from pathlib import Path

import pytest

from pbx.config import Settings, load_settings
from pbx.errors import ConfigError


def test_defaults() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert settings.sip_port == 5060 and settings.rtp_ports == (10000, 10999)


def test_sources_in_order(tmp_path: Path) -> None:
    config = tmp_path / "pbx.toml"
    config.write_text('sip_port = 5070\nbind = "0.0.0.0"\nrtp_ports = "20000-20099"\n')
    settings = load_settings(
        config_file=config,
        environ={"SWITCHBOARD_SIP_PORT": "5080", "OTHER": "x"},
        overrides={"bind": "127.0.0.2", "log_level": None},
    )
    assert settings.sip_port == 5080  # environment beats the file
    assert settings.bind == "127.0.0.2"  # flags beat everything
    assert settings.rtp_ports == (20000, 20099)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("sip_port", "70000", "sip_port"),
        ("sip_port", "abc", "sip_port"),
        ("rtp_ports", "10000", "rtp_ports"),
        ("rtp_ports", "20000-10000", "rtp_ports"),
        ("bind", "not-an-ip", "bind"),
        ("log_level", "loud", "log_level"),
    ],
)
def test_bad_values_say_which_setting(key: str, value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        load_settings(overrides={key: value})


def test_unknown_key_in_file(tmp_path: Path) -> None:
    config = tmp_path / "pbx.toml"
    config.write_text("sip_prot = 5070\n")
    with pytest.raises(ConfigError, match="unknown setting 'sip_prot'"):
        load_settings(config_file=config)
