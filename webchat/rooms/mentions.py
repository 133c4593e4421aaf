"""@mentions: who a message names, decided once when it is stored.

``@username`` (any letters, Chinese included; letter case ignored) mentions that person
if they are a member of the room; ``@room`` mentions every member, but only when the
room's owner or an admin writes it (so nobody can page a whole room at will). What a
message mentions is stored with it — as Mention rows, for the mentions page and the
counts, and as a short "id:name" list on the message, so that rendering (a history
page, a push to every view) needs no query and highlights exactly the stored names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from ..auth.forms import username_key
from ..extensions import db
from ..models import Membership, Mention, Room, User

# After a start, a space or punctuation (not inside an e-mail address); a username's
# characters, then not another one of them.
MENTION_RE = re.compile(r"(?<![\w.@-])@([\w.-]{3,32})(?![\w-])")
ROOM = "room"


def candidates(text: str) -> list[str]:
    """The names a text @-mentions, as keys (casefolded), in order, once each; a
    trailing '.' or '-' belongs to the sentence ("thanks @bob.")."""
    seen: dict[str, None] = {}
    for match in MENTION_RE.finditer(text):
        seen.setdefault(username_key(match.group(1).rstrip(".-")), None)
    return list(seen)


def resolve(room_id: int, author: User, text: str, may_page_room: bool) -> dict[int, str]:
    """user id -> username of the members the text mentions (the author excluded)."""
    keys = candidates(text)
    if not keys:
        return {}
    members = select(User.id, User.username).join(Membership, Membership.user_id == User.id)
    members = members.where(Membership.room_id == room_id, User.id != author.id)
    if not (ROOM in keys and may_page_room):
        members = members.where(User.username_key.in_(keys))
    return {uid: name for uid, name in db.session.execute(members)}


EVERYONE = "*"  # stored first when @room paged the whole room


def encode(mentioned: dict[int, str], everyone: bool = False) -> str | None:
    """The stored form: "3:alice 7:小明", after "*" for @room (names have no spaces,
    colons or asterisks)."""
    parts = [EVERYONE] if everyone else []
    parts += [f"{uid}:{name}" for uid, name in sorted(mentioned.items())]
    return " ".join(parts) or None


def decode(stored: str | None) -> dict[str, int]:
    """username key -> user id, for rendering; "room" -> 0 when @room paged everyone."""
    out = {}
    for part in (stored or "").split():
        if part == EVERYONE:
            out[ROOM] = 0
            continue
        uid, _, name = part.partition(":")
        out[username_key(name)] = int(uid)
    return out


def ids_attribute(stored: str | None) -> str:
    """For data-mentions="…": the page's CSS matches the reader's id with ~=."""
    return " ".join(part.partition(":")[0] for part in (stored or "").split() if part != EVERYONE)


@dataclass(frozen=True)
class Mentioned:
    users: dict[int, str]  # user id -> username
    stored: str  # Message.mentions


def mentioned_in(room: Room, author: User, text: str) -> Mentioned | None:
    """Who a new (or edited) text mentions in ``room``; None when nobody. One query, and
    only when the text has an @name at all."""
    everyone = ROOM in candidates(text) and not room.is_direct and (room.owner_id == author.id or author.is_admin)
    users = resolve(room.id, author, text, everyone)
    if not users:
        return None
    return Mentioned(users, encode(users, everyone) or "")


def store(room_id: int, message_id: int, mentioned: Mentioned | None, replace: bool = False) -> None:
    """The Mention rows of a message, in the caller's transaction (an edit replaces them)."""
    if replace:
        db.session.execute(delete(Mention).where(Mention.message_id == message_id))
    if mentioned:
        rows = [{"message_id": message_id, "user_id": uid, "room_id": room_id} for uid in mentioned.users]
        db.session.execute(insert(Mention), rows)
