"""Several server processes behind one Redis and one database, and what happens when
Redis or the database goes away. Real gunicorn servers, real sockets, no mocks."""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from . import services
from .conftest import TEST_DB, migrate_database
from .liveserver import Browser, LiveServer, Socket, message_ids
from .test_broker import OwnRedis, delete_prefix

pytestmark = pytest.mark.live

HEARTBEAT, PRESENCE_TTL = 1.0, 3.0
PRESENCE_RE = re.compile(r'<ul id="presence".*?</ul>', re.S)
WS_AFTER_RE = re.compile(r'ws-connect="[^"]*[?&]after=(\d+)')


def name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def start_server(database_url: str, tmp_path: Path, label: str, redis_url: str, prefix: str) -> LiveServer:
    folder = tmp_path / label
    folder.mkdir()
    return LiveServer(
        database_url, folder, REDIS_URL=redis_url, REDIS_KEY_PREFIX=prefix,
        HEARTBEAT_SECONDS=str(HEARTBEAT), PRESENCE_TTL_SECONDS=str(PRESENCE_TTL),
    ).start()  # fmt: skip


def page_after_id(page: str) -> int:
    """The id the page's socket URL carries: what htmx reconnects with, every time."""
    match = WS_AFTER_RE.search(page)
    assert match, "the room page has no ws-connect URL with after="
    return int(match.group(1))


def wait_presence(sock: Socket, present: set[str], absent: set[str] = frozenset(), timeout: float = 5.0) -> None:
    """Read frames until one lists everybody in ``present`` and nobody in ``absent``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        frame = sock.recv(max(0.05, deadline - time.monotonic()))
        assert frame is not None, f"socket closed ({sock.close_code})"
        match = PRESENCE_RE.search(frame)
        if match:
            last = match.group(0)
            if all(p in last for p in present) and not any(a in last for a in absent):
                return
    raise AssertionError(f"presence never showed {present} without {absent}; last: {last}")


def final_log(frames: list[str]) -> list[int]:
    """The message ids the page's live log holds after applying ``frames`` like htmx."""
    log: list[int] = []
    for frame in frames:
        if 'id="log-live"' in frame and 'hx-swap-oob="innerHTML"' in frame:
            log = message_ids(frame)  # the catch-up frame replaces the live log
        elif "afterbegin:#log-live" in frame:
            log = message_ids(frame) + log
    return log


@pytest.fixture
def redis_prefix():
    client = services.redis_or_skip()
    prefix = f"webchat-test:{uuid.uuid4().hex[:10]}:"
    yield prefix
    delete_prefix(client, prefix)
    client.close()


def test_two_servers_share_rooms_and_presence(live_database_url, tmp_path, redis_prefix):
    a_srv = start_server(live_database_url, tmp_path, "a", services.REDIS_URL, redis_prefix)
    b_srv = start_server(live_database_url, tmp_path, "b", services.REDIS_URL, redis_prefix)
    try:
        room, alice_name, bob_name = name("room"), name("alice"), name("bob")
        alice = Browser(a_srv).signup(alice_name).create_room(room)
        bob = Browser(b_srv).signup(bob_name)
        bob.enter(room)
        a, b = alice.socket(room), bob.socket(room)
        a.wait_for('id="status"')
        b.wait_for('id="status"')

        a.send("hello from server A")
        frame = b.wait_for("hello from server A")
        assert len(message_ids(frame)) == 1
        b.send("hello from server B")
        a.wait_for("hello from server B")

        wait_presence(a, {alice_name, bob_name})
        wait_presence(b, {alice_name, bob_name})

        b_srv.kill()  # no clean close: bob's presence entry just stops being refreshed
        killed = time.monotonic()
        wait_presence(a, {alice_name}, {bob_name}, timeout=PRESENCE_TTL + HEARTBEAT + 4)
        gone_after = time.monotonic() - killed
        # Expiry plus one heartbeat, plus the presence cache (1 s) and scheduling slack.
        assert gone_after <= PRESENCE_TTL + HEARTBEAT + 2, gone_after
        a.close()
        b.close()
    finally:
        a_srv.stop()
        b_srv.stop()


def test_messages_survive_a_redis_restart_exactly_once(live_database_url, tmp_path):
    """Alice on server A, Bob on server B, one private Redis that restarts mid-conversation."""
    own = OwnRedis(tmp_path).start()
    prefix = "webchat-test:restart:"
    a_srv = b_srv = None
    try:
        a_srv = start_server(live_database_url, tmp_path, "a", own.url, prefix)
        b_srv = start_server(live_database_url, tmp_path, "b", own.url, prefix)
        room = name("room")
        alice = Browser(a_srv).signup(name("alice")).create_room(room)
        bob = Browser(b_srv).signup(name("bob"))
        a_after, b_after = page_after_id(alice.enter(room)), page_after_id(bob.enter(room))
        a, b = alice.socket(room, after=a_after), bob.socket(room, after=b_after)
        a.wait_for('id="status"')
        b.wait_for('id="status"')

        a.send("before from alice")
        b.wait_for("before from alice")
        b.send("before from bob")
        a.wait_for("before from bob")

        own.stop()
        # Stored and shown to the sender (and its own server's sockets) while Redis is down.
        a.send("during from alice")
        a.wait_for("during from alice")
        b.send("during from bob")
        b.wait_for("during from bob")

        own.start()
        # Each server resubscribes and closes its sockets with 1012 ("service restart").
        assert a.wait_closed(10) == 1012
        assert b.wait_closed(10) == 1012
        # htmx reconnects to the page's original URL, with the page's original id.
        a2, b2 = alice.socket(room, after=a_after), bob.socket(room, after=b_after)
        a2.wait_for('id="log-live"')
        b2.wait_for('id="log-live"')
        a2.send("after from alice")
        b2.wait_for("after from alice")
        a2.wait_for("after from alice")
        b2.send("after from bob")
        a2.wait_for("after from bob")
        b2.wait_for("after from bob")

        _, page = alice.get(alice.room_path(room))  # what the database holds
        stored = {int(m[1]): m[0] for m in re.finditer(r'<article id="m-(\d+)".*?</article>', page, re.S)}
        texts = [f"{when} from {who}" for when in ("before", "during", "after") for who in ("alice", "bob")]
        for text in texts:
            assert sum(text in body for body in stored.values()) == 1, f"{text!r} not stored once"
        for frames, after in ((a.frames + a2.frames, a_after), (b.frames + b2.frames, b_after)):
            log = final_log(frames)
            duplicates = [i for i, n in Counter(log).items() if n > 1]
            assert not duplicates, f"shown twice: {duplicates}"
            assert sorted(log) == sorted(i for i in stored if i > after)
        for s in (a2, b2):
            s.close()
        for srv in (a_srv, b_srv):
            text = srv.log_path.read_text()
            assert text.count("Redis subscription lost") == 1, "logged once per outage"
            assert text.count("Redis subscription is back") == 1
    finally:
        for srv in (a_srv, b_srv):
            if srv is not None:
                srv.stop()
        own.stop()


