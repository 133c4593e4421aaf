"""The tables: who, where, what was said, who belongs where, who reacted how; sessions and invites."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from .extensions import db

# Ids are 32-bit integers on PostgreSQL: a larger one from a URL or a frame is invalid
# input (a 400 or an error next to the field), never a query that fails.
MAX_ID = 2**31 - 1


def utcnow() -> datetime:
    """Naive UTC: SQLite keeps no zone, so every timestamp is UTC by convention."""
    return datetime.now(UTC).replace(tzinfo=None)


def direct_title(name: str, reader: str) -> str:
    names = name[1:].split("+")
    return next((n for n in names if n != reader), reader)


class User(UserMixin, db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    # casefolded username: uniqueness and login ignore case
    username_key: Mapped[str] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # IANA zone name for showing times (history pages); None means UTC.
    time_zone: Mapped[str | None] = mapped_column(String(64))
    # "en" or "zh_Hans"; None follows the browser's Accept-Language.
    language: Mapped[str | None] = mapped_column(String(16))
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # Set while an admin has deactivated the account: no login, no session, no socket.
    # Indexed: room pages list the deactivated authors (their names are marked).
    deactivated_at: Mapped[datetime | None] = mapped_column(index=True)

    @property
    def is_active(self) -> bool:  # Flask-Login: an inactive user cannot log in
        return self.deactivated_at is None

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return check_password_hash(self.password_hash, password)


class Room(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    name_key: Mapped[str] = mapped_column(String(80), unique=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Denormalised so the room list sorts by activity without scanning messages.
    # No foreign key: room and message would reference each other, which needs an
    # ALTER that SQLite cannot do; messages are only ever deleted with their room.
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    last_message_id: Mapped[int | None] = mapped_column()
    # A private room exists only for its members: anyone else gets a 404 everywhere.
    private: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # "room", or "direct": the conversation of two people (always private; its name_key
    # is "dm/<lower id>/<higher id>", which no room name can be: "/" is not allowed).
    kind: Mapped[str] = mapped_column(String(10), default="room", server_default="room")
    # Counts the changes to the room's messages (edits, deletions, reactions): each one
    # takes the next number, in the same transaction, and stamps it on the message
    # (Message.changed_seq). A page knows the number it was rendered at; a socket's
    # catch-up sends what changed since. Taking it also serialises a room's changes.
    change_seq: Mapped[int] = mapped_column(default=0, server_default="0")

    # Loaded only if asked for: every room lookup (each page, post and socket) used to
    # join the owner's row for nothing; lists that show owners select their names.
    owner: Mapped[User] = relationship()

    ROOM = "room"
    DIRECT = "direct"

    @property
    def is_direct(self) -> bool:
        return self.kind == self.DIRECT

    def title_for(self, reader: str) -> str:
        """What a reader calls the room: a direct conversation is named after the other
        person (its name is "@<one>+<other>"; "+" is in no username, "@" starts no room)."""
        if not self.is_direct:
            return self.name
        return direct_title(self.name, reader)


class Message(db.Model):
    USER = "user"
    SYSTEM = "system"
    # System events; ``body`` holds what the event names (the other person, the new name).
    CREATED = "created"
    JOINED = "joined"
    ADDED = "added"
    LEFT = "left"
    REMOVED = "removed"
    RENAMED = "renamed"

    id: Mapped[int] = mapped_column(primary_key=True)
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(10), default=USER)
    # What a system message says happened ("created", "joined"...), by its author:
    # rendered in each reader's language, never stored as a sentence.
    event: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The message this one answers (same room). No foreign key, like room.last_message_id:
    # a message row is never removed but with its room, and a missing one reads as deleted.
    reply_to_id: Mapped[int | None] = mapped_column()
    edited_at: Mapped[datetime | None] = mapped_column()
    # Soft delete: the row stays (replies say "the original was deleted"), its text goes.
    deleted_at: Mapped[datetime | None] = mapped_column()
    # The room's change_seq of the latest edit, deletion or reaction (None: never changed).
    changed_seq: Mapped[int | None] = mapped_column()
    # Who reacted how, as JSON: [[emoji, [[user id, username], ...]], ...] in palette
    # order. Rebuilt from the reaction table with each toggle, in its transaction, so a
    # page of messages reads its reactions with the messages, in the same statement.
    reactions: Mapped[str | None] = mapped_column(Text)
    # Who it @-mentions, "id:name ..." ("*" first for @room): rendering needs no query
    # (webchat/rooms/mentions.py); the Mention rows below serve lists and counts.
    mentions: Mapped[str | None] = mapped_column(Text)

    author: Mapped[User] = relationship(lazy="joined")

    # "newest in a room" and keyset paging both walk (room_id, id); a socket's catch-up
    # reads a room's changes since a number by (room_id, changed_seq). Replies and
    # changes are indexed only where there are some: most messages have neither, and
    # a NULL key cost every new message a page write (migration c7e5a2d9f1b3).
    __table_args__ = (
        Index("ix_message_room_id_id", "room_id", "id"),
        Index(
            "ix_message_room_id_changed_seq",
            "room_id",
            "changed_seq",
            sqlite_where=text("changed_seq IS NOT NULL"),
            postgresql_where=text("changed_seq IS NOT NULL"),
        ),
        Index(
            "ix_message_reply_to_id",
            "reply_to_id",
            sqlite_where=text("reply_to_id IS NOT NULL"),
            postgresql_where=text("reply_to_id IS NOT NULL"),
        ),
    )

    # What a reply shows of its original (a Quote), set by the queries that read one.
    quote = None

    @property
    def is_system(self) -> bool:
        return self.kind == self.SYSTEM

    @property
    def author_name(self) -> str:
        return self.author.username


QUOTE_CHARS = 100  # how much of the original a reply shows


@dataclass(frozen=True)
class Quote:
    """What a reply shows of the message it answers: who said it and how it began."""

    id: int
    author: str
    text: str  # "" once the original is deleted
    deleted: bool

    @classmethod
    def of(cls, message_id: int, author: str | None, body: str | None, deleted: bool) -> Quote:
        if author is None or deleted:  # gone (or never was): say so, show nothing of it
            return cls(message_id, "", "", True)
        text = " ".join((body or "").split())
        if len(text) > QUOTE_CHARS:
            text = text[: QUOTE_CHARS - 1].rstrip() + "…"
        return cls(message_id, author, text, False)

    def as_list(self) -> list:
        return [self.id, self.author, self.text, self.deleted]


class Reaction(db.Model):
    """One person's reaction with one emoji to one message (the truth behind Message.reactions)."""

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    emoji: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("message_id", "user_id", "emoji", name="uq_reaction_message_user_emoji"),)


