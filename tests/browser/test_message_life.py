"""Two people change messages in two browsers: edit inline, react, reply, delete; each
sees the other's change within a moment, without a reload and without custom JavaScript."""

from __future__ import annotations

from playwright.sync_api import expect

from .conftest import create_room, screenshot, sign_up, unique
from .test_live_chat import composer, room_url, say, status


def message(page, text: str):
    """The message whose own text (not a quote of it) says ``text``."""
    return page.locator("#log article.msg").filter(has=page.locator("bdi.msg-text", has_text=text))


def open_menu(page, text: str):
    """The message's menu, opened like a person: by tap/click, or by keyboard."""
    article = message(page, text)
    article.hover()
    article.locator("summary.msg-menu-button").click()
    return article.locator(".msg-actions")


def menu_page(page, text: str):
    """Without JavaScript: the message's menu opens (<details> needs no script) on a link
    to the page of its actions."""
    open_menu(page, text).get_by_role("link", name="Message actions").click()
    expect(page.get_by_role("heading", name="Message actions")).to_be_visible()
    return page.locator("main")


def test_two_people_edit_react_reply_and_delete_live(open_page, console, web):
    room = unique("plans")
    alice_name, bob_name = unique("alice"), unique("bob")
    alice, bob = open_page(), open_page()
    sign_up(alice, web.url, alice_name)
    create_room(alice, web.url, room)
    sign_up(bob, web.url, bob_name)
    bob.goto(room_url(web, room))
    for page in (alice, bob):
        expect(status(page)).to_have_text("Live", use_inner_text=True)

    say(alice, "Lunch at noom?")
    expect(message(bob, "Lunch at noom?")).to_have_count(1)

    # Alice edits inline: the menu by keyboard, the form in place of the message.
    summary = message(alice, "Lunch at noom?").locator("summary.msg-menu-button")
    summary.focus()
    summary.press("Enter")
    menu = message(alice, "Lunch at noom?").locator(".msg-actions")
    expect(menu).to_be_visible()
    menu.get_by_role("link", name="Edit").click()
    box = alice.get_by_role("textbox", name="Edit your message")
    expect(box).to_be_focused()
    expect(box).to_have_value("Lunch at noom?")
    box.fill("Lunch at noon?")
    alice.get_by_role("button", name="Save").click()
    for page in (alice, bob):
        edited = message(page, "Lunch at noon?")
        expect(edited).to_have_count(1)
        expect(edited.locator(".msg-edited")).to_have_text("edited")
    expect(message(bob, "noom")).to_have_count(0)

    # Bob may not edit or delete Alice's message: the page's style hides both for him.
    menu = open_menu(bob, "Lunch at noon?")
    expect(menu.get_by_role("link", name="Reply")).to_be_visible()
    expect(menu.get_by_role("link", name="Edit")).to_be_hidden()
    expect(menu.get_by_role("button", name="Delete")).to_be_hidden()

    # Bob reacts; both see the count, and only Bob's chip is marked as his own.
    menu.get_by_role("button", name="🎉").click()
    chips = {page: message(page, "Lunch at noon?").locator("button.reaction") for page in (alice, bob)}
    for chip in chips.values():
        expect(chip).to_have_count(1)
        expect(chip).to_have_text("🎉 1")
        expect(chip).to_have_attribute("title", bob_name)
    weight = "el => getComputedStyle(el).fontWeight"
    assert chips[bob].evaluate(weight) == "700" and chips[alice].evaluate(weight) != "700"
    # Alice adds hers by pressing the chip.
    chips[alice].click()
    for chip in chips.values():
        expect(chip).to_have_text("🎉 2")

    # Bob replies: the composer says to whom, the reply quotes the original for both.
    open_menu(bob, "Lunch at noon?").get_by_role("link", name="Reply").click()
    expect(bob.locator(".composer-reply")).to_contain_text(f"Replying to {alice_name}")
    expect(composer(bob)).to_be_focused()
    expect(message(bob, "Lunch at noon?").locator(".msg-actions")).to_be_hidden()  # the menu closed
    say(bob, "Yes, see you there")
    for page in (alice, bob):
        quote = message(page, "Yes, see you there").locator("a.quote")
        expect(quote).to_contain_text(f"{alice_name} Lunch at noon?")
    expect(bob.locator(".composer-reply")).to_have_count(0)  # the next message replies to nothing
    screenshot(bob, "message-life")

    # Alice deletes hers: gone for both, and the reply says so.
    alice.once("dialog", lambda dialog: dialog.accept())
    open_menu(alice, "Lunch at noon?").get_by_role("button", name="Delete").click()
    for page in (alice, bob):
        expect(message(page, "Lunch at noon?")).to_have_count(0)
        expect(message(page, "Yes, see you there").locator(".quote")).to_have_text("The original message was deleted.")
    # And the room goes on.
    say(alice, "Never mind")
    expect(message(bob, "Never mind")).to_have_count(1)
    assert console.unexpected() == []


def test_without_javascript_every_action_has_a_page_of_its_own(open_page, web):
    room = unique("quiet")
    alice = open_page(java_script_enabled=False)
    sign_up(alice, web.url, unique("alice"))
    create_room(alice, web.url, room)
    say(alice, "Teh plan")
    expect(message(alice, "Teh plan")).to_have_count(1)

    menu_page(alice, "Teh plan").get_by_role("link", name="Edit").click()
    alice.get_by_role("textbox", name="Edit your message").fill("The plan")
    alice.get_by_role("button", name="Save").click()
    expect(message(alice, "The plan").locator(".msg-edited")).to_have_text("edited")

    menu_page(alice, "The plan").get_by_role("button", name="👀").click()  # posts, back to the room
    expect(message(alice, "The plan").locator("button.reaction")).to_have_text("👀 1")
    message(alice, "The plan").locator("button.reaction").click()  # the chip opens the reaction page
    expect(alice.get_by_role("heading", name="React to a message")).to_be_visible()
    expect(alice.get_by_role("button", name="👀")).to_be_focused()
    alice.keyboard.press("Enter")  # takes it back
    expect(message(alice, "The plan").locator("button.reaction")).to_have_count(0)

    menu_page(alice, "The plan").get_by_role("link", name="Reply").click()
    expect(alice.locator(".composer-reply")).to_contain_text("The plan")
    say(alice, "Step one")
    expect(message(alice, "Step one").locator(".quote")).to_contain_text("The plan")

    menu_page(alice, "The plan").get_by_role("link", name="Delete").click()  # the confirmation page
    expect(alice.get_by_role("heading", name="Delete this message?")).to_be_visible()
    alice.get_by_role("button", name="Delete").click()
    expect(message(alice, "The plan")).to_have_count(0)
    expect(message(alice, "Step one").locator(".quote")).to_have_text("The original message was deleted.")
