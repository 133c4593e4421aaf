"""Pages and posts cost a fixed number of SQL statements, and reads write nothing.

Each budget is checked with few and with many messages (or rooms): the counts must be
equal, so an N+1 (a statement per message or per room) fails here.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Membership, Message, Room, User
from webchat.search import query

from .conftest import create_room, csrf_token, signup
from .querybudget import over_budget
from .test_history import add_messages

# What a room page needs: the user, the room with the reader's membership, the page
# of messages (with their authors, and one row more), and the marker's update when it
# moves. A slice already rendered for this view of an unchanged room costs no query.
# (The sidebar's room list comes with the room's socket, not with the page.)
ROOM_PAGE = 3
ROOM_PAGE_CACHED = 2
ROOM_PAGE_READ_MARKER = 1  # the UPDATE when the reader has something new
OLDER_FRAGMENT = 4  # user, room, slice, "is there anything newer than this slice" (no sidebar)
NEWER_PAGE = 4  # + "the message just before this slice"
ROOM_LIST = 2  # the user, one query for every room with its counts and last message
# The user; on SQLite how many messages the rooms to search hold (up to a cap, to pick
# the way), on PostgreSQL "plan this text"; the page of results with authors and rooms.
SEARCH = 3
SEARCH_IN_ROOM = 4  # + the room with the reader's membership
AROUND_PAGE = 4  # the user, the room, the message and the ones before it, the ones after
MENU = 3  # the user, the room with the reader's membership, the message
POST = 6  # user, room, membership, previous message, INSERT, UPDATE room
JOIN = 9  # a first visit: + INSERT membership, the system message and its room update


@pytest.fixture
def alice(client):
    signup(client, "alice")
    create_room(client, "general")
    return client


def statement_count(queries, budget, call, **kw) -> int:
    _, tally = queries.measure(budget, call, **kw)
    return len(tally.statements)


def test_room_page_costs_the_same_for_5_and_50_messages_and_writes_only_a_moving_marker(app, alice, queries):
    add_messages(app, 5)
    first = statement_count(queries, ROOM_PAGE + ROOM_PAGE_READ_MARKER, lambda: alice.get("/room/general/"))
    add_messages(app, 60)  # a new newest message: the slice is rendered again
    many = statement_count(queries, ROOM_PAGE + ROOM_PAGE_READ_MARKER, lambda: alice.get("/room/general/"))
    assert first == many == ROOM_PAGE + ROOM_PAGE_READ_MARKER
    # The same page again: nothing new, so no write, no commit, and the rendered slice is reused.
    response, again = queries.measure(ROOM_PAGE_CACHED, lambda: alice.get("/room/general/"), writes=False)
    assert response.get_data(as_text=True).count('<article id="m-') == 50
    assert len(again.statements) == ROOM_PAGE_CACHED


def test_a_page_renders_without_reloading_rows_after_the_marker_commit(app, alice, queries):
    add_messages(app, 50)
    _, tally = queries.measure(ROOM_PAGE + ROOM_PAGE_READ_MARKER, lambda: alice.get("/room/general/"))
    assert tally.commits == 1
    # Nothing after the commit: no row was expired by it and read again.
    assert tally.statements[-1].lstrip().upper().startswith("UPDATE")


def test_older_and_newer_slices_cost_the_same_for_any_size(app, alice, queries):
    ids = add_messages(app, 120)
    hx = {"HX-Request": "true"}
    counts = set()
    for before in (ids[10], ids[60], ids[-1]):  # each slice rendered for the first time
        response, _ = queries.measure(
            OLDER_FRAGMENT, lambda b=before: alice.get(f"/room/general/?before={b}", headers=hx), writes=False
        )
        assert response.status_code == 200 and '<article id="m-' in response.get_data(as_text=True)
        counts.add(len(queries.tallies[-1].statements))
    for after in (ids[0], ids[50]):
        response, _ = queries.measure(NEWER_PAGE, lambda a=after: alice.get(f"/room/general/?after={a}"), writes=False)
        assert response.status_code == 200
        counts.add(len(queries.tallies[-1].statements))
    assert len(counts) <= 2  # a slice reads the same whatever its position


def test_room_list_costs_the_same_for_1_and_50_rooms(app, alice, client, queries):
    add_messages(app, 3)
    one = statement_count(queries, ROOM_LIST, lambda: alice.get("/"), writes=False)
    with app.app_context():
        owner = db.session.execute(select(User)).scalar_one()
        from webchat.rooms import service

        for i in range(49):
            room = service.create_room(f"room {i}", owner)
            service.post_message(room, owner, f"hello {i}")
        db.session.commit()
    response, tally = queries.measure(ROOM_LIST, lambda: alice.get("/"), writes=False)
    assert response.get_data(as_text=True).count('class="room-item"') == 50
    assert len(tally.statements) == one


def test_posting_without_javascript_stays_in_budget_with_one_commit(app, alice, queries):
    add_messages(app, 50)
    token = csrf_token(alice.get("/room/general/").get_data(as_text=True))
    response, tally = queries.measure(
        POST, lambda: alice.post("/room/general/", data={"message": "hi", "csrf_token": token}), writes=True
    )
    assert response.status_code == 303
    assert tally.commits == 1
    # The session check and the writes run as prepared statements (webchat/prepared.py):
    # counted all the same: the user, the room, the message before, the message, the room's activity.
    kinds = [s.split()[0] for s in tally.statements]
    assert kinds == ["SELECT", "SELECT", "SELECT", "INSERT", "UPDATE"], over_budget(tally, POST)
    with app.app_context():
        assert db.session.execute(select(Message.body).order_by(Message.id.desc())).scalars().first() == "hi"


def test_joining_a_room_is_a_write_but_stays_bounded(app, alice, client, queries):
    bob = app.test_client()
    signup(bob, "bob")
    response, tally = queries.measure(JOIN, lambda: bob.get("/room/general/"), writes=True)
    assert response.status_code == 200 and "<bdi>bob</bdi> joined the room" in response.get_data(as_text=True)
    assert tally.commits == 1
    with app.app_context():
        members = db.session.execute(select(Membership.user_id)).scalars().all()
    assert len(members) == 2


def test_a_reused_slice_is_the_same_html_and_never_another_views(app, alice, queries):
    add_messages(app, 3)
    alice.get("/room/general/")  # reads the three: no "New messages" divider from here on
    first = alice.get("/room/general/").get_data(as_text=True)
    _, tally = queries.measure(ROOM_PAGE_CACHED, lambda: alice.get("/room/general/"))
    again = alice.get("/room/general/").get_data(as_text=True)
    log = re.compile(r'<div id="log".*?</div>\s*</section>|<article.*</article>', re.S)
    assert log.search(first).group(0) == log.search(again).group(0)
    # Another reader in another zone and language: rendered for them, not served alice's.
    bob = app.test_client()
    signup(bob, "bob")
    with app.app_context():
        user = db.session.execute(select(User).filter_by(username="bob")).scalar_one()
        user.time_zone = "Asia/Shanghai"
        db.session.commit()
    add_messages(app, 1)
    bob.get("/room/general/")
    alice_page = alice.get("/room/general/").get_data(as_text=True)
    bob_page = bob.get("/room/general/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "Asia/Shanghai" in bob_page and "Asia/Shanghai" not in alice_page


# Changing a message: the user, the room with the membership, the room's next change
# number (UPDATE ... RETURNING: it locks the room's changes into one order), the message
# with its quote, then the writes.
EDIT = 6  # + UPDATE the message, UPDATE the replies that quote it
DELETE = 7  # + UPDATE the message, DELETE its reactions, UPDATE its replies
REACT = 8  # + DELETE the reader's reaction or else INSERT it, read its reactions, UPDATE the message


def decorate(app, ids: list[int], replies: int = 10) -> None:
    """Reactions of three people on every message, and replies quoting some (which
    makes a new newest message: pages are read and rendered again)."""
    from webchat.rooms import changes

    with app.app_context():
        users = [db.session.execute(select(User).filter_by(username="alice")).scalar_one()]
        for name in ("bob", "carol"):
            user = User(username=name, username_key=name, password_hash="x")
            db.session.add(user)
            users.append(user)
        db.session.flush()
        room = db.session.get(Room, db.session.get(Message, ids[-1]).room_id)
        for mid in ids:
            rows = [(emoji, u.id, u.username) for u in users for emoji in changes.PALETTE[:3]]
            db.session.get(Message, mid).reactions = changes.reaction_summary(rows)
        added = [
            Message(room_id=room.id, author_id=users[1].id, body=f"re {mid}", reply_to_id=mid) for mid in ids[-replies:]
        ]
        db.session.add_all(added)
        db.session.flush()
        room.last_message_id = added[-1].id
        db.session.commit()


def test_a_page_with_reactions_and_replies_costs_what_a_plain_one_does(app, alice, queries):
    add_messages(app, 60)
    plain = statement_count(queries, ROOM_PAGE + ROOM_PAGE_READ_MARKER, lambda: alice.get("/room/general/"))
    decorate(app, add_messages(app, 60))
    response, tally = queries.measure(ROOM_PAGE + ROOM_PAGE_READ_MARKER, lambda: alice.get("/room/general/"))
    page = response.get_data(as_text=True)
    assert page.count('<article id="m-') == 50
    assert page.count('class="reaction"') == 3 * 40 and page.count('class="quote ') == 10
    assert len(tally.statements) == plain


@pytest.mark.parametrize("many", [False, True], ids=["bare", "many reactions and replies"])
def test_changing_a_message_costs_the_same_whatever_it_carries(app, alice, queries, many):
    ids = add_messages(app, 5)
    if many:
        decorate(app, ids)
    token = csrf_token(alice.get("/room/general/").get_data(as_text=True))
    url = f"/room/general/messages/{ids[-2]}"
    hx = {"HX-Request": "true", "X-CSRFToken": token}
    for data, budget in (({"emoji": "👀"}, REACT), ({"emoji": "👀"}, REACT - 1)):  # on, then off again
        response, tally = queries.measure(budget, lambda d=data: alice.post(url + "/reactions", data=d, headers=hx))
        assert response.status_code == 200 and tally.commits == 1 and len(tally.statements) == budget
    response, tally = queries.measure(EDIT, lambda: alice.post(url + "/edit", data={"message": "new"}, headers=hx))
    assert response.status_code == 200 and tally.commits == 1 and len(tally.statements) == EDIT
    response, tally = queries.measure(DELETE, lambda: alice.post(url + "/delete", headers=hx))
    assert response.status_code == 200 and tally.commits == 1 and len(tally.statements) == DELETE
    # The change answers with what it knows: nothing is read again after the commit.
    assert tally.statements[-1].lstrip().upper().startswith("UPDATE")


def test_a_reply_costs_one_statement_more_than_a_message(app, alice, queries):
    ids = add_messages(app, 5)
    token = csrf_token(alice.get("/room/general/").get_data(as_text=True))
    plain = {"message": "hi", "csrf_token": token}
    _, message = queries.measure(POST, lambda: alice.post("/room/general/", data=plain), writes=True)
    reply = {**plain, "reply_to": str(ids[-1])}  # + what the reply quotes, checked to be of this room
    response, tally = queries.measure(POST + 1, lambda: alice.post("/room/general/", data=reply), writes=True)
    assert response.status_code == 303 and len(tally.statements) == len(message.statements) + 1


@pytest.mark.parametrize("few", [query.FEW_MESSAGES, 0], ids=["rooms", "indexes"])
def test_search_costs_the_same_for_any_number_of_results_and_writes_nothing(app, alice, queries, monkeypatch, few):
    monkeypatch.setattr(query, "FEW_MESSAGES", few)
    add_messages(app, 3)
    counts = set()
    for url in ("/search/?q=message", "/search/?q=me", "/search/?q=消息"):
        response, tally = queries.measure(SEARCH, lambda u=url: alice.get(u), writes=False)
        assert response.status_code == 200
        counts.add(len(tally.statements))
    add_messages(app, 60)
    for url in ("/search/?q=message", "/search/?q=me"):
        response, tally = queries.measure(SEARCH, lambda u=url: alice.get(u), writes=False)
        assert response.get_data(as_text=True).count('class="hit"') == 20
        counts.add(len(tally.statements))
    response, tally = queries.measure(SEARCH_IN_ROOM, lambda: alice.get("/search/?q=message&room=general"))
    assert response.get_data(as_text=True).count('class="hit"') == 20
    assert counts == {SEARCH}
    # Nothing asked yet: the user only.
    queries.measure(1, lambda: alice.get("/search/"), writes=False)


def test_a_permalink_page_costs_the_same_anywhere_in_the_room(app, alice, queries):
    ids = add_messages(app, 150)
    counts = set()
    for message_id in (ids[1], ids[75], ids[-60]):
        response, tally = queries.measure(
            AROUND_PAGE, lambda m=message_id: alice.get(f"/room/general/?around={m}"), writes=False
        )
        assert response.status_code == 200 and f'id="m-{message_id}"' in response.get_data(as_text=True)
        counts.add(len(tally.statements))
    assert counts == {AROUND_PAGE}
    # Kept: the same permalink of an unchanged room is a lookup.
    queries.measure(ROOM_PAGE_CACHED, lambda: alice.get(f"/room/general/?around={ids[75]}"), writes=False)


def test_a_messages_menu_costs_the_same_whatever_it_carries_and_writes_nothing(app, alice, queries):
    ids = add_messages(app, 5)
    bare = statement_count(queries, MENU, lambda: alice.get(f"/room/general/messages/{ids[-1]}/menu"), writes=False)
    decorate(app, ids)
    for headers in ({"HX-Request": "true"}, {}):  # the items, and the page without JavaScript
        response, tally = queries.measure(
            MENU, lambda h=headers: alice.get(f"/room/general/messages/{ids[-2]}/menu", headers=h), writes=False
        )
        assert response.status_code == 200 and len(tally.statements) == bare
