"""SQLite's WAL checkpoints, off the path of requests.

In WAL mode a commit appends to the ``-wal`` file; a checkpoint copies those pages back
into the database file and, with synchronous=NORMAL, fsyncs both
(config.SQLITE_SYNCHRONOUS). By default SQLite runs it inside whichever commit takes
the WAL past 1,000 pages, so every hundred-odd posts one request stalls its worker for
all of that I/O: gevent cannot switch greenlets inside a SQLite call, so every socket
and request of the worker waits too. On this machine that cost a busy writer about a
sixth of its posts (bench/README.md).

Instead each process checkpoints every SQLITE_CHECKPOINT_SECONDS from one native
thread, during which SQLite releases the GIL, and PASSIVE never blocks a reader or a
writer. Requests' own connections still checkpoint past SAFETY_PAGES, should that thread
not keep up. ``SQLITE_CHECKPOINT_SECONDS=0`` restores SQLite's default.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from urllib.parse import quote

from gevent import monkey

SAFETY_PAGES = 10_000  # about 40 MB of WAL

_started: set[tuple[int, str]] = set()


def configure(dbapi_connection: sqlite3.Connection, interval: float) -> None:
    """A new connection of this process: autocheckpoint only as a safety net, and
    its database file's checkpointer running (one per process and file)."""
    if interval <= 0:
        return
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_PAGES}")
    path = next((row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"), "")
    cursor.close()
    if not path:
        return  # an in-memory database has no WAL
    key = (os.getpid(), path)  # a forked worker needs a thread of its own
    if key not in _started:
        _started.add(key)
        _start_native_thread(_checkpoint_forever, path, interval)


def _start_native_thread(target, *args) -> None:
    """An OS thread even in a gevent worker, whose ``threading`` and ``time.sleep`` are
    greenlets: only a native thread runs while the worker's own thread is busy."""
    if monkey.is_module_patched("threading"):
        monkey.get_original("_thread", "start_new_thread")(target, args)
    else:
        threading.Thread(target=target, args=args, daemon=True, name="sqlite-checkpoint").start()


def _checkpoint_forever(path: str, interval: float) -> None:
    sleep = monkey.get_original("time", "sleep")  # the blocking one: this is its own thread
    try:
        # mode=rw: a database that is gone is not created again.
        connection = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, isolation_level=None)
    except sqlite3.Error:
        return
    with contextlib.closing(connection):
        while True:
            sleep(interval)
            if not os.path.exists(path):
                return
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                continue  # busy (another process is checkpointing): next time
