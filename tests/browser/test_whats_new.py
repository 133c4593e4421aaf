"""Know what is new, in a real browser: two panes on a desktop, one on a phone, news
arriving in the list by itself, the title counting it, the view starting at "New messages"."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import PHONE, create_room, sign_up, unique
from .test_message_life import open_menu


def test_two_panes_badges_that_move_by_themselves_and_the_new_divider(open_page, web, console):
    alice, bob = open_page(), open_page()
    alice_name, bob_name = unique("alice"), unique("bob")
    here, there = unique("here"), unique("there")
    sign_up(alice, web.url, alice_name)
    create_room(alice, web.url, there)
    sign_up(bob, web.url, bob_name)
    bob.goto(f"{web.url}/room/{there}/")  # bob joins "there"
    create_room(bob, web.url, here)  # ...and sits in "here", with the list beside it
    expect(bob.locator("#status")).to_have_text("Live", use_inner_text=True)
    sidebar = bob.locator("aside.sidebar")
    expect(sidebar).to_be_visible()
    expect(sidebar.locator(f"#room-list .room-link[href^='/room/{here}/']")).to_be_visible()
    # alice writes in "there": bob's sidebar entry gets a badge and moves to the top, live.
    alice.goto(f"{web.url}/room/{there}/")
    expect(alice.locator("#status")).to_have_text("Live", use_inner_text=True)
    for text in ("one", "two"):
        alice.get_by_role("textbox", name="Message").fill(f"news {text}")
        alice.get_by_role("textbox", name="Message").press("Enter")
        expect(alice.get_by_role("log").locator("article", has_text=f"news {text}")).to_have_count(1)
    first = sidebar.locator("#room-list li").first
    expect(first).to_contain_text(there, timeout=5000)
    expect(first.locator(".unread")).to_have_text(re.compile(r"^2"), timeout=5000)
    expect(bob).to_have_title(re.compile(r"^\(2\) "), timeout=5000)
    # Following the entry lands on the "New messages" divider, above the first unread.
    first.locator("a").click()
    expect(bob).to_have_url(re.compile(r"#new$"))
    divider = bob.locator("#new")
    expect(divider).to_be_visible()
    expect(divider).to_have_text("New messages")
    above = divider.evaluate("e => e.previousElementSibling.textContent")
    assert "news one" in above  # the DOM runs newest first: the divider sits above "news one"
    # On a phone the list is its own screen.
    phone = open_page(viewport=PHONE)
    sign_up(phone, web.url, unique("carol"))
    create_room(phone, web.url, unique("pocket"))
    expect(phone.locator("aside.sidebar")).to_be_hidden()
    assert console.unexpected() == []


def test_a_mention_is_marked_for_the_mentioned_reader_only(open_page, web):
    alice, bob = open_page(), open_page()
    alice_name, bob_name, room = unique("alice"), unique("bob"), unique("desk")
    sign_up(alice, web.url, alice_name)
    create_room(alice, web.url, room)
    sign_up(bob, web.url, bob_name)
    bob.goto(f"{web.url}/room/{room}/")
    alice.goto(f"{web.url}/room/{room}/")
    for page in (alice, bob):
        expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
    alice.get_by_role("textbox", name="Message").fill(f"@{bob_name} can you look?")
    alice.get_by_role("textbox", name="Message").press("Enter")
    shade = "e => getComputedStyle(e).backgroundColor"
    for page in (alice, bob):
        expect(page.locator("#log .mention")).to_have_text(f"@{bob_name}")
    seen_by_bob = bob.locator("#log article", has_text="can you look?")
    seen_by_alice = alice.locator("#log article", has_text="can you look?")
    # The same shared fragment; only bob's page has the rule for his id.
    mentions = ".msg-body[data-mentions]"
    assert seen_by_bob.locator(mentions).get_attribute("data-mentions") == seen_by_alice.locator(
        mentions
    ).get_attribute("data-mentions")
    assert "inset" in seen_by_bob.evaluate("e => getComputedStyle(e).boxShadow")  # the mention mark
    assert "inset" not in seen_by_alice.evaluate("e => getComputedStyle(e).boxShadow")
    assert bob.locator("#log .mention").evaluate(shade) != alice.locator("#log .mention").evaluate(shade)
    # An edit that drops the mention takes the mark off bob's live page; one that adds it back puts it on.
    for text, marked in (("can you look? (anyone)", False), (f"@{bob_name} can you look? really", True)):
        open_menu(alice, "can you look?").get_by_role("link", name="Edit").click()
        alice.get_by_role("textbox", name="Edit your message").fill(text)
        alice.get_by_role("button", name="Save").click()
        expect(bob.locator("#log article .msg-text", has_text=text)).to_have_count(1)
        mark = bob.locator("#log article", has_text=text).evaluate("e => getComputedStyle(e).boxShadow")
        assert ("inset" in mark) is marked, (text, mark)
