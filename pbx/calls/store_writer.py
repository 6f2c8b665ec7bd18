"""The one writer of call rows: the calls in progress and the CDR, off the datagram path.

Rows the core produces while handling messages are queued and written together in one
transaction right after (the loop's next turn), not inside the handling of each message. Not
later than that: the call list, `pbx calls` and a restore read these rows the moment a call
ends (a 50 ms batch was tried and made every reader racy).
"""

from __future__ import annotations

import asyncio
import logging

from sqlite_utils import Database

from pbx.store.calls import ActiveCall, CallRecord, finish_call, save_active
from pbx.store.transaction import write_transaction

log = logging.getLogger("pbx.calls")


class StoreWriter:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._rows: list[object] = []
        self._scheduled = False

    def write(self, row: object) -> None:
        self._rows.append(row)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        rows, self._rows = self._rows, []
        if not rows:
            return
        try:
            with write_transaction(self._db):
                for row in rows:
                    if isinstance(row, ActiveCall):
                        save_active(self._db, row)
                    elif isinstance(row, CallRecord):
                        finish_call(self._db, row)
        except Exception:  # a full disk must not stop the calls; the log says what was lost
            log.exception("event=store_write_failed rows=%d", len(rows))
