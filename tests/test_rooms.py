"""Rooms over HTTP: the list, creating one, entering one, its page and sending without JS."""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

import pytest
from sqlalchemy import func, select

from webchat.extensions import db
from webchat.models import Membership, Message, Room, User

from .conftest import articles, create_room, csrf_token, field_error, input_value, post_form, signup


def text(response) -> str:
    return response.get_data(as_text=True)


def room_url(name: str) -> str:
    return f"/room/{quote(name, safe='')}/"


def send(client, room: str, message: str):
    """POST a message like the no-JS form does."""
    return post_form(client, room_url(room), {"message": message})


def stored(app, room: str) -> list[tuple[str, str, str]]:
    """(kind, author, body) of every message in the room, oldest first; a system
    message's body is what happened (its event): sentences are rendered per reader."""
    with app.app_context():
        rows = db.session.execute(
            select(Message.kind, User.username, func.coalesce(Message.event, Message.body))
            .join(Room, Room.id == Message.room_id)
            .join(User, User.id == Message.author_id)
            .where(Room.name == room)
            .order_by(Message.id)
        )
        return [tuple(r) for r in rows]


def members(app, room: str) -> list[str]:
    with app.app_context():
        rows = db.session.execute(
            select(User.username)
            .join(Membership, Membership.user_id == User.id)
            .join(Room, Room.id == Membership.room_id)
            .where(Room.name == room)
            .order_by(User.username)
        )
        return list(rows.scalars())


def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.execute(select(User.id).filter_by(username=username)).scalar_one()


def room_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count(Room.id))).scalar_one()


@pytest.fixture
def alice(client):
    signup(client, "alice")
    return client


@pytest.fixture
def bob(app):
    other = app.test_client()
    signup(other, "bob")
    return other


# --- the room list --------------------------------------------------------------------


def test_empty_list_invites_you_to_create_a_room(alice):
    page = text(alice.get("/"))
    assert "No rooms yet" in page
    assert "create a room" in page
    assert 'href="/create/"' in page
    assert not room_items(page)


def room_items(page: str) -> list[str]:
    return re.findall(r'<li class="room-item"[^>]*>.*?</li>', page, re.S)


def test_list_shows_name_owner_members_and_last_message(app, alice, bob):
    create_room(alice, "general")
    bob.get(room_url("general"))
    send(bob, "general", "hello from bob")
    [item] = room_items(text(alice.get("/")))
    assert '<span class="room-name"><bdi>general</bdi></span>' in item
    assert "by alice" in item
    assert "2 members" in item
    assert "<b>bob:</b> hello from bob" in item
    with app.app_context():
        last = db.session.execute(select(Message).order_by(Message.id.desc()).limit(1)).scalar_one()
        stamp = last.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f'<time class="room-time" datetime="{stamp}"' in item
    assert 'href="/room/general/' in item


def test_list_counts_one_member_and_previews_system_messages(alice):
    create_room(alice, "solo")
    [item] = room_items(text(alice.get("/")))
    assert re.search(r"\b1 member\b(?!s)", item)
    assert "<bdi>alice</bdi> created the room" in item


def test_list_puts_the_newest_activity_first(alice, bob):
    create_room(alice, "first")
    create_room(bob, "second")
    create_room(alice, "third")

    def order():
        return re.findall(r'<span class="room-name"><bdi>(.*?)</bdi></span>', text(alice.get("/")))

    assert order() == ["third", "second", "first"]
    send(bob, "first", "wake up")
    assert order() == ["first", "third", "second"]
    bob.get(room_url("second"))  # bob is its owner: entering again says nothing
    assert order() == ["first", "third", "second"]
    alice.get(room_url("second"))  # alice joins: "alice joined the room" is activity
    assert order() == ["second", "first", "third"]


def test_long_previews_are_truncated(alice):
    create_room(alice, "general")
    send(alice, "general", "x" * 300)
    [item] = room_items(text(alice.get("/")))
    assert "x" * 300 not in item
    assert "…" in item


# --- creating a room ------------------------------------------------------------------


