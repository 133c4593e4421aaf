"""This process's room registry: which local sockets are in which room.

The broker hands every published fragment to ``Hub.deliver`` once; the hub encodes it
once and puts the same bytes on each local connection's queue. Nothing here blocks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .frames import encode_text_frame

if TYPE_CHECKING:
    from .connection import Connection


class Hub:
    def __init__(self) -> None:
        self.rooms: dict[int, set[Connection]] = {}

    def add(self, room_id: int, conn: Connection) -> None:
        self.rooms.setdefault(room_id, set()).add(conn)

    def remove(self, room_id: int, conn: Connection) -> None:
        conns = self.rooms.get(room_id)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.rooms[room_id]

    def deliver(self, room_id: int, message_id: int | None, html: str) -> None:
        conns = self.rooms.get(room_id)
        if not conns:
            return
        frame = encode_text_frame(html)
        for conn in tuple(conns):
            conn.push(frame, message_id)

    def restart(self, room_ids: list[int] | None = None) -> None:
        """Ask local sockets (of some rooms, or all) to reconnect and so catch up from
        the database: 1012 is a close code the htmx ws extension retries."""
        rooms = self.rooms if room_ids is None else {r: self.rooms.get(r, ()) for r in room_ids}
        for conns in tuple(rooms.values()):
            for conn in tuple(conns):
                conn.request_close(1012, "Service restart: reconnecting")
