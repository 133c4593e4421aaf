"""Access ends live: a change reaches open sockets on every worker and host at once.

Membership and account state are checked on every (re)connect; these calls make an
open socket hear about a change within a moment: it shows why, in its reader's
language, and closes with 1008, which htmx does not retry. Call them after the
change is committed, so a reconnect attempt already finds it.
"""

from __future__ import annotations

from . import broker, events


def revoke_user(user_id: int, reason: str, session: str | None = None) -> None:
    """Close a person's sockets everywhere (or only those of one session)."""
    broker.get().publish_user(user_id, events.revoke_event(reason, session=session))


def revoke_member(room_id: int, user_id: int, reason: str = events.REMOVED) -> None:
    """Close a person's sockets in one room."""
    broker.get().publish_user(user_id, events.revoke_event(reason, room_id=room_id))


def close_room(room_id: int) -> None:
    """Close every socket of a room that no longer exists."""
    broker.get().publish(room_id, events.revoke_event(events.ROOM_GONE, room_id=room_id))
