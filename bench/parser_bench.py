#!/usr/bin/env python3
"""Parser micro-benchmark: messages per second for parse and serialize.

    python bench/parser_bench.py [--seconds 2]

Prints ``METRIC parse message=... us_per_msg=... msgs_per_s=...`` lines. Each
figure is the best of several rounds (the machine is shared: the minimum is
the least disturbed measurement).
"""

from __future__ import annotations

import argparse
import platform
import sys
import timeit
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pbx.sip.message import parse_message  # noqa: E402

MESSAGES = ["invite_typical", "register_auth"]


def best_time(func: object, seconds: float) -> float:
    timer = timeit.Timer(func)  # type: ignore[arg-type]
    number, _ = timer.autorange()
    rounds = max(3, int(seconds / max(timer.timeit(number), 1e-3)))
    return min(timer.repeat(repeat=min(rounds, 15), number=number)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(f"# python {platform.python_version()} on {platform.machine()}", flush=True)
    for name in MESSAGES:
        data = (HERE / "messages" / f"{name}.sip").read_bytes()
        message = parse_message(data)
        parse_s = best_time(lambda data=data: parse_message(data), args.seconds)
        serialize_s = best_time(lambda message=message: bytes(message), args.seconds)
        round_s = best_time(lambda data=data: bytes(parse_message(data)), args.seconds)
        for what, seconds in (
            ("parse", parse_s),
            ("serialize", serialize_s),
            ("parse_serialize", round_s),
        ):
            print(
                f"METRIC {what} message={name} bytes={len(data)} headers={len(message.headers)} "
                f"us_per_msg={seconds * 1e6:.2f} msgs_per_s={1 / seconds:,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
