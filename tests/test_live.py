"""Live rooms over a real gunicorn gevent server and real WebSocket clients."""

from __future__ import annotations

import json
import re
import socket
import time
import uuid

import pytest
import sqlalchemy as sa
import websocket

from . import services
from .conftest import TEST_DB, migrate_database
from .liveserver import Browser, LiveServer, change_of, changes, chatting, message_ids, socket_args

pytestmark = pytest.mark.live


def uniq(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def engine(live_database_url):
    engine = sa.create_engine(live_database_url)
    yield engine
    engine.dispose()


def stored(engine, room: str) -> list[tuple[int, str]]:
    with engine.connect() as c:
        return [
            tuple(r)
            for r in c.execute(
                sa.text(
                    "SELECT message.id, message.body FROM message JOIN room ON room.id = message.room_id "
                    "WHERE room.name = :n AND message.kind = 'user' ORDER BY message.id"
                ),
                {"n": room},
            )
        ]


@pytest.fixture
def pair(server):
    """alice owns a fresh room, bob has joined it; both have an open socket."""
    room, alice, bob, a, b = chatting(server, server, uniq)
    yield room, alice, bob, a, b
    a.close()
    b.close()


def test_two_users_chat_both_ways_and_rows_exist_before_delivery(pair, engine):
    room, _alice, _bob, a, b = pair
    a.send("hello from alice")
    frame = b.wait_for("hello from alice")
    assert frame.startswith('<div hx-swap-oob="afterbegin:#log-live">')
    [mid] = message_ids(frame)
    assert (mid, "hello from alice") in stored(engine, room)  # committed before it was pushed
    b.send("hi alice")
    a.wait_for("hi alice")


def test_sender_gets_a_fresh_form_and_everyone_the_same_bytes(pair):
    _room, _alice, _bob, a, b = pair
    a.send("same bytes for all")
    to_a = a.wait_for("same bytes for all")
    to_b = b.wait_for("same bytes for all")
    assert to_a == to_b  # rendered once, no per-reader HTML
    form = a.wait_for('<form id="composer"')
    assert 'hx-swap-oob="true"' in form and "autofocus" in form and 'value=""' in form


def test_system_message_is_pushed_when_someone_joins(pair, server):
    room, _alice, _bob, a, _b = pair
    carol_name = uniq("carol")
    Browser(server).signup(carol_name).enter(room)
    frame = a.wait_for(f"<bdi>{carol_name}</bdi> joined the room")
    assert 'class="msg msg-system"' in frame


def test_user_text_is_escaped_in_pushed_fragments(pair):
    _room, _alice, _bob, a, b = pair
    a.send("<script>alert(1)</script>")
    frame = b.wait_for("alert")
    assert "<script>" not in frame and "&lt;script&gt;alert(1)&lt;/script&gt;" in frame


def _refused(sock) -> tuple[int, str]:
    status = sock.wait_for('id="status"')
    return sock.wait_closed(), status


def test_logged_out_socket_is_refused(server):
    room = uniq("room")
    Browser(server).signup(uniq("owner")).create_room(room)
    code, status = _refused(Browser(server).socket(room))
    assert code == 1008 and "logged out" in status


def test_non_member_socket_is_refused(server):
    room = uniq("room")
    Browser(server).signup(uniq("owner")).create_room(room)
    stranger = Browser(server).signup(uniq("stranger"))
    code, status = _refused(stranger.socket(room))
    assert code == 1008 and "join it first" in status
    stranger.enter(room)  # membership is checked on every connect, not cached
    stranger.socket(room).wait_for('id="log-live"')


def test_foreign_origin_and_unknown_room_are_refused(server):
    room = uniq("room")
    owner = Browser(server).signup(uniq("owner")).create_room(room)
    code, status = _refused(owner.socket(room, origin="http://evil.example"))
    assert code == 1008 and "origin" in status
    code, status = _refused(owner.socket("no such room"))
    assert code == 1008 and "does not exist" in status
    owner.socket(room, origin=server.url).wait_for('id="log-live"')


BAD_FRAMES = [
    ("not json", "could not be read"),
    (json.dumps(["a", "list"]), "could not be read"),
    (json.dumps({"HEADERS": {}}), "message field is missing"),
    (json.dumps({"message": "   \n  "}), "Type a message"),
    (json.dumps({"message": 42}), "Type a message"),
    (json.dumps({"message": "x" * 4001}), "at most 4000 characters"),
    (json.dumps({"message": "y" * 40000}), "too large"),
    (b"\x00binary", "Binary frames"),
]


@pytest.mark.parametrize(("raw", "error"), BAD_FRAMES, ids=[e for _, e in BAD_FRAMES])
def test_bad_frames_get_an_error_for_the_sender_only_and_store_nothing(pair, engine, raw, error):
    room, _alice, _bob, a, b = pair
    before = stored(engine, room)
    a.send_raw(raw)
    frame = a.wait_for('id="composer-error"')
    assert error in frame and 'hx-swap-oob="true"' in frame
    a.send("still works")  # the socket survives a bad frame
    a.wait_for("still works")
    b.wait_for("still works")
    assert not any("composer-error" in f for f in b.frames)
    assert stored(engine, room) == before + [(stored(engine, room)[-1][0], "still works")]


def test_rate_limit_refuses_the_sixth_message_in_the_window(pair, engine):
    room, _alice, _bob, a, _b = pair  # the server allows 5 messages per 3 s
    for i in range(6):
        a.send(f"burst {i}")
    frame = a.wait_for("sending too fast")
    assert "composer-error" in frame
    assert [body for _, body in stored(engine, room)] == [f"burst {i}" for i in range(5)]


def test_reconnect_replays_missed_messages_once_in_order(pair):
    room, _alice, bob, a, b = pair
    a.send("seen live")
    last = message_ids(b.wait_for("seen live"))[0]
    b.close()
    sent = [f"missed {i}" for i in range(3)]
    for text in sent:
        a.send(text)
        a.wait_for(text)
    # htmx reconnects to the same URL: the id the page was rendered with.
    again = bob.socket(room, after=last)
    replay = again.wait_for('id="log-live" hx-swap-oob="innerHTML"')
    ids = message_ids(replay)
    assert ids == sorted(ids, reverse=True) and len(ids) == 3  # newest first, each once
    for text in sent:
        assert replay.count(text) == 1
    a.send("after reconnect")
    again.wait_for("after reconnect")
    # Reconnecting a second time replaces the live part again: nothing doubles.
    third = bob.socket(room, after=last)
    ids_again = message_ids(third.wait_for('id="log-live" hx-swap-oob="innerHTML"'))
    assert len(ids_again) == 4 and ids_again[1:] == ids and len(set(ids_again)) == 4
    again.close()
    third.close()


def presence_names(frame: str) -> list[str]:
    ul = re.search(r'<ul id="presence".*?</ul>', frame, re.S).group(0)
    return re.findall(r"<li[^>]*>([^<]+)</li>", ul)


def username(browser, room: str) -> str:
    return re.search(r'class="whoami">([^<]+)<', browser.enter(room)).group(1)


def wait_presence(sock, check, timeout: float = 6.0) -> list[str]:
    deadline = time.monotonic() + timeout
    names: list[str] = []
    while time.monotonic() < deadline:
        names = presence_names(sock.wait_for('id="presence"', timeout=max(0.1, deadline - time.monotonic())))
        if check(names):
            return names
    raise AssertionError(f"presence stayed {names}")


def test_presence_lists_people_once_and_drops_them_when_they_leave(pair):
    room, alice, bob, a, b = pair
    alice_name, bob_name = username(alice, room), username(bob, room)
    wait_presence(a, lambda names: sorted(names) == sorted([alice_name, bob_name]))
    second_tab = bob.socket(room)
    second_tab.wait_for('id="log-live"')
    assert sorted(wait_presence(a, lambda names: True)) == sorted([alice_name, bob_name])  # two tabs, one person
    b.close()
    # one tab still open: bob stays
    assert bob_name in wait_presence(a, lambda names: True)
    second_tab.close()
    assert wait_presence(a, lambda names: bob_name not in names) == [alice_name]


def test_typing_is_shown_to_others_and_expires(pair):
    room, alice, bob, a, b = pair
    bob_name, alice_name = username(bob, room), username(alice, room)
    b.typing()
    frame = a.wait_for('id="typing"')
    assert f"{bob_name} is typing" in frame and "typing-left-" in frame
    time.sleep(2.2)  # TYPING_TTL_SECONDS=2 on the test server
    a.typing()
    frame = b.wait_for(f'(?s)id="typing".*{alice_name} is typing')
    assert bob_name not in frame


def test_heartbeats_keep_the_status_live(pair):
    _room, _alice, _bob, a, _b = pair
    start = time.monotonic()
    a.wait_for('class="status status-live"')
    a.wait_for('class="status status-live"', timeout=3)  # HEARTBEAT_SECONDS=1
    assert time.monotonic() - start < 5


def test_a_reader_that_never_reads_is_dropped_while_others_keep_receiving(live_database_url, tmp_path):
    server = LiveServer(live_database_url, tmp_path, WS_QUEUE_FRAMES="100", RATE_LIMIT_COUNT="100000").start()
    try:
        room = uniq("room")
        alice = Browser(server).signup(uniq("alice")).create_room(room)
        stuck_user = Browser(server).signup(uniq("stuck"))
        stuck_name = username(stuck_user, room)
        a = alice.socket(room)
        stuck = stuck_user.socket(room)
        stuck.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.wait_for('id="log-live"')
        wait_presence(a, lambda names: stuck_name in names)
        seen = len(a.frames)
        # `stuck` never reads again; alice keeps chatting with big messages and must
        # get every one of them, while the server drops the stuck reader.
        body = "z" * 3900
        dropped_after = None
        for i in range(3000):
            a.send(f"{i} {body}")
            a.wait_for(f">{i} z")
            fresh, seen = a.frames[seen:], len(a.frames)
            if any(f.startswith('<ul id="presence"') and stuck_name not in f for f in fresh):
                dropped_after = i
                break
        assert dropped_after is not None, "the stuck reader was never dropped"
        a.send("after the drop")
        a.wait_for("after the drop")
        # What the stuck client finally reads ends in a close (1013) or a reset,
        # well before the last message.
        received, code = [], None
        try:
            while (frame := stuck.recv(timeout=5)) is not None:
                received += message_ids(frame)
            code = stuck.close_code
        except (OSError, websocket.WebSocketConnectionClosedException):
            code = "reset"
        assert code in (1013, "reset"), code
        assert "after the drop" not in "".join(stuck.frames)
    finally:
        server.stop()


def test_pings_are_answered_and_compression_is_not_negotiated(server):
    room = uniq("room")
    owner = Browser(server).signup(uniq("owner")).create_room(room)
    url = server.url.replace("http://", "ws://") + f"/ws/chat/{room}/?after=0"
    ws = websocket.create_connection(
        url,
        cookie=owner.cookie_header(),
        origin=server.url,
        header=["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"],
        timeout=5,
    )
    try:
        assert "sec-websocket-extensions" not in {k.lower() for k in ws.getheaders()}
        ws.ping(b"are you there")
        while True:
            opcode, data = ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_PONG:
                break
        assert data == b"are you there"
    finally:
        ws.close()


def test_database_outage_closes_sockets_with_a_retryable_code_and_says_why(tmp_path):
    """Sending during an outage gets an error, a new socket is told and closed with 1011
    (which htmx retries); nothing hangs and the server keeps serving."""
    if TEST_DB != "postgres":
        pytest.skip("an embedded SQLite file cannot go away under a running server; runs on PostgreSQL")
    url, db_name = services.create_pg_database()
    migrate_database(url)
    server = LiveServer(url, tmp_path).start()
    try:
        room = uniq("room")
        alice = Browser(server).signup(uniq("alice")).create_room(room)
        a = alice.socket(room)
        a.wait_for('id="log-live"')
        services.drop_pg_database(db_name)  # WITH (FORCE): pooled connections die too
        a.send("during the outage")
        assert "could not be saved" in a.wait_for('id="composer-error"')
        b = alice.socket(room)
        status = b.wait_for('id="status"')
        assert "cannot reach its database" in status and "status-retry" in status
        assert b.wait_closed() == 1011
        assert Browser(server).get("/login/")[0] == 200
    finally:
        server.stop()


def test_what_a_socket_showed_counts_as_read_in_the_room_list(pair):
    room, _alice, bob, a, b = pair
    a.send("seen live by bob")
    b.wait_for("seen live by bob")
    _status, page = bob.get("/")
    assert re.search(rf">{room}</bdi></span> <span class=\"unread\"", page), "unread while bob's socket is open"
    b.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and re.search(rf">{room}</bdi></span> <span class=\"unread\"", bob.get("/")[1]):
        time.sleep(0.1)
    assert not re.search(rf">{room}</bdi></span> <span class=\"unread\"", bob.get("/")[1])


def units_since(server, start: int, name: str) -> list:
    from .querybudget import read_log

    return [t for t in read_log(server.query_log)[start:] if t.name == name]


def wait_units(server, start: int, name: str, count: int, timeout: float = 5.0) -> list:
    from .querybudget import read_log

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = units_since(server, start, name)
        if len(found) >= count:
            return found
        time.sleep(0.05)
    raise AssertionError(f"no {name} unit in {[t.name for t in read_log(server.query_log)[start:]]}")


# A message over the socket: the room, the sender, the previous message, INSERT, UPDATE.
SOCKET_SEND = 5
# The catch-up on a (re)connect: one query for every missed message with its author;
# with the page's change number, one more for the messages of the page changed since.
CATCH_UP = 1
CATCH_UP_WITH_CHANGES = 2


def test_a_message_sent_over_the_socket_keeps_its_budget_with_one_commit(pair, server):
    from .querybudget import check, read_log

    _room, _alice, _bob, a, b = pair
    for i in range(3):  # the count does not grow with the room
        start = len(read_log(server.query_log))
        a.send(f"budget {i}")
        b.wait_for(f"budget {i}")
        [frame] = wait_units(server, start, "ws.frame", 1)
        check(frame, SOCKET_SEND, writes=True)
        assert frame.commits == 1
        # No row is read again after the commit: the last statement is the room's UPDATE.
        assert frame.statements[-1].lstrip().upper().startswith("UPDATE")


def test_the_catch_up_after_a_reconnect_is_one_query_for_any_number_of_messages(pair, server):
    from .querybudget import check, read_log

    room, _alice, bob, a, b = pair
    b.close()
    for i in range(4):  # the rate limit here is 5 per 3 s
        a.send(f"missed {i}")
        a.wait_for(f"missed {i}")
    start = len(read_log(server.query_log))
    again = bob.socket(room, after=0)
    replay = again.wait_for('id="log-live" hx-swap-oob="innerHTML"')
    assert len(message_ids(replay)) >= 6  # the room's system messages and the four
    [unit] = wait_units(server, start, "ws.catch_up", 1)
    check(unit, CATCH_UP, writes=False)
    again.close()


# --- messages that change -------------------------------------------------------------


def act(browser: Browser, room: str, message_id: int, action: str, **data) -> int:
    """A message's action over plain HTTP (a form with its CSRF token), as a page posts it."""
    page = browser.room_path(room)
    status, _ = browser.post(f"{page}messages/{message_id}/{action}", data, form_path=page)
    return status


def stored_row(engine, message_id: int) -> tuple:
    with engine.connect() as c:
        return tuple(
            c.execute(
                sa.text(
                    "SELECT body, edited_at IS NOT NULL, deleted_at IS NOT NULL, reactions FROM message WHERE id = :i"
                ),
                {"i": message_id},
            ).one()
        )


def test_edits_reactions_and_deletions_reach_the_other_reader_in_place(pair, engine):
    room, alice, bob, a, b = pair
    a.send("helo there")
    [mid] = message_ids(b.wait_for("helo there"))
    assert act(alice, room, mid, "edit", message="hello there") == 200
    frame = b.wait_for(change_of(mid))
    assert stored_row(engine, mid)[:2] == ("hello there", True)  # committed before anyone saw it
    inside = changes(frame)[mid]
    assert "hello there" in inside and ">edited</span>" in inside and "<article" not in inside
    assert a.wait_for(change_of(mid)) == frame  # the same bytes for the same view

    assert act(bob, room, mid, "reactions", emoji="🎉") == 200
    inside = changes(a.wait_for(change_of(mid)))[mid]
    bob_id = json.loads(stored_row(engine, mid)[3])[0][1][0][0]
    assert f'value="🎉" data-by="{bob_id}"' in inside and '<span class="reaction-count">1</span>' in inside
    b.wait_for(change_of(mid))

    assert act(alice, room, mid, "delete") == 200
    for sock in (a, b):
        assert changes(sock.wait_for(change_of(mid)))[mid] == ""  # emptied: hidden by CSS
    assert stored_row(engine, mid)[0] == ""


def test_a_reply_over_the_socket_quotes_its_original_and_follows_its_changes(pair, engine):
    room, alice, _bob, a, b = pair
    a.send("Lunch at noon?")
    [mid] = message_ids(b.wait_for("Lunch at noon"))
    b.send("Yes, see you there", reply_to=mid)
    frame = a.wait_for("see you there")
    assert f'<a class="quote quote-of-{mid}" href="#m-{mid}">' in frame and "Lunch at noon?" in frame
    assert b.wait_for('<form id="composer"')  # the sender's composer, fresh: no reply any more
    assert 'name="reply_to"' not in b.frames[-1]
    # The original changes: every quote of it changes with it, in the same frame.
    assert act(alice, room, mid, "edit", message="Lunch at one?") == 200
    frame = b.wait_for(rf"innerHTML:\.quote-of-{mid},#oob-sink")
    assert "Lunch at one?" in frame.split(f"innerHTML:.quote-of-{mid}")[1]
    assert act(alice, room, mid, "delete") == 200
    frame = b.wait_for(rf"innerHTML:\.quote-of-{mid},#oob-sink")
    assert "The original message was deleted." in frame and "Lunch" not in frame


def test_a_reply_to_a_message_of_another_room_over_the_socket_is_refused(pair, engine, server):
    room, _alice, bob, a, b = pair
    other = uniq("other")
    Browser(server).signup(uniq("owner")).create_room(other)
    elsewhere = max(message_ids(bob.enter(other)))  # bob joins it: its join message
    before = stored(engine, room)
    for target in (elsewhere, "abc", 10**30):
        b.send("my answer", reply_to=target)
        frame = b.wait_for('id="composer-error"')
        assert "You can only reply to a message of this room." in frame
    assert stored(engine, room) == before
    assert not any("composer-error" in f for f in a.frames)


def test_a_reader_who_was_away_gets_the_changes_to_the_messages_of_their_page(pair, server, engine):
    from .querybudget import check, read_log

    room, alice, bob, a, b = pair
    a.send("uno draft")
    [first] = message_ids(b.wait_for("uno draft"))
    b.send("dos to delete")
    [second] = message_ids(a.wait_for("dos to delete"))
    b.send("tres to react to")
    [third] = message_ids(a.wait_for("tres to react to"))
    after, seq = socket_args(bob.enter(room))  # bob's page, as htmx will reconnect with it
    assert after == third
    b.close()  # bob's connection drops; meanwhile:
    assert act(alice, room, first, "edit", message="uno final") == 200
    assert act(alice, room, second, "delete") == 200  # the owner deletes bob's message
    assert act(alice, room, third, "reactions", emoji="👍") == 200
    a.send("cuatro")
    [fourth] = message_ids(a.wait_for("cuatro"))
    assert act(alice, room, fourth, "edit", message="cuatro edited") == 200

    start = len(read_log(server.query_log))
    again = bob.socket(room, after=after, seq=seq)
    frame = again.wait_for('id="log-live" hx-swap-oob="innerHTML"')
    found = changes(frame)
    assert list(found) == [first, second, third]  # in the order they changed, each once
    assert "uno final" in found[first] and ">edited</span>" in found[first]
    assert found[second] == ""
    assert 'value="👍"' in found[third] and "tres to react to" in found[third]
    live_part = frame.split('id="log-live"')[1].split("</div>\n<div hx-swap-oob")[0]
    assert message_ids(live_part) == [fourth] and "cuatro edited" in live_part  # newer: as it is now
    [unit] = wait_units(server, start, "ws.catch_up", 1)
    check(unit, CATCH_UP_WITH_CHANGES, writes=False)
    # A reconnect is the same again (htmx reconnects with the page's URL every time).
    assert changes(bob.socket(room, after=after, seq=seq).wait_for('id="log-live"')) == found
    # A page rendered after the changes gets none of them.
    now_after, now_seq = socket_args(bob.enter(room))
    fresh = bob.socket(room, after=now_after, seq=now_seq).wait_for('id="log-live"')
    assert changes(fresh) == {} and now_seq == seq + 4
    again.close()


def test_too_many_changes_while_away_ask_for_a_reload(live_database_url, tmp_path):
    server = LiveServer(live_database_url, tmp_path, WS_REPLAY_LIMIT="2").start()
    try:
        room = uniq("room")
        alice = Browser(server).signup(uniq("alice")).create_room(room)
        a = alice.socket(room)
        a.wait_for('id="log-live"')
        ids = []
        for word in ("alpha", "beta", "gamma"):
            a.send(word)
            ids += message_ids(a.wait_for(word))
        after, seq = socket_args(alice.enter(room))
        for mid in ids:
            assert act(alice, room, mid, "reactions", emoji="👀") == 200
        frame = alice.socket(room, after=after, seq=seq).wait_for('id="log-live"')
        assert "Messages on this page changed while you were away." in frame and changes(frame) == {}
        a.close()
    finally:
        server.stop()
