"""The checked-in Alembic migrations build the schema the models describe; SQLite's PRAGMAs."""

from __future__ import annotations

import sqlite3

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import bindparam, inspect, text
from sqlalchemy.exc import IntegrityError

import config
from webchat import create_app
from webchat.extensions import db
from webchat.grams import gram_term, grams
from webchat.search import include_object

from . import services
from .conftest import ROOT, TEST_DB

TABLES = {"user", "room", "message", "membership", "user_session", "invite", "reaction", "mention"}
# SQLite's FTS5 search index: the table and its shadow tables (external content: no copy of the text).
# The trigram index (d4f1a7c3e9b2), without column sizes since c7e5a2d9f1b3.
FTS_TABLES = {"message_fts", "message_fts_config", "message_fts_data", "message_fts_idx"}
SEARCH_TRIGGERS = {"message_fts_insert", "message_fts_update", "message_fts_delete"}
# The index of one- and two-character pieces (b3e8d1f6a4c7): contentless, no column sizes.
GRAMS_TABLES = {"message_grams", "message_grams_config", "message_grams_data", "message_grams_idx"}
GRAMS_TRIGGERS = {"message_grams_insert", "message_grams_update", "message_grams_delete"}
BEFORE_GRAMS = "a9c4e6f8b0d2"


