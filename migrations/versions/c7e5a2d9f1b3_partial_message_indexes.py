"""fewer pages per message: partial indexes, no column sizes in the trigram index

Revision ID: c7e5a2d9f1b3
Revises: b3e8d1f6a4c7
Create Date: 2026-12-02 06:00:00

``ix_message_reply_to_id`` and ``ix_message_room_id_changed_seq`` held an entry for
every message, though most messages answer none and never change: each new message
wrote a NULL key into both, two of the sixteen pages a post writes to SQLite's WAL.
Their queries (the replies to a message, a room's changes since a number) compare the
column with ``=`` or ``>``, which no NULL satisfies, so SQLite and PostgreSQL both use
an index of the rows where it is not NULL.

SQLite: ``message_fts`` (d4f1a7c3e9b2) kept each message's column size, one more page
per post, for ranking (bm25), which search never does (it lists newest first). It is
made again with ``columnsize=0`` and rebuilt from the messages, which reads every
message once (about a minute per million on a small server). Its triggers name the table
only, and stay. Each post now writes 13 pages instead of 16.
"""

import sqlalchemy as sa
from alembic import op

revision = "c7e5a2d9f1b3"
down_revision = "b3e8d1f6a4c7"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_message_reply_to_id", ["reply_to_id"], "reply_to_id IS NOT NULL"),
    ("ix_message_room_id_changed_seq", ["room_id", "changed_seq"], "changed_seq IS NOT NULL"),
)


TRIGRAMS = (
    "CREATE VIRTUAL TABLE message_fts USING fts5("
    "body, content='message', content_rowid='id', tokenize='trigram case_sensitive 0'{options})"
)


def _trigram_index(options: str) -> None:
    op.execute("DROP TABLE message_fts")
    op.execute(TRIGRAMS.format(options=options))
    op.execute("INSERT INTO message_fts (message_fts) VALUES ('rebuild')")  # the messages already there


def upgrade() -> None:
    for name, columns, where in INDEXES:
        op.drop_index(name, table_name="message")
        condition = sa.text(where)
        op.create_index(name, "message", columns, sqlite_where=condition, postgresql_where=condition)
    if op.get_bind().dialect.name == "sqlite":
        _trigram_index(", columnsize=0")


def downgrade() -> None:
    for name, columns, _where in INDEXES:
        op.drop_index(name, table_name="message")
        op.create_index(name, "message", columns)
    if op.get_bind().dialect.name == "sqlite":
        _trigram_index("")
