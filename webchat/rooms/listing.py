"""The room list: every room with its members, newest message and the reader's unread count.

One statement for any number of rooms, reading plain columns (no ORM objects to
build for fifty rooms, their owners, last messages and those messages' authors).
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import NamedTuple

from flask import get_template_attribute
from markupsafe import Markup
from sqlalchemy import bindparam, false, func, or_, select
from sqlalchemy.orm import aliased

from .. import fragments
from ..extensions import db
from ..models import Membership, Mention, Message, Room, User, direct_title

PREVIEW_CHARS = 200  # the list shows 80; read a little more, never a 4,000-character body


class Preview(NamedTuple):
    kind: str
    event: str | None
    body: str
    author: str
    created_at: datetime
    deleted: bool = False  # its text is gone: the list says so

    @property
    def is_system(self) -> bool:
        return self.kind == Message.SYSTEM


class RoomSummary(NamedTuple):
    room_id: int
    name: str  # for the URL
    title: str  # what this reader calls it: a direct conversation is named after the other person
    direct: bool
    private: bool
    owner: str
    members: int
    last_message: Preview | None
    unread: int | None  # others' messages since the reader last saw the room; None: not a member
    mentions: int = 0  # of those, the ones that mention the reader


@cache
def _query():
    """Built once: constructing this statement costs several times more than running it."""
    reader_id = bindparam("reader_id")
    members = select(Membership.room_id, func.count(Membership.id).label("n")).group_by(Membership.room_id).subquery()
    mine = select(Membership).where(Membership.user_id == reader_id).subquery()
    unread = (
        select(func.count(Message.id))
        .where(
            Message.room_id == Room.id,
            Message.id > func.coalesce(mine.c.last_read_message_id, 0),
            Message.kind == Message.USER,
            Message.author_id != reader_id,
            Message.deleted_at.is_(None),
        )
        .correlate(Room, mine)
        .scalar_subquery()
    )
    mentioned = (
        select(func.count(Mention.id))
        .where(
            Mention.user_id == reader_id,
            Mention.room_id == Room.id,
            Mention.message_id > func.coalesce(mine.c.last_read_message_id, 0),
        )
        .correlate(Room, mine)
        .scalar_subquery()
    )
    owner, last, author = aliased(User), aliased(Message), aliased(User)
    return (
        select(
            Room.id,
            Room.name,
            Room.kind,
            Room.private,
            owner.username,
            func.coalesce(members.c.n, 0),
            mine.c.id,
            unread,
            mentioned,
            last.id,
            last.kind,
            last.event,
            func.substr(last.body, 1, PREVIEW_CHARS),
            author.username,
            last.created_at,
            last.deleted_at.is_not(None),
        )
        .join(owner, owner.id == Room.owner_id)
        .outerjoin(members, members.c.room_id == Room.id)
        .outerjoin(mine, mine.c.room_id == Room.id)
        .outerjoin(last, last.id == Room.last_message_id)
        .outerjoin(author, author.id == last.author_id)
        # A private room (a direct conversation too) exists only for its members.
        .where(or_(Room.private == false(), mine.c.id.is_not(None)))
        .order_by(Room.last_activity_at.desc(), Room.id.desc())
    )


def room_list(reader_id: int, reader_name: str) -> list[RoomSummary]:
    return [
        RoomSummary(
            room_id,
            name,
            direct_title(name, reader_name) if kind == Room.DIRECT else name,
            kind == Room.DIRECT,
            private,
            owner_name,
            n,
            Preview(last_kind, event, body, author_name, at, bool(deleted)) if last_id is not None else None,
            count if member_id is not None else None,
            mention_count if member_id is not None else 0,
        )
        for (
            room_id,
            name,
            kind,
            private,
            owner_name,
            n,
            member_id,
            count,
            mention_count,
            last_id,
            last_kind,
            event,
            body,
            author_name,
            at,
            deleted,
            # Plain columns, on the session's connection: through Session.execute the ORM
            # would process each of these rows as if it could hold entities.
        ) in db.session.connection().execute(_query(), {"reader_id": reader_id})
    ]


def rendered_items(rooms: list[RoomSummary], view: tuple) -> list[Markup]:
    """Each entry's HTML for this view, rendered only when that entry or view is new.

    The key is the summary itself: everything an entry shows, the last message's text
    and whether it was deleted included, so a change to it changes the key."""
    room_item = get_template_attribute("rooms/_room_item.html", "room_item")
    zone = view[1]
    keep = fragments.cache()
    return [keep.get_or_render(("room-item", s, view), lambda s=s: room_item(s, zone)) for s in rooms]
