"""merge: search index and the accounts/message-life/mentions line

Revision ID: a9c4e6f8b0d2
Revises: d4f1a7c3e9b2, f2a8b6c0d9e1
Create Date: 2026-12-02 01:00:00

The two lines were written side by side; on SQLite, a revision of the other line that
rebuilt the message table (Alembic batch mode) after d4f1a7c3e9b2 ran would drop the
search triggers with the old table. Whatever the order they ran in, make sure the
triggers exist and the index holds every message.
"""
import importlib.util
from pathlib import Path

from alembic import op

revision = 'a9c4e6f8b0d2'
down_revision = ('d4f1a7c3e9b2', 'f2a8b6c0d9e1')
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    # The trigger definitions stay in the revision that made them (one place to read).
    path = Path(__file__).with_name("d4f1a7c3e9b2_message_search.py")
    spec = importlib.util.spec_from_file_location("d4f1a7c3e9b2_message_search", path)
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    for trigger in search.SQLITE_TRIGGERS:
        op.execute(trigger.replace("CREATE TRIGGER", "CREATE TRIGGER IF NOT EXISTS", 1))
    op.execute("INSERT INTO message_fts (message_fts) VALUES ('rebuild')")


def downgrade():
    pass
