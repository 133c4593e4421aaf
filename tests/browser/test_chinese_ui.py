"""The interface in 简体中文 for a reader who chose it on /settings/, in their own time
zone, on a desktop and a phone; saves the Chinese screenshots (room-desktop-zh,
room-phone-zh, rooms-zh) for README.zh-CN.md.

The browser itself asks for English (Accept-Language en-US), so every Chinese word
here comes from the reader's setting, and every clock from their zone (Asia/Shanghai,
UTC+8 all year), never from the server's UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from webchat.models import utcnow

from ..liveserver import Browser
from .conftest import DESKTOP, PASSWORD, PHONE, no_horizontal_scroll, screenshot, seed_conversation, sign_up

READER = "林小雨"
ZONE = "Asia/Shanghai"
ROOM = "周末徒步"
ENGLISH_BROWSER = {"locale": "en-US", "extra_http_headers": {"Accept-Language": "en-US,en;q=0.9"}}


def clock(at: datetime) -> str:
    """A stored (naive UTC) time as the reader's page shows it."""
    return at.replace(tzinfo=UTC).astimezone(ZoneInfo(ZONE)).strftime("%H:%M")


@pytest.fixture(scope="module")
def chinese_room(web, live_database_url, chromium):
    """The reader signs up and picks 简体中文 and Asia/Shanghai on /settings/ in a real
    browser; three friends talk in three rooms, yesterday and today in Shanghai.
    Returns (a message's stored time, the friends' HTTP clients by name)."""
    friends = {name: Browser(web).signup(name, PASSWORD) for name in ("王建国", "陈思远", "张晓梅")}

    context = chromium.new_context(viewport=DESKTOP, **ENGLISH_BROWSER)
    context.set_default_timeout(10_000)
    page = context.new_page()
    sign_up(page, web.url, READER)
    page.goto(web.url + "/settings/")
    page.locator("select[name=language]").select_option("zh_Hans")
    page.locator("select[name=time_zone]").select_option(ZONE)
    page.get_by_role("button", name="Save").click()
    # Saved, and already said in the language just chosen.
    expect(page.get_by_text("设置已保存。")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator("select[name=language]")).to_have_value("zh_Hans")
    expect(page.locator("select[name=time_zone]")).to_have_value(ZONE)
    context.close()

    # Days as the reader lives them: midnight in Shanghai, stored as naive UTC.
    now = utcnow()
    local_now = now.replace(tzinfo=UTC).astimezone(ZoneInfo(ZONE))
    midnight = local_now.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC).replace(tzinfo=None)
    yesterday = midnight - timedelta(hours=5)  # 19:00 yesterday in Shanghai
    today = midnight + (now - midnight) / 3  # some time today there, before now

    def at(base: datetime, minutes: int) -> datetime:
        return base + timedelta(minutes=minutes)

    seed_conversation(
        live_database_url,
        "产品设计评审",
        "张晓梅",
        at(yesterday, -600),
        [
            ("张晓梅", "设置页面的新设计稿已经上传了，大家看看", at(yesterday, -590)),
            ("陈思远", "看起来很清爽。旧的快捷键能保留吗？", at(yesterday, -570)),
            (READER, "请保留，我每天都在用", at(yesterday, -560)),
        ],
    )
    seed_conversation(
        live_database_url,
        "读书会",
        "陈思远",
        at(yesterday, -300),
        [
            ("陈思远", "下周读《三体》第二部，大家觉得怎么样？", at(yesterday, -290)),
            ("王建国", "好啊，我正想重读一遍 📚", at(yesterday, -280)),
        ],
    )
    stamped = at(today, 22)
    seed_conversation(
        live_database_url,
        ROOM,
        READER,
        at(yesterday, 0),
        [
            ("王建国", "周六有人一起去爬山吗？🥾", at(yesterday, 2)),
            ("王建国", "天气预报说是晴天：https://weather.example.com/hangzhou?day=saturday", at(yesterday, 3)),
            ("陈思远", "算我一个！走哪条路线？", at(yesterday, 10)),
            (READER, "西湖环线怎么样？大约十四公里，基本是平路。", at(yesterday, 12)),
            (READER, "可以坐八点十五分从火车东站出发的地铁。", at(yesterday, 13)),
            ("王建国", "环湖线不错。\n我带零食和急救包。", at(today, 0)),
            ("陈思远", "路线图在这里：https://maps.example.org/routes/west-lake-loop-14km", at(today, 1)),
            ("张晓梅", "我也能一起来吗？这条线我还没走过", at(today, 20)),
            (READER, "当然！八点在钟楼下集合 🙂", stamped),
        ],
    )
    return stamped, friends


def log_in(page, base_url: str) -> None:
    """Log in from an English login page: the pages after it follow the setting."""
    page.goto(base_url + "/login/")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Username").fill(READER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.get_by_role("heading", name="聊天室").wait_for()


def open_room(page) -> None:
    page.get_by_role("link", name=ROOM).click()
    expect(page.locator("#status")).to_have_text("已连接", use_inner_text=True)
    expect(page.get_by_role("log").locator("article").last).to_be_attached()


def expect_chinese_room(page, stamped: datetime) -> None:
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    log = page.get_by_role("log")
    expect(log.locator("h2.day")).to_have_text(["今天", "昨天"])
    expect(page.get_by_role("textbox", name="消息")).to_have_attribute("placeholder", "输入消息…")
    expect(page.get_by_role("button", name="发送")).to_be_visible()
    # Clocks in the reader's zone, not the server's UTC.
    newest = log.locator("article", has_text="八点在钟楼下集合")
    expect(newest.locator("time.msg-time")).to_have_text(clock(stamped))
    expect(log.locator("article.msg-system", has_text=f"{READER} 创建了聊天室")).to_have_count(1)


def test_chinese_desktop(open_page, web, chinese_room):
    stamped, _ = chinese_room
    page = open_page(viewport=DESKTOP, **ENGLISH_BROWSER)
    log_in(page, web.url)
    expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    expect(page.locator(".room-item")).to_have_count(3)
    expect(page.get_by_role("link", name="新建聊天室")).to_be_visible()
    no_horizontal_scroll(page)
    screenshot(page, "rooms-zh")

    open_room(page)
    expect_chinese_room(page, stamped)
    no_horizontal_scroll(page)
    screenshot(page, "room-desktop-zh")


def test_chinese_phone(open_page, web, chinese_room):
    stamped, friends = chinese_room
    page = open_page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2, **ENGLISH_BROWSER)
    log_in(page, web.url)
    no_horizontal_scroll(page)
    open_room(page)
    expect_chinese_room(page, stamped)
    no_horizontal_scroll(page)
    for control in (page.get_by_role("textbox", name="消息"), page.get_by_role("button", name="发送")):
        expect(control).to_be_in_viewport(ratio=1)
    expect(page.get_by_role("log").locator("article").first).to_be_in_viewport()
    screenshot(page, "room-phone-zh")

    # After the screenshots, which show only the seeded talk: a message pushed live is
    # rendered for this reader's view too, in Chinese with a Shanghai clock.
    sent_at = utcnow()
    socket = friends["陈思远"].socket(ROOM)
    try:
        socket.send("我刚到，大家在哪儿？")
        pushed = page.get_by_role("log").locator("article", has_text="我刚到")
        expect(pushed).to_have_count(1)
        shown = pushed.locator("time.msg-time").inner_text()
        assert shown in {clock(sent_at + timedelta(minutes=m)) for m in (-1, 0, 1)}, shown
    finally:
        socket.close()
