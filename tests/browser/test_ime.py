"""Chinese input: the Enter that confirms an IME candidate must not send the message.

Chromium's DevTools protocol plays the input method. Input.imeSetComposition puts the
pinyin in the field as a composition (what the IME shows while you choose), and
Input.insertText commits the candidate, ending the composition. While composing, the
IME consumes the keys it uses: the page gets the Enter keydown (isComposing, and
keyCode 229 where the platform reports the key as processed by the IME) and its keyup,
but no character, hence no keypress. The form is submitted implicitly (Enter in its
text field) only on that keypress, with htmx (a WebSocket frame) or without it (a
POST), so the composer needs no script of its own to stay quiet.

The keydowns are sent without ``text`` on purpose: a keyDown with text "\\r" (which is
what Playwright's keyboard.press("Enter") sends) also dispatches the character, which
an input method does not pass on for a key it consumes (Chromium turns such a key into
a keydown of keyCode 229 and no character). Given one anyway, Chromium submits the
form with the raw pinyin in it: implicit submission does not look at the composition.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import expect

from .conftest import create_room, sign_up, stored_bodies, unique

PINYIN = ("n", "ni", "ni'h", "ni'hao")
CANDIDATE = "你好"

# Test code, not app code (the app has no script of its own): what reached the page.
RECORD_EVENTS = """() => {
  window.imeEvents = [];
  for (const type of ["keydown", "keypress", "keyup", "compositionend", "submit"]) {
    addEventListener(type, (e) => imeEvents.push(
      {type, key: e.key ?? null, keyCode: e.keyCode ?? null, isComposing: e.isComposing ?? null, data: e.data ?? null}
    ), true);
  }
}"""


def compose(cdp, text: str) -> None:
    cdp.send("Input.imeSetComposition", {"text": text, "selectionStart": len(text), "selectionEnd": len(text)})


def enter(cdp, type_: str, key_code: int) -> None:
    """An Enter key event without a character (see the module's docstring)."""
    cdp.send(
        "Input.dispatchKeyEvent",
        {
            "type": type_,
            "key": "Enter",
            "code": "Enter",
            "windowsVirtualKeyCode": key_code,
            "nativeVirtualKeyCode": key_code,
        },
    )


def watch_sends(page, room_url: str) -> list[str]:
    """The messages the page sends: WebSocket frames (not the typing notices) and POSTs."""
    sent: list[str] = []

    def frame(payload) -> None:
        data = json.loads(payload)
        if "typing" not in data:
            sent.append(data.get("message"))

    def request(req) -> None:
        if req.method == "POST" and req.url == room_url:
            sent.append(parse_qs(req.post_data or "").get("message", [None])[0])

    page.on("websocket", lambda ws: ws.on("framesent", frame))
    page.on("request", request)
    return sent


@pytest.mark.parametrize("javascript", [True, False], ids=["websocket", "no-javascript"])
def test_enter_that_confirms_an_ime_candidate_does_not_send(open_page, web, live_database_url, javascript):
    page = open_page(java_script_enabled=javascript)
    sign_up(page, web.url, unique("lin"))
    room = unique("chinese")
    create_room(page, web.url, room)
    room_url = f"{web.url}/room/{room}/"
    sent = watch_sends(page, room_url)
    page.reload()
    if javascript:
        expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
        page.evaluate(RECORD_EVENTS)
    box = page.get_by_role("textbox", name="Message")
    box.click()
    cdp = page.context.new_cdp_session(page)

    # Confirming with Enter: the keydown comes while composing, as keyCode 229 (how
    # Chromium reports a key its IME processes) or as a plain Enter (13); then the
    # candidate is committed, then the key goes up.
    for key_code in (229, 13):
        box.fill("")
        if javascript:
            page.evaluate("imeEvents.length = 0")
        for typed in PINYIN:
            compose(cdp, typed)
        expect(box).to_have_value("ni'hao")
        enter(cdp, "keyDown", key_code)
        cdp.send("Input.insertText", {"text": CANDIDATE})
        enter(cdp, "keyUp", 13)

        page.wait_for_timeout(500)  # a send would have gone by now
        assert sent == [], (key_code, sent)
        assert stored_bodies(live_database_url, room) == []
        expect(page.locator("#log .msg-user")).to_have_count(0)
        expect(box).to_have_value(CANDIDATE)
        if javascript:  # why: the page saw a composing keydown and no keypress
            events = page.evaluate("imeEvents")
            assert [(e["type"], e["keyCode"], e["isComposing"]) for e in events if e["type"] != "compositionend"] == [
                ("keydown", key_code, True),
                ("keyup", 13, False),
            ], events
            assert [e["data"] for e in events if e["type"] == "compositionend"] == [CANDIDATE], events

    # The composition is over: Enter now sends what was chosen.
    box.press("Enter")
    mine = page.locator("#log .msg-user")
    expect(mine).to_have_count(1)
    expect(mine.locator(".msg-body")).to_contain_text(CANDIDATE)
    expect(page.get_by_role("textbox", name="Message")).to_have_value("")
    assert sent == [CANDIDATE]
    assert stored_bodies(live_database_url, room) == [CANDIDATE]
