"""Chinese text on a phone: long runs and long URLs wrap inside the bubble, lines are
tall enough for Han glyphs, and the glyphs come from a CJK font of the stylesheet's
stack (when the machine has one: fonts-noto-cjk on Debian)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from playwright.sync_api import expect

from .conftest import PHONE, create_room, sign_up, unique

CJK_STACK = ("PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC")
LONG_CHINESE = "我们周六早上八点在火车站见面然后一起去湖边走一圈大概十四公里路不难走" * 3
LONG_URL = "https://example.org/" + "路线" * 10 + "/" + "a" * 80


def installed_cjk_fonts() -> set[str]:
    if not shutil.which("fc-list"):
        return set()
    listing = subprocess.run(["fc-list", ":", "family"], capture_output=True, text=True, check=False).stdout  # noqa: S607
    families = {name.strip() for line in listing.splitlines() for name in line.split(",")}
    return families & set(CJK_STACK)


def test_chinese_wraps_inside_the_bubble_with_tall_lines_and_a_cjk_font(open_page, web):
    page = open_page(viewport=PHONE)
    sign_up(page, web.url, unique("mei"))
    room = unique("hike")
    create_room(page, web.url, room)
    expect(page.locator("#status")).to_have_text("Live", use_inner_text=True)
    box = page.get_by_role("textbox", name="Message")
    for text in (LONG_CHINESE, LONG_URL):
        box.fill(text)
        box.press("Enter")
        expect(page.locator("#log .msg-user")).to_have_count(1 + (text == LONG_URL))

    log = page.get_by_role("log").bounding_box()
    for text in (LONG_CHINESE, LONG_URL):
        bubble = page.locator("#log .msg-user", has_text=text[:10])
        body = bubble.locator(".msg-body")
        edge = bubble.bounding_box()
        assert edge["x"] + edge["width"] <= log["x"] + log["width"], (text[:10], edge, log)
        assert body.evaluate("e => e.scrollWidth <= e.clientWidth"), text[:10]
        assert body.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)") == pytest.approx(16 * 1.6)
        assert body.bounding_box()["height"] > 3 * 16 * 1.6  # wrapped over several lines

    fonts = installed_cjk_fonts()
    if fonts:
        cdp = page.context.new_cdp_session(page)
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument")["root"]["nodeId"]
        # The log is newest first: the last message text is the Chinese one.
        node = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": "#log .msg-user .msg-text"})["nodeIds"][-1]
        used = {f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]}
        assert used & fonts, (used, fonts)

    # A Chinese page: taller lines still.
    page.context.set_extra_http_headers({"Accept-Language": "zh-CN"})
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    body = page.locator("#log .msg-user .msg-body").first
    assert body.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)") == pytest.approx(16 * 1.7)