def test_create_redirects_into_the_room_and_says_so(app, alice):
    response = create_room(alice, "general")
    assert response.headers["Location"] == "/room/general/"
    page = text(alice.get("/room/general/"))
    assert '<h1 id="room-title"><bdi>general</bdi></h1>' in page
    assert stored(app, "general") == [("system", "alice", "created")]
    assert members(app, "general") == ["alice"]
    assert "<bdi>alice</bdi> created the room" in page
    assert "joined the room" not in page


@pytest.mark.parametrize(
    "name", ["聊天室", "my room", "Café del Mar", "a", "x" * 50, "Tom & Jerry's", "C++", "ü.ber-all_"]
)
def test_any_valid_name_works_in_the_url(app, alice, name):
    response = create_room(alice, name)
    assert unquote(response.headers["Location"]) == f"/room/{name}/"
    page = alice.get(response.headers["Location"])
    assert page.status_code == 200
    assert stored(app, name) == [("system", "alice", "created")]


def test_chinese_room_is_listed_and_reachable(alice):
    create_room(alice, "聊天室")
    assert alice.get("/room/%E8%81%8A%E5%A4%A9%E5%AE%A4/").status_code == 200
    page = text(alice.get("/"))
    assert '<span class="room-name"><bdi>聊天室</bdi></span>' in page
    assert 'href="/room/%E8%81%8A%E5%A4%A9%E5%AE%A4/"' in page


def test_room_url_ignores_letter_case(alice):
    create_room(alice, "General")
    assert alice.get("/room/general/").status_code == 200
    assert alice.get("/room/GENERAL/").status_code == 200


def test_name_is_trimmed(app, alice):
    assert create_room(alice, "  lobby  ").headers["Location"] == "/room/lobby/"
    assert stored(app, "lobby")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "Give the room a name."),
        ("   ", "Give the room a name."),
        ("x" * 51, "Use at most 50 characters."),
        ("a/b", 'A room name cannot contain / \\ ? # % < > or ".'),
        ("what?", 'A room name cannot contain / \\ ? # % < > or ".'),
        ("100%", 'A room name cannot contain / \\ ? # % < > or ".'),
        ("#tag", 'A room name cannot contain / \\ ? # % < > or ".'),
        ('say "hi"', 'A room name cannot contain / \\ ? # % < > or ".'),
        ("back\\slash", 'A room name cannot contain / \\ ? # % < > or ".'),
        ("<script>alert(1)</script>", 'A room name cannot contain / \\ ? # % < > or ".'),
        ("...", "Use at least one letter or digit."),
    ],
)
def test_bad_names_are_refused_next_to_the_field(app, alice, name, error):
    response = post_form(alice, "/create/", {"name": name})
    assert response.status_code == 400
    page = text(response)
    assert field_error(page, "name") == error
    if name.strip():
        assert input_value(page, "name") == name  # kept, so it can be corrected
    assert room_count(app) == 0


def test_names_are_unique_ignoring_case(app, alice, bob):
    create_room(alice, "General")
    for taken in ("General", "general", "GENERAL", "  general "):
        response = post_form(bob, "/create/", {"name": taken})
        assert response.status_code == 400
        assert field_error(text(response), "name") == "A room with that name exists already."
    assert room_count(app) == 1


def test_unicode_names_are_unique_ignoring_case_and_normal_form(app, alice):
    create_room(alice, "Ärger")
    decomposed = "A\u0308rger"  # the same word typed with a combining diaeresis
    response = post_form(alice, "/create/", {"name": decomposed.lower()})
    assert response.status_code == 400
    assert field_error(text(response), "name") == "A room with that name exists already."
    assert alice.get(room_url(decomposed)).status_code == 200


def test_name_whose_casefolded_form_is_too_long_is_refused(app, alice):
    # 'ß' folds to 'ss': 50 of them would need a 100-character key
    response = post_form(alice, "/create/", {"name": "ß" * 50})
    assert response.status_code == 400
    assert "too long" in field_error(text(response), "name")
    assert room_count(app) == 0


def test_unknown_room_is_a_friendly_404(alice):
    response = alice.get("/room/nowhere/")
    assert response.status_code == 404
    page = text(response)
    assert "Not found" in page
    assert 'href="/"' in page
    assert alice.post("/room/nowhere/", data={"message": "hi", "csrf_token": csrf_token(page)}).status_code == 404


