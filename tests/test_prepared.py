"""Prepared statements (webchat/prepared.py) store and read values as SQLAlchemy would."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import bindparam, insert, select

from webchat import querylog
from webchat.extensions import db
from webchat.models import Message, Room, User
from webchat.prepared import Prepared


def test_a_prepared_insert_and_select_round_trip_datetimes_like_the_orm(app):
    written = datetime(2026, 12, 2, 9, 30, 15, 123456)  # naive UTC, as every column holds it
    add = Prepared(
        insert(User.__table__)
        .values(username=bindparam("name"), username_key=bindparam("key"), password_hash=bindparam("hash"))
        .values(created_at=bindparam("at"), is_admin=bindparam("admin"))
        .returning(User.__table__.c.id)
    )
    read = Prepared(select(User.username, User.created_at).where(User.id == bindparam("id")).limit(1))
    with app.app_context():
        conn = db.session.connection()
        (user_id,) = add.first(conn, {"name": "Ann", "key": "ann", "hash": "x", "at": written, "admin": False})
        db.session.commit()
        assert read.first(db.session.connection(), {"id": user_id}) == ("Ann", written)
        user = db.session.get(User, user_id)  # the ORM reads what the prepared INSERT wrote
        assert (user.username, user.created_at, user.is_admin) == ("Ann", written, False)
        assert read.first(db.session.connection(), {"id": user_id + 1}) is None


def test_a_prepared_insert_must_give_every_column_with_a_python_default(app):
    # Message.created_at has a Python-side default that only SQLAlchemy's own execution applies.
    partial = Prepared(insert(Message.__table__).values(room_id=bindparam("r"), author_id=bindparam("a")))
    with app.app_context(), pytest.raises(ValueError, match="created_at"):
        partial.run(db.session.connection(), {"r": 1, "a": 1})


def test_prepared_statements_are_counted_by_the_query_log(app, queries):
    read = Prepared(select(Room.id).where(Room.name_key == bindparam("key")))
    with app.app_context(), querylog.unit(app, "probe") as tally:
        assert read.first(db.session.connection(), {"key": "nothing"}) is None
    assert len(tally.statements) == 1
    assert tally.statements[0].startswith("SELECT room.id")


def test_a_room_from_room_for_is_in_the_session_as_if_the_orm_had_loaded_it(app, client):
    """room_for reads the room with a prepared statement and attaches it: changes to it
    flush, and the same room looked up twice in one session is one object."""
    from sqlalchemy import inspect

    from webchat.rooms import service

    from .conftest import create_room, signup

    signup(client)
    create_room(client, "general")
    with app.app_context():
        user_id = db.session.execute(select(User.id)).scalar_one()
        room, mine = service.room_for("General", user_id)
        assert inspect(room).persistent and mine.last_read_message_id == room.last_message_id
        assert service.room_for("general", user_id)[0] is room
        assert db.session.get(Room, room.id) is room
        room.name = "renamed"
        db.session.commit()
    with app.app_context():
        assert db.session.execute(select(Room.name)).scalar_one() == "renamed"
