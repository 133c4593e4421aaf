"""short text search: an index of each message's one- and two-character pieces

Revision ID: b3e8d1f6a4c7
Revises: a9c4e6f8b0d2
Create Date: 2026-12-05 10:00:00

The trigram indexes of d4f1a7c3e9b2 have nothing to look up for a text of one or two
characters ("鑫", "熔断", "db"), so those searches read every message the reader may
read, newest first, until a page is full: a rare or absent text read them all (issue
14). This index holds, for each message, the distinct one- and two-character pieces of
its lower-cased text (pieces with whitespace left out: a search is stripped, so a short
one never holds any), so such a search is the look-up of one term.

SQLite: ``message_grams``, a contentless FTS5 table (it stores no copy of the text)
with ``detail=none`` (each term is looked up whole, so no positions are kept) and no
column sizes (nothing ranks). Its text is ``webchat_grams(body)``: each piece as one
ASCII token, made by the Python function webchat.grams.grams, which every connection
registers (webchat/extensions.py) — a connection without it cannot write a message.
Triggers on message keep it in step in the same transaction as message_fts's do; a
contentless table forgets what it was given, so the 'delete' command is handed the
same tokens again, from the same deterministic function. Not an external-content table
over a view of ``webchat_grams(body)``: SQLite refuses to rename a table while a view
names a table that is missing, which is what a batch rebuild of message does.

The hazard of d4f1a7c3e9b2 holds for these triggers too: a later revision that makes
SQLite rebuild the message table (Alembic batch mode) drops them with the old table and
must create them again (``SQLITE_TRIGGERS``) and fill the index again (``fill``).
tests/test_migrations.py checks that they exist at the head revision.

PostgreSQL: the function ``webchat_grams(text) RETURNS text[]`` (the same pieces, as an
array) and a GIN index on ``webchat_grams(body)``; the search asks
``webchat_grams(body) @> ARRAY[lower(:text)]``, the index's own expression.
"""

from alembic import op

revision = "b3e8d1f6a4c7"
down_revision = "a9c4e6f8b0d2"
branch_labels = None
depends_on = None

SQLITE_TABLE = (
    "CREATE VIRTUAL TABLE message_grams USING fts5("
    "grams, content='', detail='none', columnsize=0, tokenize='ascii')"
)
SQLITE_TRIGGERS = (
    """CREATE TRIGGER message_grams_insert AFTER INSERT ON message BEGIN
        INSERT INTO message_grams (rowid, grams) VALUES (new.id, webchat_grams(new.body));
    END""",
    """CREATE TRIGGER message_grams_delete AFTER DELETE ON message BEGIN
        INSERT INTO message_grams (message_grams, rowid, grams) VALUES ('delete', old.id, webchat_grams(old.body));
    END""",
    """CREATE TRIGGER message_grams_update AFTER UPDATE OF body ON message BEGIN
        INSERT INTO message_grams (message_grams, rowid, grams) VALUES ('delete', old.id, webchat_grams(old.body));
        INSERT INTO message_grams (rowid, grams) VALUES (new.id, webchat_grams(new.body));
    END""",
)
SQLITE_FILL = (
    "INSERT INTO message_grams (message_grams) VALUES ('delete-all')",  # a contentless table has no 'rebuild'
    "INSERT INTO message_grams (rowid, grams) SELECT id, webchat_grams(body) FROM message",
)

# lower() once per message, then its characters in one pass (string_to_array with no
# separator): substr(body, i, 2) for each i would walk the text from its start each
# time, quadratic in its length. DISTINCT: a GIN key per piece, not per occurrence.
# Pieces with a space are left out (the commonest whitespace; strpos is cheaper than a
# regular expression); other whitespace is rare and only costs a little room.
PG_FUNCTION = """CREATE FUNCTION webchat_grams(body text) RETURNS text[]
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
        SELECT coalesce(array_agg(DISTINCT piece), '{}')
        FROM (SELECT string_to_array(lower(body), NULL) AS chars) AS split,
            unnest(split.chars, split.chars[2:]) AS pair (char, next),
            LATERAL (VALUES (char), (char || next)) AS pieces (piece)
        WHERE piece IS NOT NULL AND strpos(piece, ' ') = 0
    $$"""
PG_INDEX = "ix_message_grams"


def fill():
    """Index the messages already there (SQLite)."""
    for statement in SQLITE_FILL:
        op.execute(statement)


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute(SQLITE_TABLE)
        for trigger in SQLITE_TRIGGERS:
            op.execute(trigger)
        fill()
    else:
        op.execute(PG_FUNCTION)
        op.execute(f"CREATE INDEX {PG_INDEX} ON message USING gin (webchat_grams(body))")


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("message_grams_update", "message_grams_delete", "message_grams_insert"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS message_grams")
    else:
        op.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")
        op.execute("DROP FUNCTION IF EXISTS webchat_grams(text)")