# --- entering a room ------------------------------------------------------------------


def test_entering_makes_you_a_member_and_says_so_once(app, alice, bob):
    create_room(alice, "general")
    for _ in range(3):
        assert bob.get("/room/general/").status_code == 200
    assert members(app, "general") == ["alice", "bob"]
    assert stored(app, "general") == [
        ("system", "alice", "created"),
        ("system", "bob", "joined"),
    ]
    log = text(alice.get("/room/general/")).split('<div id="log"', 1)[1]  # not the sidebar's preview
    assert log.count("<bdi>bob</bdi> joined the room") == 1


# --- the room page --------------------------------------------------------------------


def test_room_page_shows_author_time_and_body(app, alice):
    create_room(alice, "general")
    send(alice, "general", "first words")
    page = text(alice.get("/room/general/"))
    found = articles(page)
    created, said = (found[i] for i in sorted(found))
    assert re.search(r'class="msg msg-system[ "]', created)
    assert "<bdi>alice</bdi> created the room" in created
    assert re.search(r'class="msg msg-user[ "]', said)
    assert re.search(r'class="msg-author[^"]*"><bdi>alice</bdi><', said)
    assert re.search(r'class="msg-body"><bdi class="msg-text">first words\b', said)
    with app.app_context():
        message = db.session.execute(select(Message).filter_by(body="first words")).scalar_one()
        stamp = message.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        clock = message.created_at.strftime("%H:%M")
    assert f'datetime="{stamp}"' in said
    assert f">{clock}</time>" in said
    assert f'data-author="{user_id(app, "alice")}"' in said


def test_every_reader_gets_the_same_message_html(app, alice, bob):
    create_room(alice, "general")
    bob.get("/room/general/")
    send(alice, "general", "from alice")
    send(bob, "general", "from bob")
    as_alice = articles(text(alice.get("/room/general/")))
    as_bob = articles(text(bob.get("/room/general/")))
    assert len(as_alice) == 4
    assert as_alice == as_bob


def test_own_bubbles_come_from_one_css_rule_naming_the_reader(app, alice, bob):
    create_room(alice, "general")
    alice_id, bob_id = user_id(app, "alice"), user_id(app, "bob")
    page_a = text(alice.get("/room/general/"))
    page_b = text(bob.get("/room/general/"))
    assert f'.msg-user[data-author="{alice_id}"]' in page_a
    assert f'.msg-user[data-author="{bob_id}"]' not in page_a
    assert f'.msg-user[data-author="{bob_id}"]' in page_b
    assert f'.msg-user[data-author="{alice_id}"]' not in page_b


# --- sending without JavaScript -------------------------------------------------------


def test_posting_a_message_stores_it_and_redirects_back(app, alice):
    create_room(alice, "聊天室")
    response = send(alice, "聊天室", "  你好，世界  ")
    assert response.status_code == 303
    assert response.headers["Location"] == room_url("聊天室")
    assert stored(app, "聊天室")[-1] == ("user", "alice", "你好，世界")
    [said] = [a for a in articles(text(alice.get(response.headers["Location"]))).values() if "msg-user" in a]
    assert re.search(r'class="msg-body"><bdi class="msg-text">你好，世界\s*<', said)


def test_posting_keeps_line_breaks_and_the_exact_limit(app, alice):
    create_room(alice, "general")
    assert send(alice, "general", "line one\r\nline two").status_code == 303
    assert send(alice, "general", "y" * 4000).status_code == 303
    assert [body for *_, body in stored(app, "general")[1:]] == ["line one\nline two", "y" * 4000]