def head_revision() -> str:
    script = ScriptDirectory(str(ROOT / "migrations"))
    [head] = script.get_heads()
    return head


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path):
    """A database nobody has touched: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    if TEST_DB != "postgres":
        pytest.skip("PostgreSQL runs with WEBCHAT_TEST_DB=postgres")
    url, name = services.create_pg_database()
    yield url
    services.drop_pg_database(name)


@pytest.fixture
def fresh_app(empty_database):
    app = create_app(config.TestingConfig(), SQLALCHEMY_DATABASE_URI=empty_database)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_upgrade_creates_the_tables_on_an_empty_database(fresh_app):
    assert set(inspect(db.engine).get_table_names()) == set()
    upgrade()
    search = FTS_TABLES | GRAMS_TABLES if db.engine.dialect.name == "sqlite" else set()
    assert set(inspect(db.engine).get_table_names()) == TABLES | search | {"alembic_version"}
    version = db.session.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    assert version == head_revision()


def test_migrated_schema_matches_the_models(fresh_app):
    """A model changed without a migration shows up here as a difference."""
    upgrade()
    with db.engine.connect() as connection:
        opts = {"compare_type": True, "include_object": include_object}  # as migrations/env.py
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, db.metadata) == []


def test_migrations_downgrade_cleanly(fresh_app):
    upgrade()
    downgrade(revision="base")
    assert set(inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    assert TABLES <= set(inspect(db.engine).get_table_names())


def test_uniqueness_and_foreign_keys_are_enforced(fresh_app):
    upgrade()
    db.session.execute(
        text(
            'INSERT INTO "user" (id, username, username_key, password_hash, created_at) '
            "VALUES (1, 'Alice', 'alice', 'x', CURRENT_TIMESTAMP)"
        )
    )
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(
            text(
                'INSERT INTO "user" (username, username_key, password_hash, created_at) '
                "VALUES ('ALICE', 'alice', 'x', CURRENT_TIMESTAMP)"
            )
        )
    db.session.rollback()
    with pytest.raises(IntegrityError):  # a message in a room that does not exist
        db.session.execute(
            text(
                "INSERT INTO message (room_id, author_id, body, kind, created_at) "
                "VALUES (12345, 1, 'orphan', 'user', CURRENT_TIMESTAMP)"
            )
        )
    db.session.rollback()


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(tmp_path):
    path = tmp_path / "pragmas.sqlite3"
    app = create_app(config.TestingConfig(), SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}")
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
        db.engine.dispose()
    # WAL is a property of the file: any later connection, even a bare one, finds it
    bare = sqlite3.connect(path)
    try:
        assert bare.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        bare.close()


def test_the_app_never_creates_tables_itself(tmp_path):
    """The schema belongs to the migrations: starting the app leaves a new database empty."""
    path = tmp_path / "untouched.sqlite3"
    app = create_app(config.TestingConfig(), SQLALCHEMY_DATABASE_URI=f"sqlite:///{path}")
    app.test_client().get("/login/")
    with app.app_context():
        assert inspect(db.engine).get_table_names() == []
        db.engine.dispose()


def test_system_sentences_become_events_and_come_back_on_downgrade(fresh_app):
    """Rows stored as English sentences before the i18n revision are converted."""
    upgrade(revision="35d80c030438")
    db.session.execute(
        text(
            'INSERT INTO "user" (id, username, username_key, password_hash, created_at) '
            "VALUES (1, '小明', '小明', 'x', CURRENT_TIMESTAMP)"
        )
    )
    db.session.execute(
        text(
            "INSERT INTO room (id, name, name_key, owner_id, created_at, last_activity_at) "
            "VALUES (1, 'r', 'r', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
    )
    for body, kind in (("小明 created the room", "system"), ("小明 joined the room", "system"), ("hi", "user")):
        db.session.execute(
            text(
                "INSERT INTO message (room_id, author_id, body, kind, created_at) "
                "VALUES (1, 1, :b, :k, CURRENT_TIMESTAMP)"
            ),
            {"b": body, "k": kind},
        )
    db.session.commit()
    upgrade()
    rows = db.session.execute(text("SELECT kind, event, body FROM message ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [("system", "created", ""), ("system", "joined", ""), ("user", None, "hi")]
    db.session.commit()
    downgrade(revision="35d80c030438")
    bodies = db.session.execute(text("SELECT body FROM message ORDER BY id")).scalars().all()
    assert bodies == ["小明 created the room", "小明 joined the room", "hi"]


def add_message(body: str, kind: str = "user") -> int:
    """A user, a room and a message in it, straight in SQL (any revision's schema)."""
    db.session.execute(
        text(
            'INSERT INTO "user" (id, username, username_key, password_hash, created_at) '
            "SELECT 1, 'u', 'u', 'x', CURRENT_TIMESTAMP WHERE NOT EXISTS (SELECT 1 FROM \"user\")"
        )
    )
    db.session.execute(
        text(
            "INSERT INTO room (id, name, name_key, owner_id, created_at, last_activity_at) "
            "SELECT 1, 'r', 'r', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP WHERE NOT EXISTS (SELECT 1 FROM room)"
        )
    )
    new_id = db.session.execute(
        text(
            "INSERT INTO message (room_id, author_id, body, kind, created_at) "
            "VALUES (1, 1, :body, :kind, CURRENT_TIMESTAMP) RETURNING id"
        ),
        {"body": body, "kind": kind},
    ).scalar_one()
    db.session.commit()
    return new_id


def indexed_ids(phrase: str) -> list[int]:
    """What the search index finds for a phrase of three characters or more."""
    if db.engine.dialect.name == "sqlite":
        sql = "SELECT rowid FROM message_fts WHERE message_fts MATCH :q ORDER BY rowid"
        return db.session.execute(text(sql), {"q": f'"{phrase}"'}).scalars().all()
    sql = "SELECT id FROM message WHERE body ILIKE :q ORDER BY id"
    return db.session.execute(text(sql), {"q": f"%{phrase}%"}).scalars().all()


def test_the_search_revision_indexes_messages_already_there_and_downgrades(fresh_app):
    upgrade(revision="c8e2f4a6b1d3")  # the revision before the search index
    old = add_message("我们的数据库又挂了")
    upgrade()
    assert indexed_ids("数据库") == [old]
    if db.engine.dialect.name == "sqlite":
        triggers = db.session.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
        assert SEARCH_TRIGGERS | GRAMS_TRIGGERS <= set(triggers)
    else:
        [definition] = db.session.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_message_body_trgm'")
        ).scalars()
        assert "gin (body gin_trgm_ops)" in definition
    db.session.commit()
    downgrade(revision="c8e2f4a6b1d3")
    names = set(inspect(db.engine).get_table_names())
    assert not names & (FTS_TABLES | GRAMS_TABLES) and {"user", "room", "message", "membership"} <= names
    assert "ix_message_body_trgm" not in {i["name"] for i in inspect(db.engine).get_indexes("message")}
    db.session.execute(text("UPDATE message SET body = 'no index here' WHERE id = :id"), {"id": old})  # no trigger
    db.session.commit()
    upgrade()
    assert indexed_ids("index here") == [old] and indexed_ids("数据库") == []


def test_the_index_follows_inserts_updates_and_deletes_in_the_same_transaction(fresh_app):
    """At the head revision (whatever later revisions did to the message table)."""
    upgrade()
    first, second = add_message("我们的数据库又挂了"), add_message("Deploy the DATABASE")
    assert indexed_ids("数据库") == [first] and indexed_ids("database") == [second]
    assert grams_ids("数据") == [first] and grams_ids("dA") == [second] and grams_ids("库") == [first]
    db.session.execute(text("UPDATE message SET body = '会议改到明天' WHERE id = :id"), {"id": first})
    assert indexed_ids("数据库") == [] and indexed_ids("会议改") == [first]  # before the commit: same transaction
    assert grams_ids("数据") == [] and grams_ids("会议") == [first]
    db.session.rollback()
    assert indexed_ids("数据库") == [first] and indexed_ids("会议改") == []  # undone with it
    assert grams_ids("数据") == [first] and grams_ids("会议") == []
    db.session.execute(text("DELETE FROM message WHERE id = :id"), {"id": second})
    db.session.commit()
    assert indexed_ids("database") == [] and grams_ids("da") == [] and grams_ids("e") == []
    if db.engine.dialect.name == "sqlite":  # the index agrees with the table, row for row
        db.session.execute(text("INSERT INTO message_fts (message_fts) VALUES ('integrity-check')"))
        assert grams_table() == expected_grams()


