"""The rules of rooms and messages. Views and the WebSocket both call these.

``post_message`` is the one way a message enters the system: validate, store and
commit (the database is the truth), then publish it as an event, which every process
renders once per view of its sockets (webchat/live/push.py).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import NamedTuple

from flask import current_app
from flask_babel import gettext, ngettext
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from ..extensions import db
from ..live import broker, events
from ..models import MAX_ID, Membership, Message, Quote, Room, User, utcnow
from ..prepared import Prepared
from . import history, mentions

ROOM_NAME_MAX = 50
# Room names live in URLs: any letters (Chinese included), digits, spaces and most
# punctuation, but no path or query delimiters and no control characters.
ROOM_NAME_FORBIDDEN = re.compile(r"[/\\?#%<>\"]")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class InvalidInput(ValueError):
    """A rule was broken; the message is shown next to the input it names."""

    def __init__(self, message: str, field: str = "message") -> None:
        super().__init__(message)
        self.field = field


class RateLimited(InvalidInput):
    pass


def room_key(name: str) -> str:
    return unicodedata.normalize("NFC", name.strip()).casefold()


def check_room_name(name: str) -> None:
    if not name:
        raise InvalidInput(gettext("Give the room a name."), "name")
    if len(name) > ROOM_NAME_MAX:
        raise InvalidInput(
            ngettext("Use at most %(num)d character.", "Use at most %(num)d characters.", ROOM_NAME_MAX), "name"
        )
    if len(room_key(name)) > ROOM_NAME_MAX:  # the key must fit its column: 'ß' folds to 'ss'
        raise InvalidInput(gettext("That name is too long once letter case is ignored; use a shorter one."), "name")
    if ROOM_NAME_FORBIDDEN.search(name) or CONTROL_CHARS.search(name) or "\n" in name or "\t" in name:
        raise InvalidInput(gettext('A room name cannot contain / \\ ? # % < > or ".'), "name")
    if not any(ch.isalnum() for ch in name):
        raise InvalidInput(gettext("Use at least one letter or digit."), "name")
    if name.startswith("@"):  # direct conversations are named "@<one>+<other>"
        raise InvalidInput(gettext("A room name cannot start with @."), "name")
    if find_room(name) is not None:
        raise InvalidInput(gettext("A room with that name exists already."), "name")


def find_room(name: str) -> Room | None:
    return db.session.execute(select(Room).filter_by(name_key=room_key(name))).scalar_one_or_none()


def room_by_id(room_id: int) -> Room | None:
    return db.session.get(Room, room_id)


def create_room(name: str, owner: User, private: bool = False) -> Room:
    check_room_name(name)
    room = Room(name=name, name_key=room_key(name), owner_id=owner.id, private=private)
    db.session.add(room)
    try:
        db.session.flush()
    except IntegrityError:  # created by someone else since the check
        db.session.rollback()
        raise InvalidInput(gettext("A room with that name exists already."), "name") from None
    mine = Membership(user_id=owner.id, room_id=room.id)
    db.session.add(mine)
    _store_and_publish(room, owner, "", Message.SYSTEM, Message.CREATED, seen_by=mine)
    return room


class Joined(NamedTuple):
    """What a page needs of the reader's membership of a room: that it exists, and how
    far they have read."""

    id: int
    last_read_message_id: int | None


ROOM_KEYS = tuple(c.key for c in Room.__table__.c)  # Room's attributes are named as its columns


@cache
def _room_for_query() -> Prepared:
    # Every room page, post and socket runs it: straight on the cursor (webchat/prepared.py).
    return Prepared(
        select(*Room.__table__.c, Membership.id, Membership.last_read_message_id)
        .outerjoin(Membership, (Membership.room_id == Room.id) & (Membership.user_id == bindparam("user_id")))
        .where(Room.name_key == bindparam("key"))
    )


def _attached_room(values: tuple) -> Room:
    """The Room of a row read by a prepared statement, in the session as the ORM would
    have loaded it (changes to it flush, it can be deleted), without the ORM's loading
    machinery, which cost more than the query."""
    key = identity_key(Room, values[0])
    room = db.session.identity_map.get(key)
    if room is None:
        room = Room.__mapper__.class_manager.new_instance()
        room.__dict__.update(zip(ROOM_KEYS, values, strict=True))
        make_transient_to_detached(room)
        db.session.add(room)
    return room


# The columns a new message is written with (any other stays NULL), and the bound
# names they take in the prepared INSERT (SQLAlchemy reserves the columns' own).
NEW_MESSAGE = ("room_id", "author_id", "body", "kind", "event", "created_at", "reply_to_id", "mentions")


@cache
def _write_statements() -> tuple[Prepared, Prepared]:
    # On the path of every message: straight on the cursor (webchat/prepared.py).
    table = Message.__table__
    return (
        Prepared(insert(table).values({c: bindparam(f"new_{c}") for c in NEW_MESSAGE}).returning(table.c.id)),
        Prepared(
            update(Room.__table__)
            .where(Room.__table__.c.id == bindparam("room"))
            .values(last_activity_at=bindparam("at"), last_message_id=bindparam("message"))
        ),
    )


@cache
def _previous_query() -> Prepared:
    # What grouping needs of the message before a new one (no full row, no author join):
    # the room's newest that is still shown (walking the (room_id, id) index backwards).
    return Prepared(
        select(Message.author_id, Message.kind, Message.created_at)
        .where(Message.room_id == bindparam("room"), Message.deleted_at.is_(None))
        .order_by(Message.id.desc())
        .limit(1)
    )


def room_for(name: str, user_id: int) -> tuple[Room | None, Joined | None]:
    """The room and the user's membership in it, in one query (every room page, post
    and socket). A private room the user is not in does not exist for them: (None, None),
    the same answer as a name nobody uses, so a 404 never confirms that it exists."""
    row = _room_for_query().first(db.session.connection(), {"user_id": user_id, "key": room_key(name)})
    if row is None:
        return None, None
    values, (membership_id, last_read) = row[: len(ROOM_KEYS)], row[len(ROOM_KEYS) :]
    mine = Joined(membership_id, last_read) if membership_id is not None else None
    if values[ROOM_KEYS.index("private")] and mine is None:
        return None, None
    return _attached_room(values), mine


def membership(room_id: int, user_id: int) -> Membership | None:
    return db.session.execute(select(Membership).filter_by(room_id=room_id, user_id=user_id)).scalar_one_or_none()


def is_member(room_id: int, user_id: int) -> bool:
    return db.session.execute(select(Membership.id).filter_by(room_id=room_id, user_id=user_id)).first() is not None


def enter_room(room: Room, user: User) -> Membership:
    """The user's membership; the first time, they join and the room hears about it."""
    mine = membership(room.id, user.id)
    if mine is not None:
        return mine
    mine = Membership(user_id=user.id, room_id=room.id)
    db.session.add(mine)
    try:
        db.session.flush()
    except IntegrityError:  # another tab of the same user got there first
        db.session.rollback()
        return membership(room.id, user.id)
    _store_and_publish(room, user, "", Message.SYSTEM, Message.JOINED, seen_by=mine)
    return mine


