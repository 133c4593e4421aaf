"""Who is here and who is typing: published as events from the broker's shared state.

Presence changes are coalesced: a burst of joins (a room reconnecting after a restart)
publishes one event per room per PUBLISH_DELAY, not one per socket. Heartbeats carry
the presence list too; they read the broker at most once per room per second and
render once per (language, people) in this process.
"""

from __future__ import annotations

import time

import gevent
from flask import Flask, render_template

from .. import fragments
from . import events
from .broker import Broker, Person
from .frames import encode_text_frame

PUBLISH_DELAY = 0.5
CACHE_SECONDS = 1.0


class Presence:
    def __init__(self, app: Flask, broker: Broker) -> None:
        self.app = app
        self.broker = broker
        self._scheduled: set[int] = set()
        self._people: dict[int, tuple[float, tuple[Person, ...]]] = {}

    def people(self, room_id: int, fresh: bool = False) -> tuple[Person, ...]:
        cached = self._people.get(room_id)
        if not fresh and cached and cached[0] > time.monotonic():
            return cached[1]
        people = tuple(self.broker.present(room_id))
        self._people[room_id] = (time.monotonic() + CACHE_SECONDS, people)
        return people

    def heartbeat(self, room_id: int, language: str) -> tuple[str, bytes]:
        """The status and presence a heartbeat carries, in the socket's language (the
        current request's), as HTML and as a frame: made once per (language, people),
        not per socket."""

        def render() -> tuple[str, bytes]:
            html = render_template("live/_status.html", state="live") + render_template(
                "live/_presence.html", people=people
            )
            return html, encode_text_frame(html)

        people = self.people(room_id)
        return fragments.cached(("heartbeat", language, people), render)

    def changed(self, room_id: int) -> None:
        if room_id in self._scheduled:
            return
        self._scheduled.add(room_id)
        gevent.spawn_later(PUBLISH_DELAY, self._publish_presence, room_id)

    def _publish_presence(self, room_id: int) -> None:
        self._scheduled.discard(room_id)
        try:
            self.broker.publish(room_id, events.presence_event(self.people(room_id, fresh=True)))
        except Exception:  # noqa: BLE001 - the next heartbeat repairs presence
            self.app.logger.exception("presence publish failed")

    def publish_typing(self, room_id: int) -> None:
        self.broker.publish(room_id, events.typing_event(self.broker.typing(room_id)))
