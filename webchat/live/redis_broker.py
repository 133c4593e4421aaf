"""The Redis broker: one pub/sub subscriber per process, shared state in Redis.

Every process holds one pattern subscription (``{prefix}room:*``) read by one daemon
thread (a greenlet under gunicorn's gevent worker), which hands each fragment to the
hub. Sockets never get a Redis connection of their own.

Redis is not the truth (the database is), so nothing here raises into a request:

- publish: if Redis fails, the fragment is delivered to this process's sockets only;
  the message is already committed, so the sender and local readers still see it.
- a lost subscription is retried with capped, jittered backoff; after every
  successful subscription every local socket is restarted (the hub closes them with
  1012, htmx reconnects and catches up from the database), because fragments
  published while we were not subscribed are gone.
- a publish that failed while Redis itself stayed up (a timeout, this process cut
  off) is announced once Redis answers: every process reconnects that room's sockets.
- presence, typing, the rate limiter and the login/sign-up throttles fail open:
  ``[]``, ``True`` and "no wait" (the database and the password hash still stand).

Presence and typing are sorted sets scored by expiry time (Redis' own clock, so
hosts need not agree on the time) plus a hash of who each member is; reads prune
expired members. A killed worker stops refreshing its members and they age out.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Callable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import events
from .broker import Broker, Listener, Person, Restart, UserListener

log = logging.getLogger(__name__)

BACKOFF_BASE = 0.1
BACKOFF_CAP = 5.0
POLL_SECONDS = 1.0  # how often the listener wakes up to ping and check its duties
PING_EVERY = 5.0
DEAD_AFTER = 15.0  # no answer to our pings for this long: the connection is half-dead
RESTART = "restart"  # control payload {"restart": [room ids]}: "those rooms' sockets, reconnect"

# All the scripts read the clock of Redis itself (allowed in scripts since Redis 5,
# whose effects replication is the default since 7).
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "

# KEYS: zset, hash; ARGV: member, who, ttl. Touch one member; the keys live while touched.
_TOUCH = (
    _NOW
    + """
