"""Two people chat live in two browsers, through a server restart."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from ..liveserver import Browser, LiveServer
from .conftest import sign_up, unique


def room_url(server: LiveServer, room: str) -> str:
    return f"{server.url}/room/{room}/"


def status(page):
    return page.locator("#status")


def composer(page):
    return page.get_by_role("textbox", name="Message")


def say(page, text: str) -> None:
    """Type like a person (input events, so others see "typing…"), then press Enter."""
    box = composer(page)
    box.click()
    box.press_sequentially(text, delay=5)
    box.press("Enter")


def log_ids(page) -> list[str]:
    return page.locator("#log article.msg").evaluate_all("els => els.map(e => e.id)")


@pytest.fixture
def restartable(live_database_url, tmp_path):
    """A server of the test's own, which it may stop and start again on the same port."""
    servers = [LiveServer(live_database_url, tmp_path, RATE_LIMIT_COUNT="1000", RATE_LIMIT_WINDOW="1").start()]

    def restart() -> LiveServer:
        servers.append(
            LiveServer(
                live_database_url, tmp_path, port=servers[0].port, RATE_LIMIT_COUNT="1000", RATE_LIMIT_WINDOW="1"
            ).start()
        )
        return servers[-1]

    yield servers[0], restart
    for server in servers:
        server.stop()


def test_two_people_chat_live_and_catch_up_after_a_restart(open_page, console, restartable):
    server, restart = restartable
    room = unique("lounge")
    alice_name, bob_name = unique("alice"), unique("bob")
    alice, bob = open_page(), open_page()

    sign_up(alice, server.url, alice_name)
    alice.get_by_role("link", name="New room").first.click()
    alice.get_by_label("Room name").fill(room)
    alice.get_by_label("Room name").press("Enter")
    expect(alice.get_by_role("heading", level=1)).to_have_text(room)
    sign_up(bob, server.url, bob_name)
    bob.goto(room_url(server, room))

    for page in (alice, bob):
        expect(status(page)).to_have_text("Live", use_inner_text=True)
        expect(page.get_by_role("log")).to_be_visible()
    expect(alice.locator("#presence")).to_contain_text(bob_name)

    # Alice types: Bob sees that she is typing, then her message; her composer empties.
    box = composer(alice)
    box.click()
    box.press_sequentially("Hi Bob", delay=20)
    expect(bob.locator("#typing")).to_contain_text(f"{alice_name} is typing")
    box.press_sequentially(", see https://example.org/trail?a=1&b=2 ", delay=5)
    box.press("Enter")
    bob_view = bob.locator("#log article", has_text="Hi Bob")
    expect(bob_view).to_have_count(1)
    expect(bob_view.get_by_role("link", name="https://example.org/trail?a=1&b=2")).to_have_attribute(
        "rel", "noopener nofollow ugc"
    )
    expect(composer(alice)).to_have_value("")
    expect(composer(alice)).to_be_focused()

    say(bob, "Hello Alice <b>not bold</b>")
    reply = alice.locator("#log article", has_text="Hello Alice <b>not bold</b>")
    expect(reply).to_have_count(1)
    assert reply.locator("b").count() == 0  # user text is text, never markup

    # Own messages sit on the right, the others' on the left.
    own = alice.locator("#log article", has_text="Hi Bob").bounding_box()
    other = reply.bounding_box()
    assert own["x"] > other["x"] + 100, (own, other)

    # Carol is in the room with plain HTTP (no JavaScript) and will talk while the
    # server is down for the browsers.
    carol_name = unique("carol")
    carol = Browser(server).signup(carol_name)
    carol.enter(room)
    expect(alice.locator("#log")).to_contain_text(f"{carol_name} joined the room")

    assert console.unexpected() == []
    server.stop()
    for page in (alice, bob):
        expect(status(page)).to_have_text("Reconnecting…", use_inner_text=True, timeout=15_000)

    restart()
    status_code, _ = carol.post(carol.room_path(room), {"message": "You missed this one"})
    assert status_code == 200

    for page in (alice, bob):
        # htmx reconnects with a randomised, growing back-off: give it time.
        expect(status(page)).to_have_text("Live", use_inner_text=True, timeout=45_000)
        expect(page.locator("#log article", has_text="You missed this one")).to_have_count(1)
        expect(page.locator("#log article", has_text="Hi Bob")).to_have_count(1)
        expect(page.locator("#log article", has_text="Hello Alice")).to_have_count(1)
        ids = log_ids(page)
        assert len(ids) == len(set(ids)), ids
    # While the server was down, the socket failed (Chrome and htmx's ws extension say
    # so on the console); CSP violations are checked all along by the fixture.
    console.messages[:] = [m for m in console.messages if "Content Security Policy" in m]

    # And the room goes on live after the restart.
    say(alice, "Back again")
    expect(bob.locator("#log article", has_text="Back again")).to_have_count(1)

    assert console.unexpected() == []
