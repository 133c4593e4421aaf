"""Who is here and who is typing: rendered from the broker's shared state.

Presence changes are coalesced: a burst of joins (a room reconnecting after a restart)
publishes one fragment per room per PUBLISH_DELAY, not one per socket.
"""

from __future__ import annotations

import time

import gevent
from flask import Flask, render_template

from .broker import Broker

PUBLISH_DELAY = 0.5
CACHE_SECONDS = 1.0


class Presence:
    def __init__(self, app: Flask, broker: Broker) -> None:
        self.app = app
        self.broker = broker
        self._scheduled: set[int] = set()
        self._cache: dict[int, tuple[float, str]] = {}

    def _render(self, room_id: int) -> str:
        html = render_template("live/_presence.html", people=self.broker.present(room_id))
        self._cache[room_id] = (time.monotonic() + CACHE_SECONDS, html)
        return html

    def presence_html(self, room_id: int) -> str:
        """For heartbeats: at most one broker read per room per second in this process."""
        cached = self._cache.get(room_id)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        return self._render(room_id)

    def changed(self, room_id: int) -> None:
        if room_id in self._scheduled:
            return
        self._scheduled.add(room_id)
        gevent.spawn_later(PUBLISH_DELAY, self._publish_presence, room_id)

    def _publish_presence(self, room_id: int) -> None:
        self._scheduled.discard(room_id)
        try:
            with self.app.app_context():
                self.broker.publish(room_id, self._render(room_id))
        except Exception:  # noqa: BLE001 - the next heartbeat repairs presence
            self.app.logger.exception("presence publish failed")

    def publish_typing(self, room_id: int) -> None:
        html = render_template("live/_typing.html", typers=self.broker.typing(room_id))
        self.broker.publish(room_id, html)
