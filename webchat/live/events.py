"""What travels through the broker: events, not HTML.

A pushed fragment depends on its reader's view (language, time zone), so a process
cannot render it for everybody before publishing. It publishes what happened, as
plain JSON-able data, and every process renders it once per view present among its
own sockets (webchat/live/push.py). Events carry all their fragment needs: delivery
reads nothing from the database.

A change to a message (an edit, a deletion, a reaction) is an event too: the whole new
state of that one message, rendered per view into an out-of-band replacement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from ..models import Quote

MESSAGE = "message"
CHANGE = "change"  # a message was edited, deleted or reacted to: replace (or empty) it in place
PRESENCE = "presence"
TYPING = "typing"
REVOKE = "revoke"  # access ended: say why, then close with a code htmx does not retry

# Why a socket was closed for good (the text is rendered in each reader's language).
REMOVED = "removed"  # from this room
LEFT = "left"  # this room, from another tab
DEACTIVATED = "deactivated"  # the account
LOGGED_OUT = "logged_out"  # this session ended
ROOM_GONE = "room_gone"  # the room was deleted


@dataclass(frozen=True)
class PushedMessage:
    """What the message macro reads of a message, rebuilt from an event."""

    id: int
    author_id: int
    author_name: str
    body: str
    kind: str
    event: str | None
    created_at: datetime  # naive UTC, as stored
    edited_at: datetime | None = None
    quote: Quote | None = None  # what it replies to
    reactions: str | None = None  # Message.reactions (JSON)
    mentions: str | None = None  # Message.mentions ("id:name ...")


@dataclass(frozen=True)
class Previous:
    """The message before a new one: grouping and day headings depend on it."""

    author_id: int
    kind: str
    created_at: datetime


def snapshot(message, **changes) -> PushedMessage:
    """A message as the macro reads it, with ``changes`` applied (an edit, reactions):
    what a change publishes and answers with, made before the commit, read after it."""
    return replace(
        PushedMessage(
            message.id,
            message.author_id,
            message.author_name,
            message.body,
            message.kind,
            message.event,
            message.created_at,
            message.edited_at,
            message.quote,
            message.reactions,
            message.mentions,
        ),
        **changes,
    )


def _fields(m) -> list:
    return [
        m.id,
        m.author_id,
        m.author_name,
        m.body,
        m.kind,
        m.event,
        m.created_at.isoformat(),
        m.edited_at.isoformat() if m.edited_at else None,
        m.quote.as_list() if m.quote else None,
        m.reactions,
        m.mentions,
    ]


def _read_fields(fields: list) -> PushedMessage:
    mid, author_id, author, body, kind, what, at, edited, quote, reactions, mentioned = fields
    return PushedMessage(
        mid,
        author_id,
        author,
        body,
        kind,
        what,
        datetime.fromisoformat(at),
        datetime.fromisoformat(edited) if edited else None,
        Quote(*quote) if quote else None,
        reactions,
        mentioned,
    )


def message_event(message, previous) -> dict:
    return {
        "kind": MESSAGE,
        "m": _fields(message),
        "prev": None if previous is None else [previous.author_id, previous.kind, previous.created_at.isoformat()],
    }


def read_message(event: dict) -> tuple[PushedMessage, Previous | None]:
    prev = event.get("prev")
    previous = Previous(prev[0], prev[1], datetime.fromisoformat(prev[2])) if prev else None
    return _read_fields(event["m"]), previous


def change_event(message_id: int, message=None, quoted: bool = False) -> dict:
    """A message changed: its new state (``message``), or None once deleted. ``quoted``:
    replies quote it, and their quotes change with it."""
    return {"kind": CHANGE, "id": message_id, "m": _fields(message) if message else None, "quoted": quoted}


def read_change(event: dict) -> tuple[int, PushedMessage | None, Quote | None]:
    """The message id, its new state (None: deleted) and, when replies quote it, what
    their quotes now show."""
    mid = event["id"]
    message = _read_fields(event["m"]) if event["m"] else None
    quote = None
    if event.get("quoted"):
        quote = Quote.of(mid, message.author_name, message.body, False) if message else Quote.of(mid, None, None, True)
    return mid, message, quote


def caught_up(event: dict) -> bool:
    """Does a reconnecting socket find this event in the database (a message, a change)?
    Then a publish that may have been lost must make sockets reconnect and catch up."""
    return event.get("kind") in (MESSAGE, CHANGE)


def presence_event(people) -> dict:
    return {"kind": PRESENCE, "people": [[p.user_id, p.username] for p in people]}


def typing_event(typers) -> dict:
    """Seconds left as whole seconds (1..10): the notice's CSS timer has that grain, and
    equal events render once (webchat/live/push.py keeps them)."""
    return {"kind": TYPING, "typers": [[p.user_id, p.username, max(1, min(10, math.ceil(left)))] for p, left in typers]}


def revoke_event(reason: str, room_id: int | None = None, session: str | None = None) -> dict:
    """For a user's sockets: all of them, or those in one room, or of one session."""
    return {"kind": REVOKE, "reason": reason, "room": room_id, "session": session}
