"""The runtime under the switch: the asyncio event loop (uvloop when installed, the standard one
otherwise) and the garbage collector's pace."""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import Callable

from pbx.errors import ConfigError


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory for ``asyncio.Runner``: ``auto`` prefers uvloop (less CPU per message)."""
    if choice in ("auto", "uvloop"):
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            if choice == "uvloop":
                raise ConfigError("event_loop = uvloop, but uvloop is not installed") from None
        else:
            factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
            return factory
    return asyncio.new_event_loop


GC_THRESHOLDS = (10_000, 20, 50)
"""Collect the youngest generation every 10,000 allocations instead of 700: a request makes
hundreds of short-lived objects, and the default pace ran collections (which walk the live
bindings and transactions too) many times per registration."""


def tune_gc() -> None:
    """Once started: what exists now (modules, settings, the loaded location) is never
    garbage, so the collector stops walking it (gc.freeze); then a slower pace for the rest.
    Measured 3-6% less CPU per registration and per call (bench/RESULTS.md)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
