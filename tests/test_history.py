"""History without JavaScript: the newest page, ?before=<id> and ?after=<id> keyset pages."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Message, Room, User, utcnow

from .conftest import articles, create_room, signup

PAGE = 50


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def alice(client):
    signup(client, "alice")
    create_room(client, "general")
    return client


def add_messages(app, count: int, room: str = "general") -> list[int]:
    """Store ``count`` messages by alice (fast: straight into the database); every id in the room."""
    with app.app_context():
        room_row = db.session.execute(select(Room).filter_by(name=room)).scalar_one()
        author = db.session.execute(select(User).filter_by(username="alice")).scalar_one()
        start = utcnow()
        rows = [
            Message(
                room_id=room_row.id, author_id=author.id, body=f"message {i}", created_at=start + timedelta(seconds=i)
            )
            for i in range(count)
        ]
        db.session.add_all(rows)
        db.session.flush()
        if rows:
            room_row.last_message_id = rows[-1].id
            room_row.last_activity_at = rows[-1].created_at
        db.session.commit()
        in_room = select(Message.id).filter_by(room_id=room_row.id).order_by(Message.id)
        return list(db.session.execute(in_room).scalars())


def shown(page: str) -> list[int]:
    """Message ids in DOM order."""
    return list(articles(page))


def link(page: str, element_id: str | None = None, label: str | None = None) -> str | None:
    """The href of the <a id=...> or of the <a> whose text is label."""
    if element_id:
        match = re.search(rf'<a id="{element_id}"[^>]*\shref="([^"]+)"', page)
    else:
        match = re.search(rf'<a href="([^"]+)"[^>]*>{re.escape(label)}</a>', page)
    return match.group(1).replace("&amp;", "&") if match else None


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def is_live(page: str) -> bool:
    return "ws-connect=" in page


def test_newest_page_shows_the_newest_50_in_time_order(app, alice):
    ids = add_messages(app, 60)
    page = text(alice.get("/room/general/"))
    # The log is column-reverse: newest first in the DOM is oldest at the top on screen.
    assert shown(page) == ids[-PAGE:][::-1]
    older = link(page, "older")
    assert query(older) == {"before": [str(ids[-PAGE])]}
    assert "This is the start of" not in page
    assert is_live(page)
    assert link(page, label="Newer messages") is None


def test_exactly_50_messages_fit_on_one_page(app, alice):
    ids = add_messages(app, PAGE - 1)  # plus "alice created the room"
    assert len(ids) == PAGE
    page = text(alice.get("/room/general/"))
    assert shown(page) == ids[::-1]
    assert link(page, "older") is None
    assert "This is the start of" in page


def test_51_messages_need_a_second_page(app, alice):
    ids = add_messages(app, PAGE)
    assert len(ids) == PAGE + 1
    first = text(alice.get("/room/general/"))
    assert shown(first) == ids[1:][::-1]
    older = link(first, "older")
    assert query(older) == {"before": [str(ids[1])]}

    second = alice.get(older)
    assert second.status_code == 200
    page = text(second)
    assert shown(page) == [ids[0]]
    assert "<bdi>alice</bdi> created the room" in page
    assert "This is the start of" in page
    assert link(page, "older") is None
    assert not is_live(page)  # history is read, not live
    newer = link(page, label="Newer messages")
    assert query(newer) == {"after": [str(ids[0])]}
    assert link(page, label="Latest") == "/room/general/"

    back = text(alice.get(newer))
    assert shown(back) == ids[1:][::-1]
    assert is_live(back)  # caught up with the newest: live again


def test_a_new_room_shows_its_start(app, alice):
    [created] = add_messages(app, 0)
    page = text(alice.get("/room/general/"))
    assert shown(page) == [created]
    assert "This is the start of" in page
    assert link(page, "older") is None


def test_before_shows_the_50_before_it_with_older_and_newer_links(app, alice):
    ids = add_messages(app, 130)
    page = text(alice.get(f"/room/general/?before={ids[100]}"))
    assert shown(page) == ids[50:100][::-1]
    assert query(link(page, "older")) == {"before": [str(ids[50])]}
    assert query(link(page, label="Newer messages")) == {"after": [str(ids[99])]}
    assert not is_live(page)
    # the no-JS "older" link walks back to the start without gaps or repeats
    seen, url = [], f"/room/general/?before={ids[100]}"
    while url:
        page = text(alice.get(url))
        seen.extend(shown(page))
        url = link(page, "older")
    assert seen == ids[:100][::-1]
    assert "This is the start of" in page


def test_before_an_id_past_either_end_is_harmless(app, alice):
    ids = add_messages(app, 3)
    page = text(alice.get("/room/general/?before=999999999"))
    assert shown(page) == ids[::-1]
    page = text(alice.get("/room/general/?before=1"))
    assert shown(page) == [i for i in ids if i < 1][::-1]


def test_after_shows_the_50_after_it(app, alice):
    ids = add_messages(app, 130)
    page = text(alice.get(f"/room/general/?after={ids[10]}"))
    assert shown(page) == ids[11:61][::-1]
    assert query(link(page, "older")) == {"before": [str(ids[11])]}
    assert query(link(page, label="Newer messages")) == {"after": [str(ids[60])]}
    assert not is_live(page)

    page = text(alice.get(f"/room/general/?after={ids[100]}"))
    assert shown(page) == ids[101:][::-1]
    assert is_live(page)  # reached the newest
    assert link(page, label="Newer messages") is None


def test_after_the_newest_message_shows_the_latest_page(app, alice):
    ids = add_messages(app, 60)
    response = alice.get(f"/room/general/?after={ids[-1]}")
    assert response.status_code == 200
    page = text(response)
    assert shown(page) == ids[-PAGE:][::-1]
    assert is_live(page)


INVALID_IDS = ["abc", "-1", "1.5", "", " 1", "0x10", "²", "١٢", "1" * 19]


def test_an_invalid_id_is_a_400_page(app, alice):
    for arg in ("before", "after"):
        for value in INVALID_IDS:
            response = alice.get("/room/general/", query_string={arg: value})
            assert response.status_code == 400, (arg, value)
            page = text(response)
            assert '<p class="error-code">400</p>' in page, (arg, value)
            assert "Bad request" in page


def test_infinite_scroll_gets_only_the_older_slice(app, alice):
    ids = add_messages(app, 60)
    response = alice.get(f"/room/general/?before={ids[-PAGE]}", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert "HX-Request" in response.headers["Vary"]
    fragment = text(response)
    assert "<html" not in fragment and 'id="composer"' not in fragment  # the slice, not the page
    assert shown(fragment) == ids[:-PAGE][::-1]
    assert 'id="older"' in fragment and "This is the start of" in fragment
    # the same URL without htmx is the full page (no-JS link, reload, bookmark)
    full = alice.get(f"/room/general/?before={ids[-PAGE]}")
    assert "<html" in text(full)
    assert "HX-Request" in full.headers["Vary"]
