"""The broker contract, run against both brokers; then how the Redis broker survives Redis.

Redis tests use the machine's Redis with a key prefix of their own (and delete only
their own keys), or a private redis-server on a free port when they stop or pause it.
"""

from __future__ import annotations

import logging
import queue
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import redis

from webchat.live.broker import Broker, MemoryBroker, Person
from webchat.live.redis_broker import RedisBroker

from . import services
from .liveserver import free_port

ALICE, BOB = Person(1, "alice"), Person(2, "Bob")


class OwnRedis:
    """A private redis-server on a free port that a test may stop, restart or pause.

    Never the machine's shared Redis: stopping that would break everybody else.
    """

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.dir = tmp_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> OwnRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            services.missing("redis-server", FileNotFoundError("redis-server is not on PATH"))
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)


def delete_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete this test's keys, and only them."""
    keys = list(client.scan_iter(match=prefix.replace("*", r"\*") + "*", count=500))
    if keys:
        client.delete(*keys)


def unique_prefix() -> str:
    return f"webchat-test:{uuid.uuid4().hex[:10]}:"


class Inbox:
    """A listener that a test can wait on."""

    def __init__(self) -> None:
        self.items: queue.Queue[tuple[int, int | None, str]] = queue.Queue()

    def __call__(self, room_id: int, message_id: int | None, html: str) -> None:
        self.items.put((room_id, message_id, html))

    def get(self, timeout: float = 5.0) -> tuple[int, int | None, str]:
        return self.items.get(timeout=timeout)

    def empty_after(self, seconds: float) -> bool:
        try:
            self.items.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture(params=["memory", "redis"])
def broker(request):
    if request.param == "memory":
        yield MemoryBroker()
        return
    client = services.redis_or_skip()
    prefix = unique_prefix()
    b = RedisBroker(services.REDIS_URL, prefix)
    yield b
    b.close()
    delete_prefix(client, prefix)
    client.close()


def listen(broker: Broker, restart=None) -> Inbox:
    inbox = Inbox()
    broker.listen(inbox, restart)
    if isinstance(broker, RedisBroker):
        assert broker.wait_subscribed(5), "no Redis subscription"
    return inbox


# --- the contract --------------------------------------------------------------------


def test_publish_reaches_the_listener_intact(broker):
    inbox = listen(broker)
    event = {"kind": "message", "m": [42, 1, "名字", '你好 "quoted" &amp; \u2028 emoji 🎉', "user", None, "2024"]}
    broker.publish(7, event, message_id=42)
    broker.publish(8, {"kind": "presence", "people": []})
    assert inbox.get() == (7, 42, event)
    assert inbox.get() == (8, None, {"kind": "presence", "people": []})


def test_allow_counts_and_blocks_over_the_limit(broker):
    key = f"rate:{uuid.uuid4().hex}"
    assert [broker.allow(key, 3, 0.6) for _ in range(4)] == [True, True, True, False]
    assert broker.allow(key + "-other", 3, 0.6), "limits are per key"
    time.sleep(0.7)
    assert broker.allow(key, 3, 0.6), "the window slides"


def test_throttle_counts_hits_and_says_how_long_to_wait(broker):
    key = f"login:user:{uuid.uuid4().hex}"
    assert broker.retry_after(key, 3, 0.8) == 0
    broker.hit(key, 0.8)
    broker.hit(key, 0.8)
    assert broker.retry_after(key, 3, 0.8) == 0, "two hits, limit three: not yet"
    broker.hit(key, 0.8)
    wait = broker.retry_after(key, 3, 0.8)
    assert 0.5 < wait <= 0.8
    assert 0.4 < broker.retry_after(key, 3, 0.8) <= wait, "asking counts nothing"
    assert broker.retry_after(key + "-other", 3, 0.8) == 0, "counts are per key"
    time.sleep(wait + 0.05)
    assert broker.retry_after(key, 3, 0.8) == 0, "the window slides"


def test_throttle_wait_lasts_until_enough_old_hits_expire(broker):
    key = f"login:addr:{uuid.uuid4().hex}"
    broker.hit(key, 1.0)
    time.sleep(0.4)
    broker.hit(key, 1.0)
    broker.hit(key, 1.0)  # three hits, limit two: the two oldest must go, the second at +0.4 s
    assert 0.85 < broker.retry_after(key, 2, 1.0) <= 1.0
    assert 0.4 < broker.retry_after(key, 3, 1.0) <= 0.6, "with limit three only the oldest must go"


def test_forget_clears_one_key(broker):
    key = f"login:user:{uuid.uuid4().hex}"
    for k in (key, key + "-kept"):
        broker.hit(k, 60)
    broker.forget(key)
    assert broker.retry_after(key, 1, 60) == 0
    assert broker.retry_after(key + "-kept", 1, 60) > 59


def test_generations_move_when_bumped_and_are_per_name(broker):
    name = f"deactivated-{uuid.uuid4().hex}"
    assert broker.generation(name) == 0
    broker.bump(name)
    broker.bump(name)
    assert broker.generation(name) == 2
    assert broker.generation(name + "-other") == 0


def test_presence_counts_people_not_connections(broker):
    broker.presence_touch(1, "c1", ALICE, 30)
    broker.presence_touch(1, "c2", ALICE, 30)  # a second tab
    broker.presence_touch(1, "c3", BOB, 30)
    broker.presence_touch(2, "c4", BOB, 30)
    assert broker.present(1) == [ALICE, BOB]
    broker.presence_drop(1, "c1")
    assert broker.present(1) == [ALICE, BOB], "alice's other tab is still open"
    broker.presence_drop(1, "c2")
    assert broker.present(1) == [BOB]
    assert broker.present(2) == [BOB]
    assert broker.present(3) == []


