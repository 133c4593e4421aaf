"""message search: an FTS5 trigram index (SQLite) or a pg_trgm GIN index (PostgreSQL)

Revision ID: d4f1a7c3e9b2
Revises: c8e2f4a6b1d3
Create Date: 2026-12-03 10:00:00

Substring search that works for Chinese, which has no spaces between words: both
indexes are made of trigrams (any three characters in a row), so "数据库" finds
"我们的数据库又挂了" with no word segmentation. Queries of one or two characters have no
trigram; webchat/search/query.py scans for those instead.

SQLite: ``message_fts``, an external-content FTS5 table over message(body) (it stores
only the index, not a second copy of the text), kept in step by triggers on message,
so every INSERT, UPDATE and DELETE of a message changes the index in the same
transaction. Every message is indexed, system ones too (their bodies are empty or a
name): unconditional triggers cannot drift from the table, and FTS5's 'rebuild' and
'integrity-check' stay valid; the search query keeps to kind = 'user'.

A later migration that makes SQLite rebuild the message table (Alembic's batch mode
copies it, drops it and renames the copy) drops these triggers with the old table: it
must create them again (``SQLITE_TRIGGERS`` below) and rebuild the index.
tests/test_migrations.py checks that the triggers exist at the head revision.

PostgreSQL: the pg_trgm extension and a GIN index on message.body with gin_trgm_ops;
``body ILIKE '%...%'`` uses it for three characters or more.
"""
from alembic import op


revision = 'd4f1a7c3e9b2'
down_revision = 'c8e2f4a6b1d3'
branch_labels = None
depends_on = None

SQLITE_TABLE = (
    "CREATE VIRTUAL TABLE message_fts USING fts5("
    "body, content='message', content_rowid='id', tokenize='trigram case_sensitive 0')"
)
SQLITE_TRIGGERS = (
    """CREATE TRIGGER message_fts_insert AFTER INSERT ON message BEGIN
        INSERT INTO message_fts (rowid, body) VALUES (new.id, new.body);
    END""",
    """CREATE TRIGGER message_fts_delete AFTER DELETE ON message BEGIN
        INSERT INTO message_fts (message_fts, rowid, body) VALUES ('delete', old.id, old.body);
    END""",
    """CREATE TRIGGER message_fts_update AFTER UPDATE OF body ON message BEGIN
        INSERT INTO message_fts (message_fts, rowid, body) VALUES ('delete', old.id, old.body);
        INSERT INTO message_fts (rowid, body) VALUES (new.id, new.body);
    END""",
)
PG_INDEX = "ix_message_body_trgm"


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_TABLE)
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute("INSERT INTO message_fts (message_fts) VALUES ('rebuild')")  # the messages already there
    else:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX {PG_INDEX} ON message USING gin (body gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("message_fts_update", "message_fts_delete", "message_fts_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS message_fts")
    else:
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        # The extension stays: it may have been there before this revision, and other
        # objects in the database may use it; without the index it costs nothing.
