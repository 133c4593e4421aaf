"""Know what is new: the live room list (its own socket, or beside a room), the unread
total in the title, the "New messages" divider."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from .conftest import create_room, csrf_token, signup
from .liveserver import Browser, ListSocket

pytestmark = pytest.mark.live


def uniq(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def test_the_list_socket_moves_a_room_with_news_up_and_counts_it(server):
    room, quiet = uniq("busy"), uniq("quiet")
    alice = Browser(server).signup(uniq("alice")).create_room(room)
    bob = Browser(server).signup(uniq("bob"))
    bob.enter(room)  # joins: the room's newest activity
    bob.create_room(quiet)  # newer still
    carol = Browser(server).signup(uniq("carol"))  # in neither room
    bob_list, carol_list = ListSocket(bob), ListSocket(carol)
    first = bob_list.wait_for('id="room-list"')  # the whole list, as of this (re)connect
    assert first.index(quiet) < first.index(room)  # bob's own room had the latest activity
    carol_list.wait_for('id="room-list"')
    sender = alice.socket(room)
    for i in range(5):
        sender.send(f"news {i}")
    update = bob_list.wait_for(r'hx-swap-oob="afterbegin:#room-list"', timeout=3)
    started = time.monotonic()
    assert 'id="room-' in update and room in update
    assert re.search(r'class="unread"[^>]*>(\d+)<', update)
    # Coalesced: five messages, at most one more update within the next second.
    more = []
    while time.monotonic() - started < 1.2:
        try:
            frame = bob_list.recv(timeout=0.3)
        except Exception:  # noqa: BLE001, S112 - a read timeout: nothing came
            continue
        if frame and "afterbegin:#room-list" in frame:
            more.append(frame)
    assert len(more) <= 1
    final = (more or [update])[-1]
    assert re.search(r'class="unread"[^>]*>5<', final), final
    assert "unread=5" in final  # the title follows
    # carol is in neither room: her list hears nothing of it.
    with pytest.raises(Exception):  # noqa: B017,PT011 - a read timeout
        carol_list.wait_for("news", timeout=1.5)
    for s in (bob_list, carol_list, sender):
        s.close()


def test_title_echoes_the_count_for_the_page(client):
    signup(client)
    assert "<title>(3) lobby · webchat</title>" in client.get("/title/?unread=3&room=lobby").get_data(as_text=True)
    assert "<title>Rooms · webchat</title>" in client.get("/title/?unread=0").get_data(as_text=True)
    assert client.get("/title/?unread=x").status_code == 400


def test_new_messages_divider_and_unread_title(app, client):
    signup(client, "alice")
    create_room(client, "general")
    bob = app.test_client()
    signup(bob, "bob")
    bob.get("/room/general/")
    token = csrf_token(client.get("/room/general/").get_data(as_text=True))
    for i in range(3):
        client.post("/room/general/", data={"message": f"for bob {i}", "csrf_token": token})
    listing = bob.get("/").get_data(as_text=True)
    assert "<title>(3) Rooms · webchat</title>" in listing
    assert 'href="/room/general/#new"' in listing
    page = bob.get("/room/general/").get_data(as_text=True)
    log = page.split('<div id="log"', 1)[1]
    # newest first in the DOM: the divider follows the oldest unread, i.e. sits above it
    assert re.search(r"for bob 0</bdi>.*?</article><p id=\"new\" class=\"new-divider\"", log, re.S)
    assert log.index("for bob 2") < log.index('id="new"')
    again = bob.get("/room/general/").get_data(as_text=True)
    assert 'id="new"' not in again  # read now


def test_a_mention_shows_as_its_own_badge_in_the_live_list(server):
    room = uniq("ping")
    alice = Browser(server).signup(uniq("alice")).create_room(room)
    bob_name = uniq("bob")
    bob = Browser(server).signup(bob_name)
    bob.enter(room)
    bob_list = ListSocket(bob)
    bob_list.wait_for('id="room-list"')
    alice.socket(room).send(f"@{bob_name} look")
    update = bob_list.wait_for('class="mention-badge"', timeout=3)
    assert re.search(r'class="mention-badge"[^>]*>@1<', update)
    bob_list.close()
