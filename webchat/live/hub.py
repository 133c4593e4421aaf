"""This process's room registry: which local sockets are in which room, by view.

The broker hands every published event to ``Hub.deliver`` once; the hub renders it
once per view present in the room (language, time zone), encodes each rendering
once, and puts the same bytes on the queue of every local socket of that view.
Nothing here blocks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import sidebar
from .frames import encode_text_frame

if TYPE_CHECKING:
    from ..i18n import View
    from .connection import Connection

log = logging.getLogger(__name__)

POLICY_VIOLATION = 1008  # a close code the htmx ws extension does not retry

Render = Callable[[dict, "View"], str]


class Hub:
    def __init__(self, render: Render) -> None:
        self.render = render
        self.rooms: dict[int, dict[View, set[Connection]]] = {}
        self.users: dict[int, set[Connection]] = {}
        # Sockets whose page shows a room list, by the rooms in it (webchat/live/sidebar.py).
        self.watchers: dict[int, set[Connection]] = {}

    def forget_user_socket(self, conn: Connection) -> None:
        mine = self.users.get(conn.user_id)
        if mine is not None:
            mine.discard(conn)
            if not mine:
                del self.users[conn.user_id]

    def watch(self, conn: Connection) -> None:
        for room_id in conn.sidebar.rooms():
            self.watchers.setdefault(room_id, set()).add(conn)

    def unwatch(self, conn: Connection) -> None:
        if conn.sidebar is None:
            return
        for room_id in conn.sidebar.rooms():
            watching = self.watchers.get(room_id)
            if watching is not None:
                watching.discard(conn)
                if not watching:
                    del self.watchers[room_id]

    def add(self, room_id: int, conn: Connection) -> None:
        self.rooms.setdefault(room_id, {}).setdefault(conn.view, set()).add(conn)
        self.users.setdefault(conn.user_id, set()).add(conn)

    def remove(self, room_id: int, conn: Connection) -> None:
        self.forget_user_socket(conn)
        views = self.rooms.get(room_id)
        if views is None:
            return
        conns = views.get(conn.view)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del views[conn.view]
        if not views:
            del self.rooms[room_id]

    def deliver(self, room_id: int, message_id: int | None, event: dict) -> None:
        views = self.rooms.get(room_id)
        if views:
            self._push(event, message_id, views)
        watching = self.watchers.get(room_id)
        if watching and event.get("kind") == "message":
            message, shown = sidebar.preview(event)
            for conn in tuple(watching):
                conn.sidebar.touch(room_id, message, shown, conn.wake)

    def deliver_user(self, user_id: int, event: dict) -> None:
        """An event for one person's sockets here (a revocation: all of them, those in
        one room, or those of one session), rendered once per view among them."""
        views: dict[View, set[Connection]] = {}
        for conn in tuple(self.users.get(user_id, ())):
            if event.get("room") not in (None, conn.room_id) or event.get("session") not in (None, conn.session):
                continue
            views.setdefault(conn.view, set()).add(conn)
        if views:
            self._push(event, None, views)

    def _push(self, event: dict, message_id: int | None, views: dict) -> None:
        final = event.get("kind") == "revoke"  # say why, then close for good
        for view, conns in tuple(views.items()):
            try:
                frame = encode_text_frame(self.render(event, view))
            except Exception:  # noqa: BLE001 - one bad rendering must not stop the others
                log.exception("rendering a %s push failed", event.get("kind"))
                for conn in tuple(conns):  # they missed it: reconnect and catch up
                    conn.request_close(1011, "Server error: reconnecting")
                continue
            for conn in tuple(conns):
                if final:
                    conn.request_close(POLICY_VIOLATION, "Access revoked", last_words=frame)
                else:
                    conn.push(frame, message_id)

    def connections(self, room_ids: list[int] | None = None):
        rooms = self.rooms if room_ids is None else {r: self.rooms.get(r, {}) for r in room_ids}
        for views in tuple(rooms.values()):
            for conns in tuple(views.values()):
                yield from tuple(conns)

    def restart(self, room_ids: list[int] | None = None) -> None:
        """Ask local sockets (of some rooms, or all) to reconnect and so catch up from
        the database: 1012 is a close code the htmx ws extension retries."""
        for conn in self.connections(room_ids):
            conn.request_close(1012, "Service restart: reconnecting")
