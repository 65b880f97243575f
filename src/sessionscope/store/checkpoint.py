"""SQLite WAL checkpoints on a thread of their own, so that no write request pays for one.

By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages, which
turns one append in a few dozen into a slow one. Here a daemon thread runs a PASSIVE
checkpoint (it never blocks readers or the writer) every `interval_s`; the connections keep a
higher automatic threshold only as a safety net, should this thread fall behind.

A PASSIVE checkpoint copies pages but never shrinks the file, and the WAL only restarts from its
start when a writer finds it fully copied with no reader inside it; under sustained ingest that
moment can be rare and the file grew to ~80 MiB. So once the file passes WAL_TRUNCATE_BYTES the
thread runs a TRUNCATE checkpoint with a short busy timeout: it waits at most that long for
readers (holding off writers meanwhile), and on failure the next round tries again. The
connections' journal_size_limit trims the file whenever a writer restarts the WAL.

When no connection has committed for IDLE_TRUNCATE_S, the thread empties the WAL once
(TRUNCATE): an idle store gives back the file's disk space, up to 16 MiB that would otherwise sit
beside the database until the next write (a store of 2,000 OTLP sessions was 8 MB with a
9.7 MB WAL after its ingest). A reader inside the WAL makes that attempt fail; it is tried again
in the next idle spell.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

log = logging.getLogger("sessionscope.store")

CHECKPOINT_INTERVAL_S = 0.1
# Pages in the WAL before a committing connection checkpoints by itself (SQLite's default is 1,000).
# 8,000 pages of 4 KiB: ~32 MiB, half the WAL bound (64 MiB) even if this thread is starved.
FALLBACK_AUTOCHECKPOINT_PAGES = 8_000
# Past this size the thread resets the WAL (TRUNCATE) instead of only copying pages (PASSIVE).
WAL_TRUNCATE_BYTES = 16 * 1024 * 1024
# What a writer truncates the WAL file to when it restarts it (PRAGMA journal_size_limit).
JOURNAL_SIZE_LIMIT_BYTES = WAL_TRUNCATE_BYTES
# How long a TRUNCATE waits for readers; appends queue behind it for at most this long.
TRUNCATE_BUSY_MS = 50
# No commit for this long: the store is idle, and its WAL is emptied once.
IDLE_TRUNCATE_S = 1.0


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
        wal = self.path + "-wal"
        try:
            conn.execute(f"PRAGMA busy_timeout={TRUNCATE_BUSY_MS}")
            # data_version moves when another connection commits: the idle clock restarts.
            version, idle_since, emptied = None, time.monotonic(), False
            while not self._stop.wait(self.interval_s):
                try:
                    now_version = conn.execute("PRAGMA data_version").fetchone()[0]
                    if now_version != version:
                        version, idle_since, emptied = now_version, time.monotonic(), False
                    size = _size(wal)
                    idle = not emptied and size > 0 and time.monotonic() - idle_since >= IDLE_TRUNCATE_S
                    mode = "TRUNCATE" if size > WAL_TRUNCATE_BYTES or idle else "PASSIVE"
                    if idle:
                        emptied = True  # once an idle spell: a reader inside the WAL makes it fail
                    conn.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
                except sqlite3.Error as exc:  # busy or locked now; the next round tries again
                    log.debug("WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0
