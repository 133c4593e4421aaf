"""One broker interface, two implementations (in-process here, Redis in redis_broker).

The broker carries events (webchat/live/events.py: plain JSON-able data, rendered per
view where they are delivered) between processes and holds the state that must be
shared by every worker: presence, typing, the rate limiter, the login and sign-up
throttles, and generation counters. Each process has one broker, and the broker hands
what it receives to one listener: the process's hub.
"""

from __future__ import annotations

import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from flask import current_app

# listener(room_id, message_id or None, event)
Listener = Callable[[int, "int | None", dict], None]
# user_listener(user_id, event): events for one person's sockets, wherever they are
# (access revoked: removed from a room, account deactivated, logged out).
UserListener = Callable[[int, dict], None]
# restart(room ids, or None for all): fragments may have been lost, so those sockets
# must reconnect and catch up from the database.
Restart = Callable[["list[int] | None"], None]


@dataclass(frozen=True)
class Person:
    user_id: int
    username: str


class Broker(ABC):
    def __init__(self) -> None:
        self._listener: Listener | None = None
        self._restart: Restart | None = None
        self._user_listener: UserListener | None = None

    def listen(
        self, listener: Listener, restart: Restart | None = None, user_listener: UserListener | None = None
    ) -> None:
        """Register this process's single consumer of published events."""
        self._listener = listener
        self._restart = restart
        self._user_listener = user_listener

    def _deliver(self, room_id: int, message_id: int | None, event: dict) -> None:
        if self._listener is not None:
            self._listener(room_id, message_id, event)

    def _deliver_user(self, user_id: int, event: dict) -> None:
        if self._user_listener is not None:
            self._user_listener(user_id, event)

    @abstractmethod
    def publish_user(self, user_id: int, event: dict) -> None:
        """Send an event to every socket of one user, in every process."""

    @abstractmethod
    def publish(self, room_id: int, event: dict, message_id: int | None = None) -> None:
        """Send an event to every socket of the room, in every process."""

    @abstractmethod
    def allow(self, key: str, limit: int, window: float) -> bool:
        """Count one event for key; False once more than ``limit`` fall in ``window`` seconds."""

    @abstractmethod
    def hit(self, key: str, window: float) -> None:
        """Count one event (a failed login, a sign-up) for key, for ``window`` seconds."""

    @abstractmethod
    def retry_after(self, key: str, limit: int, window: float) -> float:
        """Seconds until fewer than ``limit`` events of key fall in the last ``window``
        seconds; 0 while fewer do. Counts nothing itself (``hit`` does)."""

    @abstractmethod
    def forget(self, key: str) -> None:
        """Drop every event counted for key (a successful login clears its failures)."""

    @abstractmethod
    def generation(self, name: str) -> int:
        """A counter shared by every process: a process keeps something derived from
        the database (who is deactivated) and reloads it when the counter moved.
        -1 when it cannot be read (keep what you have)."""

    @abstractmethod
    def bump(self, name: str) -> None:
        """Move the counter: the thing it names changed in the database (commit first)."""

    @abstractmethod
    def presence_touch(self, room_id: int, conn_id: str, person: Person, ttl: float) -> None:
        """Mark one connection present in a room until ttl seconds from now."""

    @abstractmethod
    def presence_drop(self, room_id: int, conn_id: str) -> None: ...

    @abstractmethod
    def present(self, room_id: int) -> list[Person]:
        """Distinct people with a live connection to the room, sorted by name."""

    @abstractmethod
    def typing_touch(self, room_id: int, person: Person, ttl: float) -> None: ...

    @abstractmethod
    def typing_drop(self, room_id: int, user_id: int) -> bool:
        """Forget that the user types; True if they were typing (others must be told)."""

    @abstractmethod
    def typing(self, room_id: int) -> list[tuple[Person, float]]:
        """People typing now, with the seconds left before their notice expires."""

    def close(self) -> None:  # noqa: B027 - optional: the memory broker holds nothing
        """Release connections and background work."""


def _people(entries) -> list[Person]:
    return sorted(set(entries), key=lambda p: (p.username.casefold(), p.user_id))


class MemoryBroker(Broker):
    """Single-process broker: publishing is a direct call into the hub."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._hits: dict[str, deque[float]] = {}
        self._generations: dict[str, int] = {}
        self._presence: dict[int, dict[str, tuple[Person, float]]] = {}
        self._typing: dict[int, dict[int, tuple[Person, float]]] = {}

    def publish(self, room_id: int, event: dict, message_id: int | None = None) -> None:
        self._deliver(room_id, message_id, event)

    def publish_user(self, user_id: int, event: dict) -> None:
        self._deliver_user(user_id, event)

    def allow(self, key: str, limit: int, window: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if len(self._hits) > 10_000:  # keys nobody used for a while (throttled addresses...)
                for stale in [k for k, times in self._hits.items() if not times or times[-1] <= now - 3600]:
                    del self._hits[stale]
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return False
            hits.append(now)
            return True

    def hit(self, key: str, window: float) -> None:
        self.allow(key, sys.maxsize, window)  # the same sliding-window log, never full

    def retry_after(self, key: str, limit: int, window: float) -> float:
        now = time.monotonic()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                return 0.0
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) < limit:
                return 0.0
            return hits[len(hits) - limit] + window - now

    def forget(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)

    def generation(self, name: str) -> int:
        return self._generations.get(name, 0)

    def bump(self, name: str) -> None:
        with self._lock:
            self._generations[name] = self._generations.get(name, 0) + 1

    def presence_touch(self, room_id: int, conn_id: str, person: Person, ttl: float) -> None:
        with self._lock:
            self._presence.setdefault(room_id, {})[conn_id] = (person, time.monotonic() + ttl)

    def presence_drop(self, room_id: int, conn_id: str) -> None:
        with self._lock:
            self._presence.get(room_id, {}).pop(conn_id, None)

    def present(self, room_id: int) -> list[Person]:
        now = time.monotonic()
        with self._lock:
            entries = self._presence.get(room_id, {})
            for conn_id in [c for c, (_, exp) in entries.items() if exp <= now]:
                del entries[conn_id]
            return _people(p for p, _ in entries.values())

    def typing_touch(self, room_id: int, person: Person, ttl: float) -> None:
        with self._lock:
            self._typing.setdefault(room_id, {})[person.user_id] = (person, time.monotonic() + ttl)

    def typing_drop(self, room_id: int, user_id: int) -> bool:
        with self._lock:
            entry = self._typing.get(room_id, {}).pop(user_id, None)
        return entry is not None and entry[1] > time.monotonic()

    def typing(self, room_id: int) -> list[tuple[Person, float]]:
        now = time.monotonic()
        with self._lock:
            entries = self._typing.get(room_id, {})
            for uid in [u for u, (_, exp) in entries.items() if exp <= now]:
                del entries[uid]
            return sorted(((p, exp - now) for p, exp in entries.values()), key=lambda t: t[0].username.casefold())


def create_broker(redis_url: str | None, prefix: str) -> Broker:
    if redis_url:
        from .redis_broker import RedisBroker

        return RedisBroker(redis_url, prefix)
    return MemoryBroker()


def get() -> Broker:
    """The current app's broker."""
    return current_app.extensions["webchat.broker"]