def test_database_outage_gives_a_try_again_page(tmp_path):
    """A database that goes away answers 503 "try again", not a stack trace or a bare 500."""
    if TEST_DB == "postgres":
        url, db_name = services.create_pg_database()
        migrate_database(url)
    else:  # SQLite cannot "go away" under a running server; make it unopenable instead
        url, db_name = f"sqlite:///{tmp_path / 'missing' / 'db.sqlite3'}", None
    # Not APP_ENV=testing: TESTING propagates exceptions past the app's error pages.
    server = LiveServer(url, tmp_path, APP_ENV="development").start()
    try:
        user = Browser(server)
        if db_name:
            user.signup(name("dora"))
            services.drop_pg_database(db_name)  # WITH (FORCE): pooled connections die too
            status, page = user.get("/")
        else:
            form = {"username": "dora", "password": "pw12345678", "confirm": "pw12345678"}
            status, page = user.post("/signup/", form)
        assert status == 503, page[-2000:]
        assert "try again" in page.lower() and "Traceback" not in page
        assert Browser(server).get("/login/")[0] == 200, "pages that need no database still work"
    finally:
        server.stop()


def pg_connections(database: str) -> int:
    import psycopg

    with psycopg.connect(services.PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [database]).fetchone()[0]


def test_open_sockets_hold_no_database_connection(live_database_url, tmp_path):
    """With a pool of ONE connection (PostgreSQL), four open sockets still chat and pages load.

    Under SQLite the pool settings do not apply and this only checks the chat works.
    """
    server = LiveServer(live_database_url, tmp_path, DB_POOL_SIZE="1", DB_MAX_OVERFLOW="0", DB_POOL_TIMEOUT="2").start()
    try:
        room = name("room")
        alice = Browser(server).signup(name("alice")).create_room(room)
        bob = Browser(server).signup(name("bob"))
        bob.enter(room)
        sockets = [alice.socket(room), alice.socket(room), alice.socket(room), bob.socket(room)]
        for s in sockets:
            s.wait_for('id="status"')
        for i, s in enumerate(sockets):
            s.send(f"pooled {i}")
            for other in sockets:
                other.wait_for(f"pooled {i}")
        status, page = alice.get(alice.room_path(room))
        assert status == 200 and "pooled 3" in page
        if TEST_DB == "postgres":  # the server really ran on one connection
            assert pg_connections(live_database_url.rsplit("/", 1)[1]) <= 1
        for s in sockets:
            s.close()
    finally:
        server.stop()


def test_changes_to_messages_reach_every_server_and_its_catch_up(live_database_url, tmp_path, redis_prefix):
    """An edit made on server A reaches Bob's socket on server B, a reaction made on B
    reaches Alice's on A, and Bob, back on the other server after a drop, catches up."""
    from .liveserver import change_of, changes, chatting, socket_args
    from .test_live import act

    a_srv = start_server(live_database_url, tmp_path, "a", services.REDIS_URL, redis_prefix)
    b_srv = start_server(live_database_url, tmp_path, "b", services.REDIS_URL, redis_prefix)
    try:
        room, alice, bob, a, b = chatting(a_srv, b_srv, name)
        a.send("shared draft")
        [mid] = message_ids(b.wait_for("shared draft"))

        assert act(alice, room, mid, "edit", message="shared final") == 200  # on server A
        assert "shared final" in changes(b.wait_for(change_of(mid)))[mid]
        assert act(bob, room, mid, "reactions", emoji="❤️") == 200  # on server B
        assert 'value="❤️"' in changes(a.wait_for(rf'(?s){change_of(mid)}.*value="❤️"'))[mid]

        after, seq = socket_args(bob.enter(room))
        b.close()
        assert act(alice, room, mid, "edit", message="shared, once more") == 200
        # Bob's browser reconnects through the load balancer: server A this time.
        bob_on_a = Browser(a_srv)
        bob_on_a.jar = bob.jar
        again = bob_on_a.socket(room, after=after, seq=seq)
        assert "shared, once more" in changes(again.wait_for('id="log-live"'))[mid]
        assert act(alice, room, mid, "delete") == 200
        assert changes(again.wait_for(change_of(mid)))[mid] == ""
        for s in (a, again):
            s.close()
    finally:
        a_srv.stop()
        b_srv.stop()
