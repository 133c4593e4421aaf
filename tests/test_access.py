"""Private rooms, members, direct messages: a non-member learns nothing, and a removal
reaches open sockets at once, on every server."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Membership, Room, User

from . import services
from .conftest import csrf_token, post_form, signed_up
from .liveserver import Browser
from .test_scaleout import name, redis_prefix, start_server  # noqa: F401 - a fixture

PRIVATE = "secret plans"
URL = "/room/secret%20plans/"


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def people(app):
    clients = signed_up(app, "alice", "bob", "carol")
    response = post_form(clients["alice"], "/create/", {"name": PRIVATE, "private": "y"})
    assert response.status_code == 303
    return clients


def post(client, url: str, data: dict | None = None, page: str = "/"):
    token = csrf_token(text(client.get(page)))
    return client.post(url, data={**(data or {}), "csrf_token": token})


def same_page(html: str) -> str:
    """A page without what differs between any two requests (the CSP nonce, CSRF token)."""
    return re.sub(r'(nonce|value)="[^"]*"', "", html)


def test_a_private_room_does_not_exist_for_a_non_member(people):
    bob = people["bob"]
    bob.get("/")  # shows the sign-up's welcome flash, once
    nothing = same_page(text(bob.get("/room/no%20such%20room/")))
    for url in (URL, URL + "?before=5", URL + "?after=1", URL + "members"):
        response = bob.get(url)
        assert response.status_code == 404, url
        assert same_page(text(response)) == nothing, url  # word for word a room nobody made
    for url in (URL, URL + "leave", URL + "members", URL + "rename", URL + "delete", URL + "members/alice/remove"):
        assert post(bob, url, {"message": "hi", "username": "bob", "name": "x"}).status_code == 404, url
    assert PRIVATE not in text(bob.get("/"))
    assert PRIVATE in text(people["alice"].get("/"))
    assert "private" in text(people["alice"].get("/"))


def test_members_add_people_who_then_see_and_read_the_room(app, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    response = post(alice, URL + "members", {"username": "BOB"}, page=URL + "members")
    assert response.status_code == 303
    assert PRIVATE in text(bob.get("/"))
    page = text(bob.get(URL))
    assert "<bdi>alice</bdi> added <bdi>bob</bdi>" in page
    # bob, a member now, may add carol too; errors are shown next to the field
    refused = post(bob, URL + "members", {"username": "nobody"}, page=URL + "members")
    assert refused.status_code == 400 and "There is no account with that username." in text(refused)
    again = post(bob, URL + "members", {"username": "alice"}, page=URL + "members")
    assert again.status_code == 400 and "alice is in this room already." in text(again)
    assert post(bob, URL + "members", {"username": "carol"}, page=URL + "members").status_code == 303
    assert carol.get(URL).status_code == 200


def test_leaving_and_being_removed_end_access(app, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    for who in ("bob", "carol"):
        post(alice, URL + "members", {"username": who}, page=URL + "members")
    assert post(bob, URL + "leave", page=URL).status_code == 303
    assert bob.get(URL).status_code == 404 and PRIVATE not in text(bob.get("/"))
    # only the owner (or an admin) removes; a member who tries is refused and nothing changes
    post(alice, URL + "members", {"username": "bob"}, page=URL + "members")
    assert post(bob, URL + "members/carol/remove", page=URL).status_code == 403
    assert carol.get(URL).status_code == 200
    assert post(alice, URL + "members/carol/remove", page=URL).status_code == 303
    assert carol.get(URL).status_code == 404
    page = text(alice.get(URL))
    assert "<bdi>bob</bdi> left the room" in page and "<bdi>alice</bdi> removed <bdi>carol</bdi>" in page
    assert post(alice, URL + "members/alice/remove", page=URL).status_code == 404  # not the owner


def test_an_admin_manages_a_room_they_are_in(app, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    with app.app_context():
        # alice signed up first: the first account is the admin. Make carol one too.
        db.session.execute(select(User).filter_by(username="carol")).scalar_one().is_admin = True
        db.session.commit()
    for who in ("bob", "carol"):
        post(alice, URL + "members", {"username": who}, page=URL + "members")
    assert post(carol, URL + "members/bob/remove", page=URL).status_code == 303
    assert bob.get(URL).status_code == 404


def test_rename_and_delete(app, people):
    alice = people["alice"]
    bad = post(alice, URL + "rename", {"name": "@nope"}, page=URL + "members")
    assert bad.status_code == 400 and "A room name cannot start with @." in text(bad)
    assert post(alice, URL + "rename", {"name": "plans"}, page=URL + "members").status_code == 303
    assert alice.get(URL).status_code == 404
    assert "<bdi>alice</bdi> renamed the room to <bdi>plans</bdi>" in text(alice.get("/room/plans/"))
    assert post(alice, "/room/plans/delete", page="/room/plans/").status_code == 303
    assert alice.get("/room/plans/").status_code == 404
    with app.app_context():
        assert db.session.execute(select(Room).filter_by(name="plans")).first() is None


def test_a_public_room_is_open_to_all_and_private_is_a_choice(app, people):
    alice, bob = people["alice"], people["bob"]
    post_form(alice, "/create/", {"name": "lobby"})
    assert bob.get("/room/lobby/").status_code == 200  # joins
    assert "private" not in re.search(r'<li class="room-item">.*?lobby.*?</li>', text(bob.get("/")), re.S).group(0)


def test_direct_messages_are_one_conversation_for_two(app, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    first = alice.get("/dm/bob/")
    assert first.status_code == 302
    url = first.headers["Location"]
    assert bob.get("/dm/ALICE/").headers["Location"] == url  # the same from either side
    assert alice.get("/dm/bob/").headers["Location"] == url  # and every time
    assert carol.get(url).status_code == 404
    assert alice.get("/dm/nobody/").status_code == 404
    page = text(alice.get(url))
    assert '<h1 id="room-title"><bdi>bob</bdi></h1>' in page
    assert post(alice, url, {"message": "just us"}, page=url).status_code == 303
    listing = text(bob.get("/"))
    direct = listing.split("Direct messages", 1)[1]
    assert "<bdi>alice</bdi>" in direct and 'class="unread"' in direct
    assert "just us" not in text(carol.get("/"))
    assert post(alice, url + "members", {"username": "carol"}, page=url + "members").status_code == 400
    with app.app_context():
        assert db.session.query(Membership).join(Room).filter(Room.kind == "direct").count() == 2


def test_a_room_name_cannot_pose_as_a_direct_conversation(people):
    response = post_form(people["carol"], "/create/", {"name": "@alice+bob"})
    assert response.status_code == 400


# --- live: over real sockets -------------------------------------------------------------


def closed_with(sock, words: str) -> None:
    frame = sock.wait_for(words)
    assert 'id="status"' in frame
    assert sock.wait_closed() == 1008  # htmx does not retry it


def test_a_removed_member_sees_why_and_cannot_reconnect(server):
    room = name("private")
    alice = Browser(server).signup(name("alice"))
    status, _ = alice.post("/create/", {"name": room, "private": "y"})
    assert status == 200
    bob_name = name("bob")
    bob = Browser(server).signup(bob_name)
    members = alice.room_path(room) + "members"
    alice.post(members, {"username": bob_name})
    bob.enter(room)
    sock = bob.socket(room)
    sock.wait_for('id="log-live"')
    stranger = Browser(server).signup(name("carol")).socket(room)
    closed_with(stranger, "This room does not exist.")  # the same as a room nobody made
    alice.post(alice.room_path(room) + f"members/{bob_name}/remove", {}, form_path=alice.room_path(room))
    closed_with(sock, "You were removed from this room.")
    again = bob.socket(room)
    closed_with(again, "This room does not exist.")


def test_deleting_a_room_closes_its_sockets(server):
    room = name("doomed")
    alice = Browser(server).signup(name("alice")).create_room(room)
    sock = alice.socket(room)
    sock.wait_for('id="log-live"')
    alice.post(alice.room_path(room) + "delete", {}, form_path=alice.room_path(room))
    closed_with(sock, "This room was deleted.")


def test_a_removal_on_one_server_closes_the_socket_on_another(live_database_url, tmp_path, redis_prefix):  # noqa: F811
    a_srv = start_server(live_database_url, tmp_path, "a", services.REDIS_URL, redis_prefix)
    b_srv = start_server(live_database_url, tmp_path, "b", services.REDIS_URL, redis_prefix)
    try:
        room, bob_name = name("shared"), name("bob")
        alice = Browser(a_srv).signup(name("alice")).create_room(room)
        bob = Browser(b_srv).signup(bob_name)
        bob.enter(room)
        sock = bob.socket(room)
        sock.wait_for('id="log-live"')
        started = time.monotonic()
        alice.post(alice.room_path(room) + f"members/{bob_name}/remove", {}, form_path=alice.room_path(room))
        closed_with(sock, "You were removed from this room.")
        assert time.monotonic() - started < 1.5  # the POST's round trip included
    finally:
        a_srv.stop()
        b_srv.stop()
