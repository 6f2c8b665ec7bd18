"""Settings of the switch: one option table, read from TOML, environment and flags.

Every option is declared once below with its type, default and help. Later
sources override earlier ones: defaults < TOML file < ``SWITCHBOARD_<NAME>``
environment variables < command-line flags.
"""

from __future__ import annotations

import ipaddress
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from pbx.errors import ConfigError


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise ValueError("a port is 0..65535")
    return port


def parse_port_range(text: str) -> tuple[int, int]:
    """``10000-10999`` -> (10000, 10999); RTP wants an even start and room for pairs."""
    low_text, dash, high_text = str(text).partition("-")
    if not dash:
        raise ValueError("write a range as LOW-HIGH, e.g. 10000-10999")
    low, high = int(low_text), int(high_text)
    if not (1024 <= low < high <= 65535):
        raise ValueError("a port range is LOW-HIGH with 1024 <= LOW < HIGH <= 65535")
    if high - low < 3:
        raise ValueError("an RTP range needs room for at least two port pairs")
    return (low, high)


def parse_address(text: str) -> str:
    ipaddress.ip_address(text)
    return text


def parse_level(text: str) -> str:
    level = text.lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError("one of debug, info, warning, error")
    return level


def parse_event_loop(text: str) -> str:
    choice = text.lower()
    if choice not in ("auto", "uvloop", "asyncio"):
        raise ValueError("one of auto, uvloop, asyncio")
    return choice


def parse_seconds(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 2**31 - 1:
        raise ValueError("a number of seconds from 1 up")
    return value


def parse_count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 1_000_000:
        raise ValueError("a count from 1 to 1000000")
    return value


def parse_networks_text(text: str) -> str:
    """Comma-separated addresses or networks (CIDR); checked here, parsed where used."""
    for item in str(text).replace(";", ",").split(","):
        if item.strip():
            ipaddress.ip_network(item.strip(), strict=False)
    return str(text)


DIGEST_ALGORITHMS = ("SHA-256", "MD5")
DEFAULT_DIGEST_ALGORITHMS = ("MD5",)
"""MD5 alone by default: baresip 1.0, SIPp 3.6 and sipsak take the first challenge of a 401
even when they cannot answer it, so a SHA-256-first offer locks them out (extensions that
know their phone can do better choose SHA-256 for themselves)."""


def parse_digest_algorithms(text: str) -> tuple[str, ...]:
    """``SHA-256,MD5`` -> the challenge offer, most preferred first (RFC 8760 §2.4)."""
    names = [item.strip().upper() for item in str(text).split(",") if item.strip()]
    if not names or any(name not in DIGEST_ALGORITHMS for name in names):
        raise ValueError("a comma-separated list of SHA-256 and MD5")
    if len(set(names)) != len(names):
        raise ValueError("an algorithm is listed twice")
    return tuple(names)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The switch's settings; see OPTIONS for the meaning of each."""

    db: Path = Path("data/switchboard.db")
    bind: str = "127.0.0.1"
    sip_port: int = 5060
    rtp_ports: tuple[int, int] = (10000, 10999)
    log_level: str = "info"
    server_name: str = "Switchboard"
    event_loop: str = "auto"
    register_min_expires: int = 60
    register_max_expires: int = 3600
    register_max_contacts: int = 10
    qualify_interval: int = 60
    auth_failure_limit: int = 10
    auth_failure_window: int = 60
    ban_seconds: int = 3600
    ban_allow: str = ""
    digest_algorithms: tuple[str, ...] = DEFAULT_DIGEST_ALGORITHMS
    media_address: str = ""
    ring_timeout: int = 60
    session_refresh: int = 900


@dataclass(frozen=True, slots=True)
class Option:
    parse: Callable[[str], Any]
    help: str


OPTIONS: Mapping[str, Option] = {
    "db": Option(Path, "SQLite database file shared by the switch, gateway and web admin"),
    "bind": Option(parse_address, "IP address to listen on for SIP (0.0.0.0 for every interface)"),
    "sip_port": Option(parse_port, "SIP port for UDP and TCP (0 picks a free one)"),
    "rtp_ports": Option(parse_port_range, "RTP port range LOW-HIGH for the media relay"),
    "log_level": Option(parse_level, "debug, info, warning or error"),
    "server_name": Option(str, "Server / User-Agent header value"),
    "event_loop": Option(
        parse_event_loop, "auto (uvloop when installed), uvloop, or asyncio (the standard loop)"
    ),
    "register_min_expires": Option(
        parse_seconds, "shortest registration accepted, in seconds (shorter gets 423)"
    ),
    "register_max_expires": Option(parse_seconds, "longest registration granted, in seconds"),
    "register_max_contacts": Option(parse_count, "bindings kept per extension (oldest go first)"),
    "qualify_interval": Option(parse_seconds, "seconds between OPTIONS probes of each phone"),
    "auth_failure_limit": Option(
        parse_count, "failed authentications from one address that lead to a ban"
    ),
    "auth_failure_window": Option(parse_seconds, "seconds over which those failures count"),
    "ban_seconds": Option(parse_seconds, "how long a ban lasts, in seconds"),
    "digest_algorithms": Option(
        parse_digest_algorithms,
        "digest algorithms offered, most preferred first (RFC 8760); e.g. SHA-256,MD5",
    ),
    "media_address": Option(
        lambda text: parse_address(text) if text else "",
        "address phones send media to (SDP c=); empty: the bind address",
    ),
    "ring_timeout": Option(parse_seconds, "seconds a call rings before the caller gets 408"),
    "session_refresh": Option(
        parse_seconds, "seconds between the switch's checks that both legs of a call are alive"
    ),
    "ban_allow": Option(
        parse_networks_text,
        "addresses or networks never banned, comma-separated (e.g. 192.168.1.0/24)",
    ),
}

ENV_PREFIX = "SWITCHBOARD_"


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Settings from defaults, a TOML file, the environment and explicit overrides."""
    values: dict[str, Any] = {}
    if config_file is not None:
        try:
            data = tomllib.loads(config_file.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read {config_file}: {exc}") from None
        for key, raw in data.items():
            if key not in OPTIONS:
                raise ConfigError(f"{config_file}: unknown setting {key!r}")
            values[key] = _parse(key, str(raw) if not isinstance(raw, str) else raw)
    for key in OPTIONS:
        env_value = (environ or {}).get(ENV_PREFIX + key.upper())
        if env_value is not None:
            values[key] = _parse(key, env_value)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in OPTIONS:
            raise ConfigError(f"unknown setting {key!r}")
        values[key] = _parse(key, value) if isinstance(value, str) else value
    known = {f.name for f in fields(Settings)}
    return replace(Settings(), **{k: v for k, v in values.items() if k in known})


def _parse(key: str, text: str) -> Any:
    try:
        return OPTIONS[key].parse(text)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bad value for {key}: {text!r} ({exc})") from None