def composer_error(page: str) -> str:
    match = re.search(r'<p id="composer-error"[^>]*>(.*?)</p>', page, re.S)
    assert match, "page has no composer error element"
    return match.group(1)


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ("", "Type a message before sending."),
        ("   \n\t ", "Type a message before sending."),
        ("z" * 4001, "Messages can be at most 4000 characters; this one has 4001."),
        (" " + "z" * 4001 + " ", "Messages can be at most 4000 characters; this one has 4001."),
    ],
)
def test_bad_messages_show_the_error_next_to_the_input_and_keep_the_text(app, alice, message, error):
    create_room(alice, "general")
    response = send(alice, "general", message)
    assert response.status_code == 400
    page = text(response)
    assert composer_error(page) == error
    assert 'aria-invalid="true"' in page
    if message.strip():
        assert input_value(page, "message") == message
    assert len(stored(app, "general")) == 1  # only "created the room"


def test_a_missing_message_field_is_an_error_not_a_crash(app, alice):
    create_room(alice, "general")
    response = post_form(alice, "/room/general/", {})
    assert response.status_code == 400
    assert composer_error(text(response)) == "Type a message before sending."


@pytest.fixture
def limited(client):
    """The app from the ``app`` fixture, limited to 2 messages per minute."""
    client.application.config.update(RATE_LIMIT_COUNT=2, RATE_LIMIT_WINDOW=60.0)
    return client


def test_sending_too_fast_is_refused_and_stores_nothing(app, limited):
    signup(limited, "alice")
    create_room(limited, "general")
    assert send(limited, "general", "one").status_code == 303
    assert send(limited, "general", "two").status_code == 303
    response = send(limited, "general", "three")
    assert response.status_code == 400
    page = text(response)
    assert composer_error(page).startswith("You are sending too fast: at most 2 messages every 60 seconds.")
    assert input_value(page, "message") == "three"
    assert [body for *_, body in stored(app, "general")] == ["created", "one", "two"]


def test_rate_limit_is_per_user(app, limited):
    signup(limited, "alice")
    create_room(limited, "general")
    other = app.test_client()
    signup(other, "bob")
    for _ in range(2):
        assert send(limited, "general", "from alice").status_code == 303
    assert send(limited, "general", "from alice").status_code == 400
    assert send(other, "general", "from bob").status_code == 303


def test_rate_limit_comes_from_a_fresh_apps_config(_migrated):
    """RATE_LIMIT_COUNT / RATE_LIMIT_WINDOW given to create_app are the ones enforced."""
    from config import TestingConfig
    from webchat import create_app

    from .conftest import empty_tables

    limits = {"RATE_LIMIT_COUNT": 1, "RATE_LIMIT_WINDOW": 30}
    limited_app = create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=_migrated, **limits)
    client = limited_app.test_client()
    try:
        signup(client, "carol")
        create_room(client, "quiet")
        assert send(client, "quiet", "only one").status_code == 303
        response = send(client, "quiet", "one too many")
        assert response.status_code == 400
        assert "You are sending too fast" in composer_error(text(response))
        assert [body for *_, body in stored(limited_app, "quiet")] == ["created", "only one"]
    finally:
        with limited_app.app_context():
            empty_tables()
            db.engine.dispose()


def unread_badge(page: str, room: str) -> str | None:
    item = next(i for i in room_items(page) if f">{room}" in i)
    match = re.search(r'<span class="unread"[^>]*>([^<]+)<', item)
    return match.group(1) if match else None


def test_room_list_counts_others_unread_messages_until_the_room_is_opened(app, alice, bob):
    create_room(alice, "news")
    bob.get(room_url("news"))  # bob joins and has read everything so far
    for i in range(3):
        send(alice, "news", f"update {i}")
    send(bob, "news", "my own message is never unread")  # bob also reads up to here
    send(alice, "news", "one more")
    assert unread_badge(text(bob.get("/")), "news") == "1"
    assert unread_badge(text(alice.get("/")), "news") is None  # alice's page shows her own messages
    bob.get(room_url("news"))
    assert unread_badge(text(bob.get("/")), "news") is None
    # history pages are not "seen up to the newest"
    send(alice, "news", "after bob left")
    bob.get(room_url("news") + "?before=1")
    assert unread_badge(text(bob.get("/")), "news") == "1"


def test_rooms_you_have_not_joined_show_no_unread_count(app, alice, bob):
    create_room(alice, "elsewhere")
    send(alice, "elsewhere", "hello")
    assert unread_badge(text(bob.get("/")), "elsewhere") is None
