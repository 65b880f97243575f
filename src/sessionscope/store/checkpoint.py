"""SQLite WAL checkpoints on a thread of their own, so that no write request pays for one.

By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages, which
turns one append in a few dozen into a slow one. Here a daemon thread runs a PASSIVE
checkpoint (it never blocks readers or the writer) every `interval_s`; the connections keep a
higher automatic threshold only as a safety net, should this thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger("sessionscope.store")

CHECKPOINT_INTERVAL_S = 0.1
# Pages in the WAL before a committing connection checkpoints by itself (SQLite's default is 1,000).
FALLBACK_AUTOCHECKPOINT_PAGES = 20_000


class WalCheckpointer:
    def __init__(self, path: str, interval_s: float = CHECKPOINT_INTERVAL_S) -> None:
        self.path = path
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sessionscope-wal-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error:
            log.warning("WAL checkpoint thread could not open %s; commits will checkpoint instead", self.path)
            return
        try:
            conn.execute("PRAGMA busy_timeout=1000")
            while not self._stop.wait(self.interval_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or locked now; the next round tries again
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()
