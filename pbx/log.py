"""Structured logging to stderr, in a form journald and grep both read.

Lines look like ``2026-11-24T05:50:00.123Z info pbx.transport event=... call_id=...``.
Under systemd (``JOURNAL_STREAM`` set) the time is left to the journal and a
``<N>`` syslog priority prefix carries the level (SyslogLevelPrefix=yes).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import TextIO

_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class KeyValueFormatter(logging.Formatter):
    def __init__(self, *, journald: bool) -> None:
        super().__init__()
        self._journald = journald

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message} exc={self.formatException(record.exc_info)!r}"
        level = record.levelname.lower()
        if self._journald:
            priority = _SYSLOG_PRIORITY.get(record.levelno, 6)
            return f"<{priority}>{level} {record.name} {message}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z {level} {record.name} {message}"


def configure_logging(
    level: str = "info",
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send the ``pbx`` loggers to stderr in key=value form (called by each process's main)."""
    env = os.environ if environ is None else environ
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(KeyValueFormatter(journald="JOURNAL_STREAM" in env))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
