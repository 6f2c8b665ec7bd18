"""``python -m webadmin`` (what ``pbx web`` runs): the web admin under waitress."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import threading
import time
from pathlib import Path

from pbx.sd_notify import notify, watchdog_interval
from pbx.store.admins import setup_code
from pbx.store.database import open_database


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pbx web", description="Run the Switchboard web admin.")
    parser.add_argument("--db", default=os.environ.get("SWITCHBOARD_DB", "data/switchboard.db"))
    parser.add_argument("--bind", default="127.0.0.1", help="address to serve on")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--sip-host", default=None, help="address phones register to")
    parser.add_argument("--sip-port", type=int, default=5060)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        db = open_database(Path(args.db))
    except Exception as exc:  # sqlite3.Error, OSError: one line, not a traceback
        print(f"pbx web: cannot open {args.db}: {exc}", file=sys.stderr)
        return 2
    code = setup_code(db)
    db.close()
    from waitress import create_server  # type: ignore[import-untyped]

    from webadmin import create_app

    sip_host = args.sip_host or (args.bind if args.bind not in ("0.0.0.0", "::") else "127.0.0.1")
    app = create_app({"DB": args.db, "SIP_HOST": sip_host, "SIP_PORT": args.sip_port})
    server = create_server(app, host=args.bind, port=args.port, threads=args.threads)
    host = args.bind if ":" not in args.bind else f"[{args.bind}]"
    print(f"Switchboard web admin on http://{host}:{server.effective_port}/", file=sys.stderr)
    if code:
        print(f"First visit: the setup code is {code}", file=sys.stderr)
    sys.stderr.flush()
    notify("READY=1")
    interval = watchdog_interval()
    if interval is not None:
        # waitress owns the main thread; a daemon thread pings while the process lives.
        def ping() -> None:
            while True:
                notify("WATCHDOG=1")
                time.sleep(interval)

        threading.Thread(target=ping, daemon=True, name="watchdog").start()
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
