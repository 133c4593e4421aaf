"""The reader's time zone: a profile setting, UTC until set."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from webchat.extensions import db
from webchat.models import Message, User

from .conftest import create_room, field_error, post_form, signup


def first_message_clock(page: str) -> str:
    return re.search(r'<article id="m-\d+".*?<time class="msg-time[^"]*"[^>]*>([^<]+)</time>', page, re.S).group(1)


def created_at(app) -> datetime:
    with app.app_context():
        return db.session.query(Message.created_at).order_by(Message.id).first()[0]


def test_times_are_utc_until_a_zone_is_set_then_in_that_zone(app, client):
    signup(client)
    create_room(client, "tz")
    utc = created_at(app)
    assert first_message_clock(client.get("/room/tz/").get_data(as_text=True)) == utc.strftime("%H:%M")

    response = post_form(client, "/settings/", {"time_zone": "Asia/Kathmandu"})
    assert response.status_code == 303
    with app.app_context():
        assert db.session.query(User.time_zone).scalar() == "Asia/Kathmandu"
    local = utc + timedelta(hours=5, minutes=45)  # Nepal has no daylight saving time
    assert first_message_clock(client.get("/room/tz/").get_data(as_text=True)) == local.strftime("%H:%M")

    page = client.get("/settings/").get_data(as_text=True)
    assert re.search(r'<option selected value="Asia/Kathmandu">|<option value="Asia/Kathmandu" selected>', page)

    post_form(client, "/settings/", {"time_zone": "UTC"})
    with app.app_context():
        assert db.session.query(User.time_zone).scalar() is None


def test_an_unknown_zone_is_refused_next_to_the_field(app, client):
    signup(client)
    response = post_form(client, "/settings/", {"time_zone": "Mars/Olympus_Mons"})
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "time_zone") == "Pick a time zone from the list."
    with app.app_context():
        assert db.session.query(User.time_zone).scalar() is None


def test_settings_need_a_login_and_the_header_links_there(client):
    assert client.get("/settings/").headers["Location"].startswith("/login/?next=")
    signup(client)
    assert 'href="/settings/"' in client.get("/").get_data(as_text=True)
