"""History: infinite scroll upward with JavaScript, plain pages without it."""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import expect

from webchat.models import utcnow

from ..liveserver import Browser
from .conftest import create_room, seed_messages, seed_room, sign_up, unique


def three_days(author: str, other: str, per_day: tuple[int, int, int]) -> list:
    """Messages two days ago, yesterday and today (before now), alternating authors in runs."""
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    lines = []
    for days_ago, count in zip((2, 1, 0), per_day, strict=True):
        start = midnight - timedelta(days=days_ago) + timedelta(hours=8)
        step = timedelta(minutes=3)
        if days_ago == 0:  # today: squeeze them between midnight and now
            start, step = midnight, (now - midnight) / (count + 1)
        for i in range(count):
            who = author if (i // 3) % 2 == 0 else other
            lines.append((who, f"day-{days_ago} message {i}", start + step * (i + 1)))
    return lines


def test_scrolling_up_loads_older_history_in_place(open_page, web, live_database_url):
    reader, other = unique("dana"), unique("eli")
    Browser(web).signup(other)
    page = open_page()
    sign_up(page, web.url, reader)
    room = unique("archive")
    lines = three_days(reader, other, (60, 40, 30))
    seed_room(live_database_url, room, reader, lines[0][2] - timedelta(minutes=5))
    seed_messages(live_database_url, room, lines)
    total = len(lines) + 2  # + "created the room" + "joined the room"

    older_requests = []
    page.on("request", lambda r: older_requests.append(r.url) if "before=" in r.url else None)
    page.goto(f"{web.url}/room/{room}/")
    log = page.get_by_role("log")
    messages = log.locator("article.msg")
    expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
    expect(messages).to_have_count(50)
    expect(messages.first).to_be_in_viewport()
    page.wait_for_timeout(300)
    assert older_requests == []  # the loader is out of sight: nothing loads by itself

    # Hold the first older slice to see the loading indicator.
    held = []

    def older(url: str) -> bool:
        return "before=" in url

    page.route(older, lambda route: held.append(route))
    log.hover()
    page.mouse.wheel(0, -20_000)
    expect(page.locator("#older .older-busy")).to_be_visible()
    expect(page.locator("#older")).to_have_class(re.compile(r"\bhtmx-request\b"))
    oldest = messages.last
    oldest_id = oldest.get_attribute("id")
    y_before = page.locator(f"#{oldest_id}").bounding_box()["y"]
    assert len(held) == 1
    held[0].continue_()
    page.unroute(older)

    expect(messages).to_have_count(100)
    # What the reader saw stays where it was: the new slice went above it.
    y_after = page.locator(f"#{oldest_id}").bounding_box()["y"]
    assert abs(y_after - y_before) < 2, (y_before, y_after)
    page.wait_for_timeout(500)
    assert len(older_requests) == 1, older_requests  # one slice per scroll, no cascade

    page.mouse.wheel(0, -50_000)
    expect(page.locator(".room-start")).to_be_visible()
    expect(page.locator(".room-start")).to_contain_text(f"This is the start of {room}")
    expect(messages).to_have_count(total)
    assert len(older_requests) == 2, older_requests
    ids = messages.evaluate_all("els => els.map(e => +e.id.slice(2))")
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)

    # One separator per day, above that day's first message, across slice borders too.
    days = log.locator("h2.day").all_text_contents()
    assert days[:2] == ["Today", "Yesterday"] and len(days) == 3, days
    # Runs of one author are grouped under one name.
    assert log.locator("article.msg-cont").count() > 50


def test_without_javascript_sign_up_create_post_and_page_through_history(open_page, web, live_database_url):
    page = open_page(java_script_enabled=False)
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    name, room = unique("nojs"), unique("plain")
    sign_up(page, web.url, name)
    create_room(page, web.url, room)
    # (Playwright's java_script_enabled=False stops scripts but still parses <noscript>
    # as if scripts ran, so the page's <noscript> notes can't be checked here.)

    box = page.get_by_role("textbox", name="Message")
    box.fill("Posted without JavaScript")
    box.press("Enter")
    expect(page.locator("#log article", has_text="Posted without JavaScript")).to_have_count(1)
    expect(page.get_by_role("textbox", name="Message")).to_have_value("")

    # An empty message is refused next to the input.
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#composer-error")).to_have_text(re.compile(r"\S"))

    now = utcnow()
    seed_messages(live_database_url, room, [(name, f"filler {i}", now + timedelta(milliseconds=i)) for i in range(70)])
    page.goto(f"{web.url}/room/{room}/")
    messages = page.locator("#log article.msg")
    expect(messages).to_have_count(50)
    expect(messages.first).to_contain_text("filler 69")
    assert sockets == []

    page.get_by_role("link", name="Older messages").click()
    expect(page).to_have_url(re.compile(r"\?before=\d+$"))
    expect(messages.first).to_contain_text("filler 19")
    expect(page.get_by_text(f"This is the start of {room}")).to_be_visible()
    expect(page.locator("#log")).to_contain_text("Posted without JavaScript")

    page.get_by_role("link", name="Newer messages").click()
    expect(page).to_have_url(re.compile(r"\?after=\d+$"))
    expect(messages.first).to_contain_text("filler 69")
