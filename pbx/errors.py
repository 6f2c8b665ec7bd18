"""Errors of the switch outside the SIP core (configuration, start-up)."""

from __future__ import annotations


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message says which and why."""
