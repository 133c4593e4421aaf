"""Search in a real browser: results follow the typing (htmx, no JavaScript of our own),
and a result opens its room centred on the message, marked."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

from playwright.sync_api import expect

from webchat.models import utcnow

from .conftest import PHONE, no_horizontal_scroll, screenshot, seed_conversation, sign_up, unique


def test_typing_finds_messages_and_a_result_opens_the_message_marked(open_page, web, live_database_url):
    reader = unique("mei")
    page = open_page()
    sign_up(page, web.url, reader)
    room = unique("ops")
    start = utcnow() - timedelta(hours=3)
    lines = [(reader, f"status update {i}", start + timedelta(minutes=i)) for i in range(120)]
    lines[40] = (reader, "我们的数据库又挂了", lines[40][2])
    ids = seed_conversation(live_database_url, room, reader, start - timedelta(minutes=1), lines)
    target = ids[40]

    # The room list's box: a plain GET form to the search page.
    page.goto(web.url + "/")
    box = page.get_by_role("searchbox", name="Search messages")
    screenshot(page, "rooms-search")
    box.fill("数据")
    box.press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?q=" + re.escape(quote("数据"))))
    hits = page.locator("ol.hits li.hit")
    expect(hits).to_have_count(1)

    # On the search page, results follow the typing without loading another page.
    page.evaluate("() => { window.sameDocument = true }")
    requests = []
    page.on("request", lambda r: requests.append(r.url) if "/search/" in r.url else None)
    search = page.locator("#q")
    search.fill("")
    search.press_sequentially("status update 73", delay=40)
    expect(hits).to_have_count(1)
    expect(hits.first.locator(".hit-text")).to_have_text("status update 73")
    expect(hits.first.locator("mark")).to_have_text("status update 73")
    assert len(requests) <= 3, requests  # one after the typing stopped, not one per key
    search.fill("数据库")
    expect(hits.first.locator("mark")).to_have_text("数据库")
    expect(hits).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/search/\?q=" + re.escape(quote("数据库")) + "$"))
    assert page.evaluate("() => window.sameDocument") is True  # htmx swapped the results in
    # Too long: the error appears next to the box, and goes when the text is fixed.
    search.fill("长" * 101)
    expect(page.locator("#q-error")).to_have_text("Search for at most 100 characters; this has 101.")
    search.fill("数据库")
    expect(page.locator("#q-error")).to_have_text("")
    expect(hits).to_have_count(1)
    screenshot(page, "search-desktop")

    # The result opens the room at that message, half a page of history either side.
    hits.first.click()
    expect(page).to_have_url(re.compile(rf"\?around={target}#m-{target}$"))
    message = page.locator(f"#m-{target}")
    expect(message).to_be_in_viewport()
    assert page.evaluate("() => document.querySelector(':target').id") == f"m-{target}"
    assert message.evaluate("e => getComputedStyle(e).outlineStyle") == "solid"
    expect(page.get_by_role("link", name="Newer messages")).to_be_visible()
    expect(page.locator("#older")).to_be_attached()
    expect(page.locator(".room-head .status")).to_have_text("History")  # not live: newer messages exist
    screenshot(page, "permalink-desktop")
    phone = page.context.new_page()  # the same link on a phone
    phone.set_viewport_size(PHONE)
    phone.goto(page.url)
    expect(phone.locator(f"#m-{target}")).to_be_in_viewport()
    no_horizontal_scroll(phone)
    screenshot(phone, "permalink-phone")
    phone.close()

    # Each message's time is its permalink: the newest end of the room is live again.
    page.get_by_role("link", name="Latest").click()
    expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
    newest = page.locator("#log article.msg").first
    newest.locator("a.msg-link").click()
    expect(page).to_have_url(re.compile(rf"\?around={ids[-1]}#m-{ids[-1]}$"))
    expect(page.locator(f"#m-{ids[-1]}")).to_be_in_viewport()
    expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)  # nothing newer: live

    # The room's own box searches that room.
    page.get_by_role("searchbox", name="Search this room").fill("update 7")
    page.get_by_role("searchbox", name="Search this room").press("Enter")
    expect(page).to_have_url(re.compile(r"/search/\?room="))
    expect(page.locator(".search-scope")).to_contain_text(room)
    expect(hits.first.locator("mark")).to_have_text("update 7")