def grams_ids(piece: str) -> list[int]:
    """What the index of one- and two-character pieces finds for a piece."""
    if db.engine.dialect.name == "sqlite":
        sql = "SELECT rowid FROM message_grams WHERE message_grams MATCH :q ORDER BY rowid"
        return db.session.execute(text(sql), {"q": gram_term(piece)}).scalars().all()
    sql = "SELECT id FROM message WHERE webchat_grams(body) @> ARRAY[lower(:q)] ORDER BY id"
    return db.session.execute(text(sql), {"q": piece}).scalars().all()


def grams_table() -> dict[str, list[int]]:
    """SQLite: the whole index of pieces, read back through fts5vocab (term -> rowids)."""
    db.session.execute(
        text("CREATE VIRTUAL TABLE IF NOT EXISTS temp.grams_vocab USING fts5vocab(main, message_grams, 'instance')")
    )
    rows = db.session.execute(text("SELECT term, doc FROM temp.grams_vocab ORDER BY term, doc")).all()
    table: dict[str, list[int]] = {}
    for term, doc in rows:
        table.setdefault(term, []).append(doc)
    return table


def expected_grams() -> dict[str, list[int]]:
    """What the index should hold for the messages in the table now."""
    table: dict[str, list[int]] = {}
    for id_, body in db.session.execute(text("SELECT id, body FROM message ORDER BY id")).all():
        for term in grams(body).split():
            table.setdefault(term, []).append(id_)
    return {term: table[term] for term in sorted(table)}


def test_the_short_text_revision_indexes_messages_already_there_and_downgrades(fresh_app):
    upgrade(revision=BEFORE_GRAMS)
    old, english = add_message("我们的数据库又挂了"), add_message("Deploy the DATABASE")
    upgrade()
    assert (
        grams_ids("数据") == [old]
        and grams_ids("挂") == [old]
        and grams_ids("DA") == [english]
        and grams_ids("db") == []
    )
    assert grams_ids("熔断") == [] and grams_ids(" d") == []  # pieces with a space are not kept
    sqlite = db.engine.dialect.name == "sqlite"
    if sqlite:
        triggers = db.session.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
        assert GRAMS_TRIGGERS <= set(triggers)
        assert grams_table() == expected_grams()
    else:
        [definition] = db.session.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_message_grams'")
        ).scalars()
        assert "gin (webchat_grams(body))" in definition
    db.session.commit()
    downgrade(revision=BEFORE_GRAMS)
    assert not set(inspect(db.engine).get_table_names()) & GRAMS_TABLES
    assert "ix_message_grams" not in {i["name"] for i in inspect(db.engine).get_indexes("message")}
    if sqlite:
        triggers = set(db.session.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars())
        assert not GRAMS_TRIGGERS & triggers and SEARCH_TRIGGERS <= triggers
    else:
        function = "SELECT count(*) FROM pg_proc WHERE proname = 'webchat_grams'"
        assert db.session.execute(text(function)).scalar_one() == 0
    db.session.execute(text("UPDATE message SET body = '会议改到明天' WHERE id = :id"), {"id": old})  # no trigger
    db.session.commit()
    upgrade()
    assert grams_ids("会议") == [old] and grams_ids("数据") == [] and grams_ids("de") == [english]
    if sqlite:
        assert grams_table() == expected_grams()


def test_replies_and_changes_are_found_through_partial_indexes(fresh_app):
    """Only messages that answer one, or that changed, are in these indexes (c7e5a2d9f1b3);
    the queries that use them still find them there."""
    upgrade()
    engine = db.engine
    queries = {
        "ix_message_room_id_changed_seq": "SELECT id FROM message WHERE room_id = 1 AND changed_seq > 5",
        "ix_message_reply_to_id": "SELECT id FROM message WHERE reply_to_id = 3 AND deleted_at IS NULL",
    }
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: make the planner show its index
            explain = "EXPLAIN "
        else:
            explain = "EXPLAIN QUERY PLAN "
        for index, query in queries.items():
            plan = " ".join(str(row) for row in conn.execute(text(explain + query)))
            assert index in plan, plan
        if engine.dialect.name == "postgresql":
            found = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname = ANY(:names)"
        else:
            found = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN :names"
        statement = text(found).bindparams(bindparam("names", expanding=engine.dialect.name == "sqlite"))
        definitions = dict(conn.execute(statement, {"names": list(queries)}).all())
    for index, column in (("ix_message_room_id_changed_seq", "changed_seq"), ("ix_message_reply_to_id", "reply_to_id")):
        assert f"WHERE {column} IS NOT NULL" in definitions[index].replace("(", "").replace(")", "")
