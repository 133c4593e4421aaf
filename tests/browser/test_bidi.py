"""Text in any script: right-to-left names and messages, and stray bidi controls, stay
inside their own message and never reorder the time or the sentence around them.

Layout is read glyph by glyph (a Range per character: test code reading layout, the
app has no script of its own). The page is English, left to right.
"""

from __future__ import annotations

import random
import unicodedata
from typing import NamedTuple

from playwright.sync_api import expect

from ..liveserver import Browser
from .conftest import create_room, sign_up, unique

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE, never closed by a PDF
OVERRIDDEN = f"abc{RLO}def 12:34 שלום مرحبا"
AFTER = "next 12:35"
HEBREW_FIRST = "שלום world"

GLYPHS = """(element, skip) => {
  const glyphs = [];
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (skip && node.parentElement.closest(skip)) continue;
    for (let i = 0; i < node.data.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getBoundingClientRect();
      glyphs.push([node.data[i], box.left, box.right, box.top]);
    }
  }
  return glyphs;
}"""


class Glyph(NamedTuple):
    char: str
    left: float
    right: float
    top: float


def glyphs(locator, skip: str | None = None) -> list[Glyph]:
    """The visible characters of an element in logical (typed) order, with their boxes;
    spaces and invisible format characters (bidi controls) left out."""
    return [
        Glyph(*g) for g in locator.evaluate(GLYPHS, skip) if not g[0].isspace() and unicodedata.category(g[0]) != "Cf"
    ]


def reads_left_to_right(line: list[Glyph]) -> bool:
    return all(a.left < b.left for a, b in zip(line, line[1:], strict=False))


def rtl_username() -> str:
    return f"שרה_{random.randrange(10**6):06d}"  # noqa: S311 - a test name, not a secret


def test_a_stray_rtl_override_does_not_flip_the_time_or_what_follows(open_page, web):
    page = open_page()
    sign_up(page, web.url, unique("reader"))
    room = unique("bidi")
    create_room(page, web.url, room)
    expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
    writer = Browser(web).signup(rtl_username())
    writer.enter(room)
    for text in (OVERRIDDEN, AFTER, HEBREW_FIRST):
        status, _ = writer.post(writer.room_path(room), {"message": text})
        assert status == 200

    for how in ("pushed", "rendered"):
        if how == "rendered":
            page.reload()
        log = page.get_by_role("log")
        overridden = log.locator("article.msg-user", has_text="abc")
        expect(overridden).to_have_count(1)
        expect(log.locator("article.msg-user")).to_have_count(3)

        # The time reads as it is written, at the end of the line: right of the text's
        # start and of everything the override turned around, at the bubble's end.
        time = overridden.locator("time")
        clock = time.get_attribute("datetime")[11:16]  # the reader's zone is UTC
        expect(time).to_have_text(clock)
        time_glyphs = glyphs(time)
        assert "".join(g.char for g in time_glyphs) == clock, (how, time_glyphs)
        assert reads_left_to_right(time_glyphs), (how, time_glyphs)
        text = glyphs(overridden.locator(".msg-body"), skip="time")
        assert [g.char for g in text[:3]] == ["a", "b", "c"] and reads_left_to_right(text[:3]), (how, text)
        box, bubble = time.bounding_box(), overridden.bounding_box()
        assert box["x"] > text[0].left, (how, box, text[0])
        assert box["x"] >= max(g.right for g in text) - 0.5, (how, box, text)
        assert bubble["x"] + bubble["width"] - (box["x"] + box["width"]) < 16, (how, box, bubble)

        # The next message is untouched by the override: its text and time read left to right.
        after = log.locator("article.msg-user", has_text=AFTER)
        after_glyphs = glyphs(after.locator(".msg-body"))
        assert "".join(g.char for g in after_glyphs) == AFTER.replace(" ", "") + after.locator("time").inner_text()
        assert reads_left_to_right(after_glyphs), (how, after_glyphs)

        # A message that starts in Hebrew is laid out right to left: "world" comes first
        # from the left, then the Hebrew word.
        hebrew = glyphs(log.locator("article.msg-user", has_text="world").locator(".msg-body"), skip="time")
        assert hebrew[0].char == "ש" and hebrew[4].char == "w", hebrew
        assert hebrew[4].left < hebrew[0].left, (how, hebrew)


def test_a_right_to_left_username_does_not_reorder_the_join_sentence(open_page, web):
    page = open_page()
    sign_up(page, web.url, unique("reader"))
    room = unique("bidi")
    create_room(page, web.url, room)
    expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
    name = rtl_username()
    Browser(web).signup(name).enter(room)

    for how in ("pushed", "rendered"):
        if how == "rendered":
            page.reload()
        joined = page.get_by_role("log").locator("article.msg-system", has_text="joined the room")
        expect(joined).to_have_count(1)
        expect(joined.locator("bdi")).to_have_text(name)  # isolated from the sentence

        # "<name> joined the room <time>", left to right: the whole name, then the
        # words in order, then the time reading as written.
        name_glyphs = glyphs(joined.locator("bdi"))
        sentence = glyphs(joined.locator(".msg-body"), skip="bdi, time")
        time_glyphs = glyphs(joined.locator("time"))
        assert "".join(g.char for g in sentence) == "joinedtheroom", (how, sentence)
        assert reads_left_to_right(sentence), (how, sentence)
        assert max(g.right for g in name_glyphs) <= sentence[0].left + 0.5, (how, name_glyphs, sentence)
        assert reads_left_to_right(time_glyphs), (how, time_glyphs)
        assert time_glyphs[0].left >= sentence[-1].right - 0.5, (how, sentence, time_glyphs)
        assert "".join(g.char for g in time_glyphs) == joined.locator("time").get_attribute("datetime")[11:16]
