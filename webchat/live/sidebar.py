"""A socket's live room list: which rooms have news, kept in memory, sent coalesced.

A page that shows the room list (the list page, or a room page beside its sidebar)
holds, on its socket, its user's list as it was rendered. The hub hands every new
message of those rooms to ``touch`` (no database, no blocking): the entry takes the
message as its preview, counts it as unread unless the reader is looking at that room,
and is marked changed. At most once per UPDATE_EVERY the socket's own greenlet sends
the changed entries (moved to the top: newest activity first) and a tiny element
that updates the page title's unread total. A busy room costs each list one small
fragment a second, not one per message; entries render through the fragment cache,
so readers whose entry is the same share one rendering.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gevent
from flask import render_template

from .. import fragments
from ..rooms import listing
from ..rooms.mentions import ids_attribute as mention_ids
from . import events

UPDATE_EVERY = 1.0


def preview(event: dict) -> tuple[events.PushedMessage, listing.Preview]:
    """What a list entry shows of a message event (parsed once per delivery)."""
    message, _previous = events.read_message(event)
    return message, listing.Preview(
        message.kind, message.event, message.body[:200], message.author_name, message.created_at
    )


class Sidebar:
    def __init__(
        self, user_id: int, summaries: list[listing.RoomSummary], current_room: int | None, room_name: str | None
    ) -> None:
        self.user_id = user_id
        self.current_room = current_room  # its messages are seen as they arrive: not unread
        self.room_name = room_name  # the page's room, for its title
        self.entries = {s.room_id: s for s in summaries}
        self.changed: list[int] = []  # room ids, most recent activity last
        self.due: float | None = None

    def rooms(self) -> list[int]:
        """The rooms whose news this list follows: the reader's own (public rooms they
        have not joined are listed, but not followed), but not the room the page shows —
        its news is on screen already, and following it would cost every reader of a busy
        room a list update a second (measured: bench/fanout.py's steady runs)."""
        return [r for r, s in self.entries.items() if s.unread is not None and r != self.current_room]

    def touch(self, room_id: int, message: events.PushedMessage, shown: listing.Preview, wake: Callable) -> None:
        entry = self.entries.get(room_id)
        if entry is None:
            return
        unread, mentioned = entry.unread, entry.mentions
        if unread is not None and message.kind == "user" and message.author_id != self.user_id:
            fresh = 0 if room_id == self.current_room else 1
            unread += fresh
            if str(self.user_id) in mention_ids(message.mentions).split():
                mentioned += fresh
        self.entries[room_id] = entry._replace(last_message=shown, unread=unread, mentions=mentioned)
        if room_id in self.changed:
            self.changed.remove(room_id)
        self.changed.append(room_id)
        if self.due is None:
            self.due = time.monotonic() + UPDATE_EVERY
            gevent.spawn_later(UPDATE_EVERY, wake)

    def total_unread(self) -> int:
        return sum(s.unread or 0 for s in self.entries.values())

    def is_due(self) -> bool:
        return self.due is not None and time.monotonic() >= self.due

    def update_html(self, view: tuple) -> str | None:
        """The fragment for what changed, once due (in the socket's request context)."""
        if not self.changed or self.due is None or time.monotonic() < self.due:
            return None
        changed = tuple(self.entries[r] for r in reversed(self.changed))  # newest first
        self.changed, self.due = [], None
        total = self.total_unread()

        def render() -> str:
            items = listing.rendered_items(list(changed), view)
            return render_template(
                "live/_sidebar_update.html",
                moved=list(zip(changed, items, strict=True)),
                total=total,
                room_name=self.room_name,
            )

        # Lists in the same state (readers of the same rooms) share one rendering.
        return fragments.cached(("list-update", changed, total, self.room_name, view), render)
