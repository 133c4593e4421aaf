"""Messages that change: edits, deletions and reactions.

Each change runs like a new message (rooms/service.py): check, write, COMMIT, then
publish an event (webchat/live/events.py, kind "change") that every process renders
once per view into an out-of-band replacement of that one message.

Every change takes the room's next change number first (``UPDATE room SET
change_seq = change_seq + 1``): the row lock it takes puts a room's changes in one
order, so what a change reads afterwards (the message, its reactions) includes every
change committed before it. The message gets that number (``changed_seq``), and so
do the replies quoting it when its text changes: a socket that reconnects with the
number its page was rendered at is sent every message changed since (live/views.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value

from ..extensions import db
from ..live import broker, events
from ..models import Message, Reaction, Room, User, utcnow
from . import history, membership, mentions, service

# The reactions on offer. Anything else is refused (400).
PALETTE = ("👍", "❤️", "😂", "😮", "😢", "🎉", "👀")
NAMES_SHOWN = 12  # a chip's tooltip names this many people, then "and N others"


class NoSuchMessage(LookupError):
    """Not a message of this room, or deleted: a 404."""


class NotAllowed(PermissionError):
    """Not this person's to change (someone else's, or a system message): a 403."""


@cache
def _statements():
    """Built once, with bound parameters: building a statement costs more than running it."""
    room, message, reaction = Room.__table__, Message.__table__, Reaction.__table__
    this = message.c.id == bindparam("mid")
    return {
        "next_seq": update(room)
        .where(room.c.id == bindparam("room"))
        .values(change_seq=room.c.change_seq + 1)
        .returning(room.c.change_seq),
        "edit": update(message)
        .where(this)
        .values(
            body=bindparam("text"), edited_at=bindparam("at"), changed_seq=bindparam("seq"), mentions=bindparam("names")
        ),
        "delete": update(message)
        .where(this)
        .values(body="", deleted_at=bindparam("at"), reactions=None, changed_seq=bindparam("seq")),
        # Replies quote the start of a message: they change with it.
        "stamp_replies": update(message)
        .where(message.c.reply_to_id == bindparam("mid"), message.c.deleted_at.is_(None))
        .values(changed_seq=bindparam("seq")),
        "unreact": delete(reaction).where(
            reaction.c.message_id == bindparam("mid"),
            reaction.c.user_id == bindparam("uid"),
            reaction.c.emoji == bindparam("emoji"),
        ),
        "react": insert(reaction),
        "drop_reactions": delete(reaction).where(reaction.c.message_id == bindparam("mid")),
        "reactions": select(reaction.c.emoji, User.id, User.username)
        .join(User, User.id == reaction.c.user_id)
        .where(reaction.c.message_id == bindparam("mid"))
        .order_by(reaction.c.id),
        "set_reactions": update(message)
        .where(this)
        .values(reactions=bindparam("summary"), changed_seq=bindparam("seq")),
    }


def find(room: Room, message_id: int) -> Message:
    """A message of the room that is still there (NoSuchMessage otherwise)."""
    message = history.message_in_room(room.id, message_id)
    if message is None or message.deleted_at is not None:
        raise NoSuchMessage(message_id)
    return message


def may_edit(message: Message, user: User) -> bool:
    return not message.is_system and message.author_id == user.id


def may_delete(room: Room, message: Message, user: User) -> bool:
    """The author, and the room's owner and admins (not in a direct conversation)."""
    return not message.is_system and (message.author_id == user.id or membership.can_manage(room, user))


def _begin(room: Room, message_id: int) -> tuple[int, Message]:
    """Take the room's next change number (and with it the room's row lock), then read
    the message as it is now."""
    seq = db.session.execute(_statements()["next_seq"], {"room": room.id}).scalar_one_or_none()
    message = history.message_in_room(room.id, message_id) if seq is not None else None
    if message is None or message.deleted_at is not None:
        db.session.rollback()
        raise NoSuchMessage(message_id)
    return seq, message


def _refuse() -> None:
    db.session.rollback()  # nothing changed, not even the room's number
    raise NotAllowed


def _stamp_replies(room: Room, message_id: int, seq: int) -> bool:
    """The replies quoting a message whose text changed change too; True if there are any."""
    set_committed_value(room, "change_seq", seq)  # what the database now holds
    return db.session.execute(_statements()["stamp_replies"], {"mid": message_id, "seq": seq}).rowcount > 0


