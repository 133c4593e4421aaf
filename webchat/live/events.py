"""What travels through the broker: events, not HTML.

A pushed fragment depends on its reader's view (language, time zone), so a process
cannot render it for everybody before publishing. It publishes what happened, as
plain JSON-able data, and every process renders it once per view present among its
own sockets (webchat/live/push.py). Events carry all their fragment needs: delivery
reads nothing from the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

MESSAGE = "message"
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


@dataclass(frozen=True)
class Previous:
    """The message before a new one: grouping and day headings depend on it."""

    author_id: int
    kind: str
    created_at: datetime


def message_event(message, previous) -> dict:
    return {
        "kind": MESSAGE,
        "m": [
            message.id,
            message.author_id,
            message.author_name,
            message.body,
            message.kind,
            message.event,
            message.created_at.isoformat(),
        ],
        "prev": None if previous is None else [previous.author_id, previous.kind, previous.created_at.isoformat()],
    }


def read_message(event: dict) -> tuple[PushedMessage, Previous | None]:
    mid, author_id, author, body, kind, what, at = event["m"]
    message = PushedMessage(mid, author_id, author, body, kind, what, datetime.fromisoformat(at))
    prev = event.get("prev")
    previous = Previous(prev[0], prev[1], datetime.fromisoformat(prev[2])) if prev else None
    return message, previous


def presence_event(people) -> dict:
    return {"kind": PRESENCE, "people": [[p.user_id, p.username] for p in people]}


def typing_event(typers) -> dict:
    """Seconds left as whole seconds (1..10): the notice's CSS timer has that grain, and
    equal events render once (webchat/live/push.py keeps them)."""
    return {"kind": TYPING, "typers": [[p.user_id, p.username, max(1, min(10, math.ceil(left)))] for p, left in typers]}


def revoke_event(reason: str, room_id: int | None = None, session: str | None = None) -> dict:
    """For a user's sockets: all of them, or those in one room, or of one session."""
    return {"kind": REVOKE, "reason": reason, "room": room_id, "session": session}
