"""Reading a room: keyset pages of its messages, rendered once per view and kept.

A slice of history (up to PAGE_SIZE messages) is rendered for one *view* — the
reader's language and time zone, and their today for day labels — and kept
(webchat/fragments.py) under the room's newest message id and its change sequence:
every page view and infinite-scroll step after the first is a lookup, not fifty
renders and a query. A new message, an edit, a deletion or a reaction changes the
key, so a kept slice is never stale.

Every query here reads each message with its author and, for a reply, the start of
the message it answers (joined, in the same statement); reactions are a column of the
message (Message.reactions). A page costs the same whatever its replies and reactions.
Deleted messages are left out of pages; the socket's catch-up reads them, to remove them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from flask import current_app, render_template
from markupsafe import Markup
from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import aliased

from .. import fragments
from ..extensions import db
from ..models import MAX_ID, QUOTE_CHARS, Message, Quote, Room, User


@dataclass
class Page:
    messages: list[Message]  # oldest first
    has_older: bool
    has_newer: bool
    # The message just older than the first one shown (None at the start of the room):
    # day separators and grouping continue across slice borders.
    before_first: Message | None = None


def with_quote(query: Select) -> Select:
    """``query`` (of Message) plus what a reply shows of its original: its author, the
    start of its text and whether it was deleted (outer joins: one statement)."""
    quoted, quoted_author = aliased(Message, name="quoted"), aliased(User, name="quoted_author")
    return (
        query.add_columns(
            quoted_author.username, func.substr(quoted.body, 1, QUOTE_CHARS + 20), quoted.deleted_at.is_not(None)
        )
        .outerjoin(quoted, quoted.id == Message.reply_to_id)
        .outerjoin(quoted_author, quoted_author.id == quoted.author_id)
    )


def read_quoted(rows) -> list[Message]:
    """The messages of ``with_quote`` rows, each with its ``quote`` set."""
    messages = []
    for message, author, body, deleted in rows:
        if message.reply_to_id is not None:
            message.quote = Quote.of(message.reply_to_id, author, body, bool(deleted))
        messages.append(message)
    return messages


@cache
def _queries() -> dict[str, Select]:
    """Built once, with bound parameters: building a statement costs more than running it."""
    shown = Message.deleted_at.is_(None)
    in_room = with_quote(select(Message).where(Message.room_id == bindparam("room_id"), shown))
    newest_first = in_room.order_by(Message.id.desc()).limit(bindparam("limit"))
    return {
        "newest": newest_first,
        "before": newest_first.where(Message.id < bindparam("id")),
        "after": in_room.where(Message.id > bindparam("id")).order_by(Message.id).limit(bindparam("limit")),
        "at_or_before": newest_first.where(Message.id <= bindparam("id")),
        "at_or_after": newest_first.where(Message.id >= bindparam("id")),
        "any_from": select(Message.id)
        .where(Message.room_id == bindparam("room_id"), Message.id >= bindparam("id"), shown)
        .limit(1),
        # Deleted ones included: the catch-up removes them, a change says "gone".
        "changed": with_quote(
            select(Message).where(
                Message.room_id == bindparam("room_id"),
                Message.id <= bindparam("id"),
                Message.changed_seq > bindparam("seq"),
            )
        )
        .order_by(Message.changed_seq)
        .limit(bindparam("limit")),
        "one": with_quote(
            select(Message).where(Message.id == bindparam("id"), Message.room_id == bindparam("room_id"))
        ),
    }


def history(room: Room, before: int | None = None, after: int | None = None) -> Page:
    """Keyset pages by id: the newest, the ones before an id, or the ones after it.

    One query reads the page plus one more row, which tells whether there is more and,
    paging backwards, is the message just older than the page. A fixed number of
    statements whatever the page size: the authors come in the same query (joined).
    """
    size = current_app.config["PAGE_SIZE"]
    q = _queries()

    def rows(name: str, **params) -> list[Message]:
        return read_quoted(db.session.execute(q[name], {"room_id": room.id, **params}))

    if after is not None:
        newer = rows("after", id=after, limit=size + 1)
        older = rows("at_or_before", id=after, limit=1)
        return Page(
            newer[:size], has_older=bool(older), has_newer=len(newer) > size, before_first=older[0] if older else None
        )
    found = rows("newest", limit=size + 1) if before is None else rows("before", id=before, limit=size + 1)
    older = found[size] if len(found) > size else None
    has_newer = (
        before is not None and db.session.execute(q["any_from"], {"room_id": room.id, "id": before}).first() is not None
    )
    return Page(found[:size][::-1], has_older=older is not None, has_newer=has_newer, before_first=older)


class NotInRoom(LookupError):
    """The message asked for is not in this room."""


def page_around(room: Room, message_id: int) -> Page:
    """A page centred on one message (a permalink): it and about half a page older, half
    a page newer. Two queries, the same keyset ones as paging: at-or-before (the
    message itself first, which proves it is in this room) and after."""
    size = current_app.config["PAGE_SIZE"]
    newer_count = size // 2
    older_count = size - newer_count  # the message itself included
    if message_id > MAX_ID:
        raise NotInRoom(message_id)
    q = _queries()
    params = {"room_id": room.id, "id": message_id}
    older = list(db.session.execute(q["at_or_before"], {**params, "limit": older_count + 1}).scalars())
    if not older or older[0].id != message_id:
        raise NotInRoom(message_id)
    newer = list(db.session.execute(q["after"], {**params, "limit": newer_count + 1}).scalars())
    before_first = older[older_count] if len(older) > older_count else None
    return Page(
        older[:older_count][::-1] + newer[:newer_count],
        has_older=before_first is not None,
        has_newer=len(newer) > newer_count,
        before_first=before_first,
    )


def messages_after(room_id: int, after_id: int, limit: int) -> tuple[Message | None, list[Message], bool]:
    """For a socket's catch-up: the message ``after_id`` itself (the page's newest, so day
    headings continue from it), the newest ``limit`` messages after it (oldest first),
    and whether more were skipped. One query."""
    rows = read_quoted(
        db.session.execute(_queries()["at_or_after"], {"room_id": room_id, "id": after_id, "limit": limit + 2})
    )
    rows.reverse()
    anchor = rows.pop(0) if rows and rows[0].id == after_id else None
    truncated = len(rows) > limit
    return (None if truncated else anchor), rows[-limit:] if limit else [], truncated


def changed_since(room_id: int, up_to_id: int, seq: int, limit: int) -> tuple[list[Message], bool]:
    """For a socket's catch-up: the messages up to ``up_to_id`` (those its page may show)
    changed after the room's change number ``seq``, deleted ones included, in the order
    they changed; and whether more than ``limit`` did. One query."""
    rows = read_quoted(
        db.session.execute(_queries()["changed"], {"room_id": room_id, "id": up_to_id, "seq": seq, "limit": limit + 1})
    )
    return rows[:limit], len(rows) > limit


def message_in_room(room_id: int, message_id: int) -> Message | None:
    """One message of the room with its quote, deleted or not (the caller decides)."""
    rows = read_quoted(db.session.execute(_queries()["one"], {"room_id": room_id, "id": message_id}))
    return rows[0] if rows else None


@dataclass(frozen=True)
class Slice:
    """A rendered slice of history and what the page around it needs to know."""

    html: Markup
    newest_id: int  # the newest message shown (or the ``after`` asked for)
    has_newer: bool
    shows_latest: bool  # no before/after/around: the page turns live


def rendered_slice(
    room: Room, view: tuple, before: int | None = None, after: int | None = None, around: int | None = None
) -> Slice:
    """The slice the URL asks for, rendered for ``view``: from the cache when the room
    has not changed since it was rendered. ``around``: raises NotInRoom for a message
    of another room or none (nothing is kept for it)."""
    key = ("slice", room.id, room.last_message_id, room.change_seq, before, after, around, view)
    return fragments.cached(key, lambda: _render_slice(room, before, after, around))


def _render_slice(room: Room, before: int | None, after: int | None, around_id: int | None = None) -> Slice:
    if around_id is not None:
        page = page_around(room, around_id)
    else:
        page = history(room, before=before, after=after)
        if after is not None and not page.messages:
            # Nothing newer than `after`: the reader is up to date, so show the latest page
            # (an empty after-page has no first message to link "older" from).
            before = after = None
            page = history(room)
    newest = page.messages[-1] if page.messages else None
    return Slice(
        html=Markup(render_template("rooms/_older.html", room=room, page=page)),  # noqa: S704 - our template's output
        newest_id=newest.id if newest else (after or 0),
        has_newer=page.has_newer,
        shows_latest=before is None and after is None and around_id is None,
    )


def with_new_divider(html: Markup, seen: int, newest_id: int) -> Markup:
    """The slice with a "New messages" divider above the first message newer than
    ``seen`` (what the reader had read), for this reader only: inserted into the kept
    slice's HTML, which stays shared. In the column-reverse log the divider follows that
    message in the DOM. The room list links to it (#new), so the view starts there."""
    if not seen or seen >= newest_id:
        return html
    first_unread = None
    for match in _ARTICLE_ID.finditer(html):
        message_id = int(match.group(1))
        if message_id <= seen:
            break
        first_unread = match
    if first_unread is None:
        return html
    end = html.index("</article>", first_unread.end()) + len("</article>")
    divider = Markup(render_template("rooms/_new_divider.html"))  # noqa: S704 - our template's output
    return html[:end] + divider + html[end:]


_ARTICLE_ID = re.compile(r'<article id="m-(\d+)"')