def store_system(room: Room, actor: User, event: str, about: str = "") -> events.PushedMessage:
    """A system message: what happened (``event``), by whom, and whom or what it names."""
    return _store_and_publish(room, actor, about, Message.SYSTEM, event)


def clean_text(text: object) -> str:
    if not isinstance(text, str):
        raise InvalidInput(gettext("Type a message."))
    text = CONTROL_CHARS.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).strip()
    limit = current_app.config["MESSAGE_MAX_CHARS"]
    if not text:
        raise InvalidInput(gettext("Type a message before sending."))
    if len(text) > limit:
        raise InvalidInput(
            ngettext(
                "Messages can be at most %(num)d character; this one has %(length)d.",
                "Messages can be at most %(num)d characters; this one has %(length)d.",
                limit,
                length=len(text),
            )
        )
    return text


def message_id_value(value: object) -> int | None:
    """A message id as a form or a socket frame carries it: ASCII digits (str.isdigit()
    also accepts '²' or '١'), short enough for the column; None when not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 10:
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def reply_target(room: Room, message_id: int) -> Message:
    """The message a reply to ``message_id`` answers; InvalidInput unless it is a message
    of this room that someone wrote and nobody deleted."""
    message = history.message_in_room(room.id, message_id)
    if message is None or message.is_system:
        raise InvalidInput(gettext("You can only reply to a message of this room."))
    if message.deleted_at is not None:
        raise InvalidInput(gettext("That message was deleted, so it cannot be replied to."))
    return message


def quote_of(message: Message) -> Quote:
    return Quote.of(message.id, message.author_name, message.body, False)


def parse_reply_to(room: Room, value: object) -> Quote | None:
    """The optional ``reply_to`` of the composer (a form field, a socket frame's field)."""
    if value is None or value == "":
        return None
    message_id = message_id_value(value)
    if message_id is None:
        raise InvalidInput(gettext("You can only reply to a message of this room."))
    return quote_of(reply_target(room, message_id))


def check_rate(user: User, what: str = "rate", factor: int = 1) -> None:
    """At most RATE_LIMIT_COUNT messages (edits count as messages) per window, per user;
    ``factor`` times as many for cheaper actions (reactions)."""
    cfg = current_app.config
    if not broker.get().allow(f"{what}:{user.id}", cfg["RATE_LIMIT_COUNT"] * factor, cfg["RATE_LIMIT_WINDOW"]):
        raise RateLimited(
            ngettext(
                "You are sending too fast: at most %(num)d message every %(seconds)s seconds. "
                "Wait a moment and send again.",
                "You are sending too fast: at most %(num)d messages every %(seconds)s seconds. "
                "Wait a moment and send again.",
                cfg["RATE_LIMIT_COUNT"],
                seconds=format(cfg["RATE_LIMIT_WINDOW"], "g"),
            )
        )


def post_message(room: Room, user: User, text: object, reply_to: object = None) -> events.PushedMessage:
    """Validate, store, commit, then publish the message to the room.

    ``reply_to``: the id of the message this one answers (same room, not deleted)."""
    body = clean_text(text)
    quote = parse_reply_to(room, reply_to)
    check_rate(user)
    return _store_and_publish(room, user, body, Message.USER, quote=quote)


def _store_and_publish(
    room: Room,
    author: User,
    body: str,
    kind: str,
    event: str | None = None,
    seen_by: Membership | None = None,
    quote: Quote | None = None,
) -> events.PushedMessage:
    """One commit: the message, the room's activity and, for a joining member
    (``seen_by``), the read marker at their own join message. Then render once and publish.

    Its statements are prepared (webchat/prepared.py), not the ORM's unit of work: on the
    path of every message, the bookkeeping cost more than the INSERT itself.
    """
    # The previous message decides grouping under one name and the day's heading; the
    # event carries it, so delivery reads nothing from the database.
    conn = db.session.connection()
    row = _previous_query().first(conn, {"room": room.id}) if room.last_message_id else None
    previous = events.Previous(*row) if row else None
    insert_message, touch_room = _write_statements()
    now = utcnow()
    mentioned = mentions.mentioned_in(room, author, body) if kind == Message.USER else None
    values = {
        "room_id": room.id,
        "author_id": author.id,
        "body": body,
        "kind": kind,
        "event": event,
        "created_at": now,
        "reply_to_id": quote.id if quote else None,
        "mentions": mentioned.stored if mentioned else None,
    }
    message_id = insert_message.first(conn, {f"new_{c}": v for c, v in values.items()})[0]
    if mentioned:
        mentions.store(room.id, message_id, mentioned)
    touch_room.run(conn, {"room": room.id, "at": now, "message": message_id})
    # The row in this session says what the database now holds, without a flush of its own.
    set_committed_value(room, "last_activity_at", now)
    set_committed_value(room, "last_message_id", message_id)
    if seen_by is not None:
        seen_by.last_read_message_id = message_id
    db.session.commit()
    # What was stored, as the macro reads it: a plain record, not an ORM object (whose
    # instrumented construction cost more than the INSERT).
    message = events.PushedMessage(
        message_id, author.id, author.username, body, kind, event, now, quote=quote, mentions=values["mentions"]
    )
    # Published as an event: each process renders it once per view of its sockets.
    broker.get().publish(room.id, events.message_event(message, previous), message_id=message_id)
    return message


def mark_read(room_id: int, user_id: int, message_id: int) -> None:
    """The reader has seen the room up to ``message_id`` (never moves backwards).

    Callers write only when the marker moves (they know where it stands), so a read
    that shows nothing new writes nothing.
    """
    if not message_id:
        return
    db.session.execute(
        update(Membership)
        .where(
            Membership.room_id == room_id,
            Membership.user_id == user_id,
            func.coalesce(Membership.last_read_message_id, 0) < message_id,
        )
        .values(last_read_message_id=message_id)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