class Mention(db.Model):
    """A message names a person (an @mention): for their mentions page and badges."""

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("message.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"))

    # "mine, newest first" and "mine in this room after my read marker" both walk these.
    __table_args__ = (
        Index("ix_mention_user_id_message_id", "user_id", "message_id"),
        Index("ix_mention_user_id_room_id_message_id", "user_id", "room_id", "message_id"),
    )


class Membership(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"))
    room_id: Mapped[int] = mapped_column(ForeignKey("room.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_read_message_id: Mapped[int | None] = mapped_column()

    __table_args__ = (UniqueConstraint("user_id", "room_id", name="uq_membership_user_room"),)


class UserSession(db.Model):
    """One login: the browser's signed cookie holds ``token`` as ``session["sid"]``.

    Deleting the row ends the session everywhere (a copied cookie included); so do
    SESSION_DAYS without a request, and deactivating the account. The token is
    random and only ever travels inside the signed cookie (or, once its row is
    deleted and it is worthless, in the revocation event that closes its sockets).
    """

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Refreshed at most once a day (webchat/auth/sessions.py), so reads stay write-free.
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    user_agent: Mapped[str | None] = mapped_column(String(120))


class Invite(db.Model):
    """A sign-up link (/join/<code>/), made by an admin: it may expire, allow a
    number of uses, and be revoked."""

    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    max_uses: Mapped[int | None] = mapped_column()  # None: any number
    uses: Mapped[int] = mapped_column(default=0, server_default="0")
    revoked_at: Mapped[datetime | None] = mapped_column()

    created_by: Mapped[User | None] = relationship(lazy="joined")

    def state(self, now: datetime | None = None) -> str:
        now = now or utcnow()
        if self.revoked_at is not None:
            return self.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return self.EXPIRED
        if self.max_uses is not None and self.uses >= self.max_uses:
            return self.USED_UP
        return self.ACTIVE