def test_presence_expires_without_heartbeats(broker):
    broker.presence_touch(1, "c1", ALICE, 0.3)
    broker.presence_touch(1, "c2", BOB, 30)
    assert broker.present(1) == [ALICE, BOB]
    time.sleep(0.45)
    assert broker.present(1) == [BOB]
    broker.presence_touch(1, "c1", ALICE, 0.3)  # a heartbeat brings the connection back
    assert broker.present(1) == [ALICE, BOB]


def test_typing_expires(broker):
    broker.typing_touch(1, ALICE, 0.3)
    broker.typing_touch(1, BOB, 5)
    typers = broker.typing(1)
    assert [p for p, _ in typers] == [ALICE, BOB]
    assert 0 < typers[0][1] <= 0.3 and 4 < typers[1][1] <= 5
    time.sleep(0.45)
    assert [p for p, _ in broker.typing(1)] == [BOB]
    assert broker.typing_drop(1, BOB.user_id) is True  # others must hear bob stopped
    assert broker.typing(1) == []
    assert broker.typing_drop(1, BOB.user_id) is False  # nothing to tell: no fragment


# --- the Redis broker when Redis misbehaves ------------------------------------------


def _records(caplog, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records)


@pytest.fixture
def broker_log(caplog):
    # Alembic's fileConfig (any migration run earlier in this process) disables loggers
    # that already exist, ours included.
    logger = logging.getLogger("webchat.live.redis_broker")
    logger.disabled = False
    caplog.set_level(logging.WARNING, logger=logger.name)
    return caplog


def test_redis_broker_fails_soft_when_redis_is_down(broker_log):
    b = RedisBroker(f"redis://127.0.0.1:{free_port()}/0", unique_prefix())
    inbox = Inbox()
    b.listen(inbox)
    try:
        for _ in range(3):
            assert b.allow("rate:1", 1, 10) is True
            b.presence_touch(1, "c1", ALICE, 30)
            assert b.present(1) == []
            b.typing_touch(1, ALICE, 5)
            assert b.typing(1) == []
            b.presence_drop(1, "c1")
            b.hit("login:user:alice", 900)  # throttles fail open: the password check still stands
            assert b.retry_after("login:user:alice", 1, 900) == 0
            b.forget("login:user:alice")
            b.bump("deactivated")
            assert b.generation("deactivated") == -1  # unknown: keep what you have
        b.publish(1, {"kind": "note", "text": "stored already"}, message_id=5)
        assert inbox.get(1) == (1, 5, {"kind": "note", "text": "stored already"}), "local sockets still get it"
        assert _records(broker_log, "Redis commands failing") == 1, "logged once, not per call"
    finally:
        b.close()


@pytest.fixture
def own_redis(tmp_path):
    server = OwnRedis(tmp_path).start()
    yield server
    server.stop()


def test_redis_broker_resubscribes_after_a_redis_restart(own_redis, broker_log):
    b = RedisBroker(own_redis.url, unique_prefix())
    restarts: list[float] = []
    rooms_missed: list[list[int]] = []

    def restart(room_ids):
        if room_ids is None:
            restarts.append(time.monotonic())
        else:
            rooms_missed.append(room_ids)

    inbox = listen(b, restart)
    try:
        assert len(restarts) == 1, "the first subscription also restarts (sockets may have joined before it)"
        own_redis.stop()
        b.publish(3, {"kind": "note", "text": "while down"}, message_id=9)
        assert inbox.get(1) == (3, 9, {"kind": "note", "text": "while down"})
        own_redis.start()
        deadline = time.monotonic() + 10
        while len(restarts) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(restarts) == 2, "no resubscription after Redis came back"
        b.publish(3, {"kind": "note", "text": "after"}, message_id=10)
        assert inbox.get() == (3, 10, {"kind": "note", "text": "after"}), "published through Redis again"
        # Redis restarted (new run_id): every subscriber restarted already, no announcement.
        assert inbox.empty_after(1.5) and rooms_missed == []
        assert _records(broker_log, "Redis subscription lost") == 1
        assert _records(broker_log, "Redis subscription is back") == 1
    finally:
        b.close()


def test_a_publish_lost_while_redis_stayed_up_makes_the_room_catch_up(own_redis):
    """A timeout on one process only: the others reconnect that room's sockets."""
    prefix = unique_prefix()
    sender = RedisBroker(own_redis.url, prefix, socket_timeout=0.2)
    other = RedisBroker(own_redis.url, prefix)
    missed = threading.Event()
    rooms: list[list[int]] = []
    sender_inbox = listen(sender)
    listen(other, lambda ids: ids is not None and (rooms.append(ids), missed.set()))
    try:
        admin = own_redis.client()
        admin.execute_command("CLIENT", "PAUSE", "1000", "WRITE")  # PUBLISH now blocks: a timeout
        sender.publish(4, {"kind": "note", "text": "lost"}, message_id=11)
        assert sender_inbox.get(1) == (4, 11, {"kind": "note", "text": "lost"})
        assert missed.wait(5), "the other process was not told"
        assert rooms == [[4]]
        admin.close()
    finally:
        sender.close()
        other.close()