def _publish(room: Room, message_id: int, state: events.PushedMessage | None, quoted: bool = False) -> None:
    broker.get().publish(room.id, events.change_event(message_id, state, quoted))


def edit_message(room: Room, user: User, message_id: int, text: object) -> events.PushedMessage:
    """The author rewrites their message (validated like a new one); it says "edited"."""
    body = service.clean_text(text)
    service.check_rate(user)
    seq, message = _begin(room, message_id)
    if not may_edit(message, user):
        _refuse()
    now = utcnow()
    # Mentions follow the new text: names added are mentioned, names removed no longer.
    mentioned = mentions.mentioned_in(room, user, body)
    stored = mentioned.stored if mentioned else None
    values = {"mid": message_id, "text": body, "at": now, "seq": seq, "names": stored}
    db.session.execute(_statements()["edit"], values)
    if message.mentions or mentioned:  # rows to drop or to write: a plain edit costs nothing more
        mentions.store(room.id, message_id, mentioned, replace=True)
    quoted = _stamp_replies(room, message_id, seq)
    state = events.snapshot(message, body=body, edited_at=now, mentions=stored)
    db.session.commit()
    _publish(room, message_id, state, quoted)
    return state


def delete_message(room: Room, user: User, message_id: int) -> None:
    """Gone for everyone: the row stays for its replies ("the original was deleted"),
    its text and reactions do not."""
    seq, message = _begin(room, message_id)
    if not may_delete(room, message, user):
        _refuse()
    q = _statements()
    db.session.execute(q["delete"], {"mid": message_id, "at": utcnow(), "seq": seq})
    db.session.execute(q["drop_reactions"], {"mid": message_id})
    quoted = _stamp_replies(room, message_id, seq)
    db.session.commit()
    _publish(room, message_id, None, quoted)


def toggle_reaction(room: Room, user: User, message_id: int, emoji: str) -> events.PushedMessage:
    """Add the reader's ``emoji`` to the message, or take it back."""
    if emoji not in PALETTE:
        raise ValueError(emoji)
    service.check_rate(user, "react", factor=3)
    seq, message = _begin(room, message_id)
    if message.is_system:
        _refuse()
    q = _statements()
    params = {"mid": message_id, "uid": user.id, "emoji": emoji}
    if not db.session.execute(q["unreact"], params).rowcount:
        db.session.execute(
            q["react"], {"message_id": message_id, "user_id": user.id, "emoji": emoji, "created_at": utcnow()}
        )
    summary = reaction_summary(db.session.execute(q["reactions"], {"mid": message_id}))
    db.session.execute(q["set_reactions"], {"mid": message_id, "summary": summary, "seq": seq})
    set_committed_value(room, "change_seq", seq)
    state = events.snapshot(message, reactions=summary)
    db.session.commit()
    _publish(room, message_id, state)
    return state


def reaction_summary(rows) -> str | None:
    """Message.reactions from (emoji, user id, username) rows in the order people reacted:
    [[emoji, [[id, name], ...]], ...] in palette order, or None for no reactions."""
    people: dict[str, list] = {}
    for emoji, user_id, username in rows:
        people.setdefault(emoji, []).append([user_id, username])
    groups = [[e, people[e]] for e in PALETTE if e in people]
    return json.dumps(groups, ensure_ascii=False, separators=(",", ":")) if groups else None


@dataclass(frozen=True)
class ReactionGroup:
    """One chip under a message: an emoji, how many, and who (ids for the page's CSS)."""

    emoji: str
    count: int
    by: str  # "3 7": the reader's own is marked by the rule .reaction[data-by~="<id>"]
    names: tuple[str, ...]  # the first NAMES_SHOWN of them
    others: int  # how many more


def reaction_groups(summary: str | None) -> list[ReactionGroup]:
    if not summary:
        return []
    return [
        ReactionGroup(
            emoji,
            len(people),
            " ".join(str(uid) for uid, _ in people),
            tuple(name for _, name in people[:NAMES_SHOWN]),
            max(0, len(people) - NAMES_SHOWN),
        )
        for emoji, people in json.loads(summary)
    ]
