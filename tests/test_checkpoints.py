"""SQLite's WAL checkpoints run in a native thread of the process, not inside the
commit of whichever request fills the WAL (webchat/checkpoints.py)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import text

import config
from webchat import checkpoints
from webchat.extensions import db

from .conftest import TEST_DB, create_room, post_form, signup

pytestmark = pytest.mark.skipif(TEST_DB != "sqlite", reason="SQLite's WAL only; PostgreSQL checkpoints itself")


def in_database_file(path: str, body: str) -> bool:
    """Whether the message is in the database file itself: immutable=1 reads the file
    and ignores the WAL, so it sees only what a checkpoint copied there."""
    file = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return file.execute("SELECT count(*) FROM message WHERE body = ?", (body,)).fetchone()[0] > 0
    finally:
        file.close()


def test_a_post_reaches_the_database_file_without_a_request_checkpointing(app, client):
    with app.app_context():
        path = db.engine.url.database
        # Requests' own connections checkpoint only as a safety net, far beyond SQLite's 1,000 pages.
        assert db.session.execute(text("PRAGMA wal_autocheckpoint")).scalar() == checkpoints.SAFETY_PAGES
    signup(client)
    create_room(client)
    body = f"checkpointed {time.time()}"
    assert post_form(client, "/room/general/", {"message": body}).status_code == 303
    deadline = time.monotonic() + 10 * max(config.SQLITE_CHECKPOINT_SECONDS, 1.0)
    while not in_database_file(path, body):
        assert time.monotonic() < deadline, "no checkpoint copied the message into the database file"
        time.sleep(0.1)


def test_zero_seconds_keeps_sqlites_own_checkpoints(tmp_path):
    connection = sqlite3.connect(tmp_path / "own.sqlite3")
    connection.execute("PRAGMA journal_mode=WAL")
    checkpoints.configure(connection, 0)
    assert connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000
    connection.close()


def test_a_database_that_is_gone_is_not_created_again(tmp_path):
    path = tmp_path / "gone.sqlite3"
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    checkpoints.configure(connection, 0.01)
    connection.close()
    path.unlink()
    time.sleep(0.2)  # several of the thread's rounds
    assert not path.exists()