local ttl = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local keep = math.ceil(ttl) + 1
redis.call('EXPIRE', KEYS[1], keep)
redis.call('EXPIRE', KEYS[2], keep)
"""
)

# KEYS: zset, hash. Drop expired members; return {who, seconds left, who, seconds left...}.
_LIVE = (
    _NOW
    + """
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for i = 1, #stale, 500 do
  local chunk = {unpack(stale, i, math.min(i + 499, #stale))}
  redis.call('ZREM', KEYS[1], unpack(chunk))
  redis.call('HDEL', KEYS[2], unpack(chunk))
end
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  local who = redis.call('HGET', KEYS[2], live[i])
  if who then
    out[#out + 1] = who
    out[#out + 1] = tostring(tonumber(live[i + 1]) - now)
  end
end
return out
"""
)

# The sliding-window log of the rate limiter and the throttles, pruned to its window.
# KEYS: zset; ARGV: limit, window, ...
_WINDOW = (
    _NOW
    + """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
"""
)

# ARGV[3]: a unique member. Like MemoryBroker: refused attempts are not counted.
_ALLOW = (
    _WINDOW
    + """
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000) + 1000)
return 1
"""
)

# Seconds until fewer than limit events are in the window (0 while fewer are), as a
# string: a Lua number would reach us truncated to an integer.
_RETRY_AFTER = (
    _WINDOW
    + """
local n = redis.call('ZCARD', KEYS[1])
if n < limit then return '0' end
local at = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return tostring(tonumber(at[2]) + window - now)
"""
)


def _glob_escape(text: str) -> str:
    """The key prefix is literal inside the PSUBSCRIBE pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class _Health:
    """Logs a state change once ("lost", then "back"), never once per failing call."""

    def __init__(self, lost: str, back: str) -> None:
        self.lost_text, self.back_text = lost, back
        self.ok = True
        self._lock = threading.Lock()

    def lost(self, exc: BaseException) -> None:
        with self._lock:
            changed, self.ok = self.ok, False
        if changed:
            log.warning(self.lost_text, exc)

    def back(self) -> None:
        if self.ok:  # the common path: no lock, no log
            return
        with self._lock:
            changed, self.ok = not self.ok, True
        if changed:
            # WARNING, not INFO: the recovery belongs next to the failure in the log.
            log.warning(self.back_text)


class RedisBroker(Broker):
    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        max_connections: int = 50,
        socket_timeout: float = 2.0,
        connect_timeout: float = 1.0,
    ) -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        # Commands: a bounded pool (under gevent, every greenlet would otherwise open
        # its own connection), short timeouts, and one immediate retry so a pooled
        # connection that died with a Redis restart is replaced without an error.
        # redis-py's default (3 retries with backoff) would stall requests for seconds.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=socket_timeout,
            decode_responses=True,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 1),
        )
        self._redis = redis.Redis(connection_pool=pool)
        self._touch = self._redis.register_script(_TOUCH)
        self._live = self._redis.register_script(_LIVE)
        self._allow = self._redis.register_script(_ALLOW)
        self._retry_after = self._redis.register_script(_RETRY_AFTER)
        # The subscriber connection must NOT retry on its own: redis-py would silently
        # reconnect and resubscribe, hiding the gap in which fragments were lost.
        self._sub_redis = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
        )
        self._commands = _Health(
            "Redis commands failing (%s): presence, typing and rate limits fail open, "
            "messages reach this process's sockets only",
            "Redis commands work again",
        )
        self._subscription = _Health(
            "Redis subscription lost (%s): retrying; messages from other processes are not arriving",
            "Redis subscription is back: local sockets reconnect and catch up from the database",
        )
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._pubsub = None
        self._run_id: str | None = None  # the Redis server instance we are subscribed to
        # Rooms whose message or change publish failed, not yet announced (the first failure
        # happened while we were subscribed to the server ``_missed_run_id``).
        self._missed: set[int] = set()
        self._missed_run_id: str | None = None

    # --- keys ------------------------------------------------------------------------

    def _channel(self, room_id: int | str) -> str:
        return f"{self.prefix}room:{room_id}"

    def _keys(self, kind: str, room_id: int) -> list[str]:
        base = f"{self.prefix}{kind}:{room_id}"
        return [base, base + ":who"]

    # --- publish / subscribe ------------------------------------------------------

    def listen(
        self, listener: Listener, restart: Restart | None = None, user_listener: UserListener | None = None
    ) -> None:
        super().listen(listener, restart, user_listener)
        self._ensure_listener()

    def wait_subscribed(self, timeout: float) -> bool:
        """True once the subscriber is subscribed (tests and health checks use it)."""
        self._ensure_listener()
        return self._subscribed.wait(timeout)

    def _ensure_listener(self) -> None:
        # Also after a fork (gunicorn --preload): threads do not survive it.
        if self._stop.is_set() or self._listener is None:
            return
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._subscribed.clear()
            self._thread = threading.Thread(target=self._run, name="webchat-redis-subscriber", daemon=True)
            self._thread.start()

    def publish(self, room_id: int, event: dict, message_id: int | None = None) -> None:
        self._ensure_listener()
        payload = json.dumps({"room": room_id, "id": message_id, "event": event}, separators=(",", ":"))
        try:
            self._redis.publish(self._channel(room_id), payload)
        except redis.RedisError as exc:
            self._commands.lost(exc)
            if message_id is not None or events.caught_up(event):
                if not self._missed:
                    self._missed_run_id = self._run_id
                self._missed.add(room_id)
            self._deliver(room_id, message_id, event)  # committed already: local readers see it
            return
        self._commands.back()

    def publish_user(self, user_id: int, event: dict) -> None:
        """When Redis fails, this process's sockets still hear it; the others are held
        to the revocation by the checks every reconnect makes."""
        self._ensure_listener()
        payload = json.dumps({"user": user_id, "event": event}, separators=(",", ":"))
        try:
            self._redis.publish(f"{self.prefix}user:{user_id}", payload)
        except redis.RedisError as exc:
            self._commands.lost(exc)
            self._deliver_user(user_id, event)
            return
        self._commands.back()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                self._subscribe_and_read()
            except (redis.RedisError, OSError) as exc:
                if not self._stop.is_set():
                    self._subscription.lost(exc)
            except Exception:  # noqa: BLE001 - a bug must not end the subscription for good
                if not self._stop.is_set():
                    log.exception("Redis subscriber failed")
            finally:
                if self._subscribed.is_set():  # it worked for a while: start backing off anew
                    attempt = 0
                self._subscribed.clear()
                self._close_pubsub()
            # Capped exponential backoff with jitter: a fleet of workers must not
            # reconnect in lockstep after Redis comes back.
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)
            attempt = min(attempt + 1, 16)
            self._stop.wait(random.uniform(delay / 2, delay))

    def _subscribe_and_read(self) -> None:
        pubsub = self._sub_redis.pubsub()
        self._pubsub = pubsub
        patterns = [_glob_escape(self.prefix) + "room:*", _glob_escape(self.prefix) + "user:*"]
        pubsub.psubscribe(*patterns)
        deadline = time.monotonic() + 5.0
        confirmed = 0
        while confirmed < len(patterns):  # the confirmations prove the subscription is in place
            message = pubsub.get_message(timeout=1.0)
            if message and message["type"] == "psubscribe":
                confirmed += 1
            if time.monotonic() > deadline:
                raise redis.TimeoutError("no PSUBSCRIBE confirmation")
        self._run_id = self._redis.info("server").get("run_id")
        self._subscribed.set()
        self._subscription.back()
        # Fragments published while we were not subscribed are gone (and sockets may
        # have joined before the first subscription): local sockets reconnect and
        # read the gap from the database.
        self._restart_local()
        self._read(pubsub)

    def _read(self, pubsub) -> None:
        last_seen = last_ping = time.monotonic()
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=POLL_SECONDS)
            now = time.monotonic()
            if message is not None:
                last_seen = now
                if message["type"] == "pmessage":
                    self._on_payload(message["data"])
            elif now - last_seen > DEAD_AFTER:
                raise redis.ConnectionError(f"no answer for {DEAD_AFTER:g} s")
            if now - last_ping >= PING_EVERY:
                last_ping = now
                pubsub.ping(b"webchat")  # its pong proves the connection is alive
            if self._missed:
                self._announce_missed()

    def _on_payload(self, data: bytes) -> None:
        try:
            payload = json.loads(data)
            if RESTART in payload:
                self._restart_rooms([int(r) for r in payload[RESTART]])
                return
            if "user" in payload:
                user_id, event = payload["user"], payload["event"]
                if not isinstance(user_id, int) or not isinstance(event, dict):
                    raise ValueError("bad user payload")
                self._deliver_user(user_id, event)
                return
            room_id, message_id, event = payload["room"], payload.get("id"), payload["event"]
            if not isinstance(room_id, int) or not isinstance(event, dict):
                raise ValueError("bad payload")
            if message_id is not None and not isinstance(message_id, int):
                raise ValueError("bad message id")
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("ignored a malformed fragment on the Redis channel")
            return
        try:
            self._deliver(room_id, message_id, event)
        except Exception:  # noqa: BLE001 - one bad delivery must not stop the subscriber
            log.exception("delivering a fragment failed")

    def _announce_missed(self) -> None:
        """A publish failed earlier: make every process's sockets catch up.

        If the Redis server was restarted in between (its run_id changed), every
        subscriber lost its connection and restarts its sockets anyway. Otherwise
        (a timeout, a network blip of this process only) the others never heard of
        the message, so tell them to reconnect and read it from the database.
        """
        rooms = sorted(self._missed.copy())  # copy(): atomic even outside gevent
        try:
            run_id = self._redis.info("server").get("run_id")
            if self._missed_run_id is None or self._missed_run_id == run_id:
                self._redis.publish(self._channel(RESTART), json.dumps({RESTART: rooms}))
        except redis.RedisError:
            return  # try again on the next tick
        self._missed.difference_update(rooms)

    def _restart_local(self) -> None:
        self._restart_rooms(None)

    def _restart_rooms(self, room_ids: list[int] | None) -> None:
        if self._restart is None:
            return
        try:
            self._restart(room_ids)
        except Exception:  # noqa: BLE001
            log.exception("restarting sockets of rooms %s failed", room_ids or "all")

    def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001, S110 - closing a broken connection
                pass

    def close(self) -> None:
        self._stop.set()
        self._close_pubsub()  # wakes the subscriber from its read
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(POLL_SECONDS + 1.0)
        self._sub_redis.close()
        self._redis.close()
        self._redis.connection_pool.disconnect()

    # --- shared state ---------------------------------------------------------------

    def _call(self, fn: Callable, default):
        """Run one Redis call; on failure log once and return ``default``."""
        try:
            result = fn()
        except redis.RedisError as exc:
            self._commands.lost(exc)
            return default
        self._commands.back()
        return result

    def _rate_key(self, key: str) -> str:
        return f"{self.prefix}rate:{key}"

    def allow(self, key: str, limit: int, window: float) -> bool:
        member = f"{time.time()}:{os.urandom(6).hex()}"
        result = self._call(lambda: self._allow(keys=[self._rate_key(key)], args=[limit, window, member]), 1)
        return bool(int(result))

    def hit(self, key: str, window: float) -> None:
        self.allow(key, 2**53, window)  # the same sliding-window log, never full

    def retry_after(self, key: str, limit: int, window: float) -> float:
        result = self._call(lambda: self._retry_after(keys=[self._rate_key(key)], args=[limit, window]), "0")
        return max(0.0, float(result))

    def forget(self, key: str) -> None:
        self._call(lambda: self._redis.delete(self._rate_key(key)), None)

    def generation(self, name: str) -> int:
        value = self._call(lambda: self._redis.get(f"{self.prefix}generation:{name}"), -1)
        return -1 if value == -1 else int(value or 0)

    def bump(self, name: str) -> None:
        self._call(lambda: self._redis.incr(f"{self.prefix}generation:{name}"), None)

    def presence_touch(self, room_id: int, conn_id: str, person: Person, ttl: float) -> None:
        who = json.dumps([person.user_id, person.username])
        self._call(lambda: self._touch(keys=self._keys("presence", room_id), args=[conn_id, who, ttl]), None)

    def presence_drop(self, room_id: int, conn_id: str) -> None:
        zset, who = self._keys("presence", room_id)
        self._call(lambda: self._redis.pipeline().zrem(zset, conn_id).hdel(who, conn_id).execute(), None)

    def present(self, room_id: int) -> list[Person]:
        entries = self._entries("presence", room_id)
        return sorted({p for p, _ in entries}, key=lambda p: (p.username.casefold(), p.user_id))

    def typing_touch(self, room_id: int, person: Person, ttl: float) -> None:
        who = json.dumps([person.user_id, person.username])
        member = str(person.user_id)
        self._call(lambda: self._touch(keys=self._keys("typing", room_id), args=[member, who, ttl]), None)

    def typing_drop(self, room_id: int, user_id: int) -> bool:
        zset, who = self._keys("typing", room_id)
        member = str(user_id)
        removed = self._call(lambda: self._redis.pipeline().zrem(zset, member).hdel(who, member).execute(), None)
        return bool(removed and removed[0])

    def typing(self, room_id: int) -> list[tuple[Person, float]]:
        return sorted(self._entries("typing", room_id), key=lambda t: t[0].username.casefold())

    def _entries(self, kind: str, room_id: int) -> list[tuple[Person, float]]:
        flat = self._call(lambda: self._live(keys=self._keys(kind, room_id)), [])
        out = []
        for i in range(0, len(flat) - 1, 2):
            try:
                user_id, username = json.loads(flat[i])
                out.append((Person(int(user_id), str(username)), float(flat[i + 1])))
            except (ValueError, TypeError):
                continue  # a member written by an incompatible version: ignore it
        return out
