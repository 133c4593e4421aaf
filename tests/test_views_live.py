"""Pushes in each reader's language and zone, rendered once per view (a real server)."""

from __future__ import annotations

import re
import uuid

import pytest

from .liveserver import Browser

pytestmark = pytest.mark.live


def uniq(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def reader(server, language: str, zone: str) -> Browser:
    browser = Browser(server).signup(uniq("r"))
    status, page = browser.post("/settings/", {"language": language, "time_zone": zone})
    assert status == 200, page[-1000:]
    return browser


def clock(frame: str) -> str:
    return re.search(r'<time class="msg-time"[^>]*>([^<]+)</time>', frame).group(1)


def test_each_view_gets_its_language_and_zone_and_a_view_shares_one_rendering(server):
    room = uniq("views")
    sender = Browser(server).signup(uniq("s")).create_room(room)
    chinese = [reader(server, "zh_Hans", "Asia/Shanghai") for _ in range(3)]
    english = reader(server, "en", "UTC")
    sockets = []
    for browser in [*chinese, english]:
        browser.enter(room)
        sock = browser.socket(room)
        sock.wait_for('id="log-live"')
        sockets.append(sock)
    sender.socket(room).send("同一时刻 at the same moment")
    frames = [s.wait_for("同一时刻") for s in sockets]
    assert frames[0] == frames[1] == frames[2]  # one view: the same bytes for every socket
    assert frames[3] != frames[0]
    zh, en = frames[0], frames[3]
    # Each in its own zone: Shanghai is 8 hours ahead of UTC, to the minute.
    hours = (int(clock(zh)[:2]) - int(clock(en)[:2])) % 24
    assert hours == 8 and clock(zh)[3:] == clock(en)[3:]
    assert "Asia/Shanghai" in zh and "UTC" in en
    # A system message in each reader's language, pushed live.
    newcomer = Browser(server).signup(uniq("n"))
    newcomer.enter(room)
    assert "加入了聊天室" in sockets[0].wait_for("加入了聊天室")
    assert "joined the room" in sockets[3].wait_for("joined the room")
    for s in sockets:
        s.close()
