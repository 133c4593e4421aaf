"""Layout on phones and desktops, light and dark, keyboard use; saves the screenshots
under docs/screenshots/."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from webchat.models import utcnow

from ..liveserver import Browser
from .conftest import DESKTOP, PASSWORD, PHONE, no_horizontal_scroll, screenshot, seed_conversation

READER = "alice"


@pytest.fixture(scope="module")
def showcase(web, live_database_url):
    """A few rooms with a believable conversation; the module's database is its own."""
    for name in ("bob", "chen", "dora"):
        Browser(web).signup(name, PASSWORD)
    Browser(web).signup(READER, PASSWORD)
    now = utcnow()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    yesterday = midnight - timedelta(days=1) + timedelta(hours=18)
    today = midnight + (now - midnight) / 3  # some time today, before now

    def at(base, minutes):
        return base + timedelta(minutes=minutes)

    seed_conversation(
        live_database_url,
        "Design reviews",
        "dora",
        at(yesterday, -600),
        [
            ("dora", "New mock-ups for the settings page are up", at(yesterday, -590)),
            ("chen", "Looks clean. Can we keep the old shortcut keys?", at(yesterday, -570)),
            (READER, "Yes please, I use them all the time", at(yesterday, -560)),
        ],
    )
    seed_conversation(
        live_database_url,
        "读书会 · Book club",
        "chen",
        at(yesterday, -300),
        [
            ("chen", "下周读《三体》第二部，大家觉得怎么样？", at(yesterday, -290)),
            ("bob", "Sounds good to me!", at(yesterday, -280)),
        ],
    )
    seed_conversation(
        live_database_url,
        "Weekend hike",
        READER,
        at(yesterday, 0),
        [
            ("bob", "Anyone up for a hike on Saturday? 🥾", at(yesterday, 2)),
            (
                "bob",
                "Forecast looks good: https://weather.example.com/forecast?city=zurich&day=saturday",
                at(yesterday, 3),
            ),
            ("chen", "I'm in! Which trail?", at(yesterday, 10)),
            (READER, "How about the lake loop? About 14 km, mostly flat.", at(yesterday, 12)),
            (READER, "We could take the 8:15 train from the main station.", at(yesterday, 13)),
            ("bob", "Lake loop sounds great.\nI'll bring snacks and the first-aid kit.", at(today, 0)),
            (
                "chen",
                "Map for the route: https://maps.example.org/routes/lake-loop-14km-clockwise-with-the-long-viewpoint-detour",
                at(today, 1),
            ),
            ("dora", "Can I join too? I've never done this one", at(today, 20)),
            (READER, "Of course! Meet at the clock, 8:00 🙂", at(today, 22)),
        ],
    )


def log_in(page, base_url: str) -> None:
    page.goto(base_url + "/login/")
    page.get_by_label("Username").fill(READER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.get_by_role("heading", name="Rooms").wait_for()


def open_room(page, name: str = "Weekend hike") -> None:
    page.get_by_role("link", name=name).click()
    expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
    expect(page.get_by_role("log").locator("article").last).to_be_attached()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_desktop(open_page, web, showcase, scheme):
    page = open_page(viewport=DESKTOP, color_scheme=scheme)
    response = page.goto(web.url + "/login/")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe" not in csp, csp
    log_in(page, web.url)
    no_horizontal_scroll(page)
    screenshot(page, f"rooms-{scheme}")

    open_room(page)
    log = page.get_by_role("log")
    expect(log.locator("h2.day")).to_have_text(["Today", "Yesterday"])
    # Grouped: the second of two quick messages by one person shows no name.
    expect(log.locator("article.msg-cont")).to_have_count(2)
    link = log.get_by_role("link", name="https://weather.example.com/forecast?city=zurich&day=saturday")
    expect(link).to_have_attribute("rel", "noopener nofollow ugc")
    expect(log.locator("article", has_text="I'll bring snacks")).to_contain_text("Lake loop sounds great.\nI'll")
    no_horizontal_scroll(page)
    screenshot(page, f"room-desktop-{scheme}")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_phone(open_page, web, showcase, scheme):
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, color_scheme=scheme)
    log_in(page, web.url)
    no_horizontal_scroll(page)
    if scheme == "light":
        screenshot(page, "rooms-phone-light")
    open_room(page)
    no_horizontal_scroll(page)
    box = page.get_by_role("textbox", name="Message")
    send = page.get_by_role("button", name="Send")
    for control in (box, send):
        expect(control).to_be_in_viewport(ratio=1)
        size = control.bounding_box()
        assert size["height"] >= 44 and size["y"] + size["height"] <= PHONE["height"], size
    assert send.bounding_box()["width"] >= 44
    # The newest message is in view, right above the composer.
    expect(page.get_by_role("log").locator("article").first).to_be_in_viewport()
    screenshot(page, f"room-phone-{scheme}")


def test_keyboard_and_labels(open_page, web, showcase):
    page = open_page(viewport=DESKTOP)
    log_in(page, web.url)
    open_room(page, "Design reviews")  # not the screenshots' room
    # Every form control has a name; focus is always visible.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    for _ in range(12):
        page.keyboard.press("Tab")
        outline = page.evaluate(
            "() => { const s = getComputedStyle(document.activeElement); return [document.activeElement.tagName,"
            " s.outlineStyle, s.outlineWidth] }"
        )
        if outline[0] == "BODY":
            continue
        assert outline[1] != "none" and outline[2] != "0px", outline
    unlabelled = page.evaluate(
        "() => [...document.querySelectorAll('input:not([type=hidden]), button, select, textarea')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())"
        ".map(e => e.outerHTML)"
    )
    assert unlabelled == []
    # Keyboard only: focus the composer, type, Enter sends.
    page.get_by_role("textbox", name="Message").focus()
    page.keyboard.type("Sent with the keyboard")
    page.keyboard.press("Enter")
    sent = page.get_by_role("log").locator("article", has_text="Sent with the keyboard")
    expect(sent).to_have_count(1)
    # The room was quiet since yesterday: the pushed message, rendered for this
    # reader's view, starts today with its heading (after it in the column-reverse
    # DOM, so above it on screen).
    heading = sent.locator("xpath=following-sibling::*[1]")
    expect(heading).to_have_text("Today")
    expect(heading).to_have_class("day")
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
