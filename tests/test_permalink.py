"""Permalinks: /room/<name>/?around=<id> opens a room's history centred on one message,
with paging both ways; every message's time links to it."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Membership, User

from .conftest import create_room, post_form, signup
from .test_history import INVALID_IDS, PAGE, add_messages, is_live, link, query, shown, text


@pytest.fixture
def alice(client):
    signup(client, "alice")
    create_room(client, "general")
    return client


def around(client, message_id: int, room: str = "general"):
    return client.get(f"/room/{room}/?around={message_id}")


def test_a_permalink_opens_the_page_centred_on_its_message(app, alice):
    ids = add_messages(app, 130)
    target = ids[60]
    page = text(around(alice, target))
    # About half a page older (the message itself included) and half a page newer.
    assert shown(page) == ids[60 - PAGE // 2 + 1 : 60 + PAGE // 2 + 1][::-1]
    assert target in shown(page) and len(shown(page)) == PAGE
    assert not is_live(page)  # history: newer messages exist
    assert query(link(page, "older")) == {"before": [str(ids[60 - PAGE // 2 + 1])]}
    assert query(link(page, label="Newer messages")) == {"after": [str(ids[60 + PAGE // 2])]}
    assert link(page, label="Latest") == "/room/general/"


def test_paging_both_ways_from_a_permalink_covers_the_room_and_turns_live(app, alice):
    ids = add_messages(app, 130)
    start = text(around(alice, ids[60]))
    older, url = list(shown(start)), link(start, "older")
    while url:  # the no-JS "older" link, as infinite scroll asks for it too
        page = text(alice.get(url))
        older += shown(page)
        url = link(page, "older")
    assert older == ids[: 60 + PAGE // 2 + 1][::-1]
    newer, url, page = [], link(start, label="Newer messages"), start
    while url:
        page = text(alice.get(url))
        assert newer == [] or shown(page)[-1] > newer[0]
        newer = shown(page) + newer
        url = link(page, label="Newer messages")
    assert sorted(newer) == ids[60 + PAGE // 2 + 1 :]
    assert is_live(page)  # reached the newest end: the page turns live


def test_a_permalink_to_one_of_the_newest_messages_is_live_and_marks_them_read(app, alice):
    ids = add_messages(app, 60)
    bob = app.test_client()
    signup(bob, "bob")
    assert bob.get("/room/general/?before=2").status_code == 200  # joins without reading the newest
    with app.app_context():
        bob_id = db.session.execute(select(User.id).filter_by(username="bob")).scalar_one()
        mine = db.session.execute(select(Membership).filter_by(user_id=bob_id)).scalar_one()
        joined_at = mine.last_read_message_id
    page = text(around(bob, ids[-5]))
    assert is_live(page) and link(page, label="Newer messages") is None
    newest = shown(page)[0]
    assert re.search(rf"/ws/chat/general/\?after={newest}", page)
    with app.app_context():
        marker = db.session.execute(select(Membership.last_read_message_id).filter_by(user_id=bob_id)).scalar_one()
    assert joined_at <= marker == newest


def test_each_message_time_links_to_its_permalink(app, alice):
    ids = add_messages(app, 3)
    page = text(alice.get("/room/general/"))
    for message_id in ids:
        link_html = f'<a class="msg-link" href="?around={message_id}#m-{message_id}"><time class="msg-time"'
        assert link_html in page
    # Relative: the same fragment serves every URL of the room, and pushes too.
    assert text(alice.get(f"/room/general/?before={ids[-1] + 1}")).count('class="msg-link" href="?around=') == 4


def test_a_message_of_another_room_or_none_or_a_room_you_may_not_read_is_a_404(app, alice):
    ids = add_messages(app, 3)
    create_room(alice, "other")
    [_, other] = add_messages(app, 1, room="other")
    assert around(alice, other, "other").status_code == 200
    assert around(alice, other, "general").status_code == 404
    assert around(alice, ids[1], "other").status_code == 404
    assert around(alice, 999999).status_code == 404
    assert around(alice, 2147483647).status_code == 404  # the largest id there can be, not there
    assert around(alice, 99999999999).status_code == 400  # past a 32-bit id: not an id at all
    assert post_form(alice, "/create/", {"name": "hidden", "private": "y"}).status_code == 303
    [_, hidden] = add_messages(app, 1, room="hidden")
    carol = app.test_client()
    signup(carol, "carol")
    nothing = around(carol, 1, "no such room")
    assert around(carol, hidden, "hidden").status_code == nothing.status_code == 404


def test_around_takes_ascii_digits_only_and_alone(app, alice):
    ids = add_messages(app, 3)
    for value in INVALID_IDS:
        assert alice.get("/room/general/", query_string={"around": value}).status_code == 400, value
    assert alice.get(f"/room/general/?around={ids[1]}&before={ids[2]}").status_code == 400
    assert alice.get(f"/room/general/?around={ids[1]}&after={ids[0]}").status_code == 400


def test_kept_slices_tell_permalinks_apart(app, alice):
    """The rendered-slice cache's key names ``around``: two permalinks of an unchanged
    room are two different pages, each served again from the cache."""
    app.config["PAGE_SIZE"] = 4
    ids = add_messages(app, 20)
    first, second = text(around(alice, ids[5])), text(around(alice, ids[12]))
    assert ids[5] in shown(first) and ids[5] not in shown(second)
    assert ids[12] in shown(second) and ids[12] not in shown(first)
    assert shown(text(around(alice, ids[5]))) == shown(first)
