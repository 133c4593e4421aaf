"""The reading-comfort helpers: links, times, day separators, grouping, the live page's style."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from markupsafe import Markup

from webchat.templating import (
    clock,
    continues,
    day_label,
    full_time,
    history_rows,
    iso_minute,
    linkify,
    live_page_style,
    utc_prefixes,
    when,
)


def msg(author: int, at: datetime, kind: str = "user"):
    return SimpleNamespace(author_id=author, created_at=at, kind=kind, is_system=kind == "system")


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("plain <b>text</b> & more", "plain &lt;b&gt;text&lt;/b&gt; &amp; more"),
        (
            "see https://example.com/a?b=1&c=2.",
            'see <a href="https://example.com/a?b=1&amp;c=2" rel="noopener nofollow ugc" target="_blank">'
            "https://example.com/a?b=1&amp;c=2</a>.",
        ),
        (
            "(http://example.com/wiki/Foo_(bar))",
            '(<a href="http://example.com/wiki/Foo_(bar)" rel="noopener nofollow ugc" target="_blank">'
            "http://example.com/wiki/Foo_(bar)</a>)",
        ),
        (
            'http://x.y/"onmouseover="alert(1)',
            '<a href="http://x.y/" rel="noopener nofollow ugc" target="_blank">'
            "http://x.y/</a>&#34;onmouseover=&#34;alert(1)",
        ),
        (
            "javascript:alert(1) ftp://x.y data:text/html,<script>",
            "javascript:alert(1) ftp://x.y data:text/html,&lt;script&gt;",
        ),
        ("http:// nothing https://", "http:// nothing https://"),
        (
            "网址：https://例子.测试/路径。好",
            '网址：<a href="https://例子.测试/路径" rel="noopener nofollow ugc" target="_blank">https://例子.测试/路径</a>。好',
        ),
    ],
)
def test_linkify_escapes_everything_and_links_only_http(text, html):
    out = linkify(text)
    assert isinstance(out, Markup)
    assert str(out) == html


def test_times_in_a_zone_and_in_utc():
    at = datetime(2024, 3, 9, 23, 30)  # naive UTC, as stored
    assert clock(at) == "23:30"
    assert clock(at, "Asia/Shanghai") == "07:30"
    assert full_time(at) == "Sat 9 Mar 2024, 23:30 UTC"
    assert full_time(at, "Asia/Shanghai") == "Sun 10 Mar 2024, 07:30 Asia/Shanghai"
    assert clock(at, "Not/AZone") == "23:30"  # an unknown zone falls back to UTC
    assert iso_minute(at) == "2024-03-09T23:30"


def test_day_labels_and_short_times():
    today = date(2024, 5, 8)  # a Wednesday
    assert day_label(today, today) == "Today"
    assert day_label(date(2024, 5, 7), today) == "Yesterday"
    assert day_label(date(2024, 5, 4), today) == "Saturday"
    assert day_label(date(2024, 4, 1), today) == "Monday, 1 April"
    assert day_label(date(2023, 12, 31), today) == "Sunday, 31 December 2023"
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    assert when(datetime(2024, 5, 8, 9, 5), now=now) == "09:05"
    assert when(datetime(2024, 5, 7, 9, 5), now=now) == "Yesterday"
    assert when(datetime(2024, 2, 7, 9, 5), now=now) == "7 Feb"
    assert when(datetime(2023, 2, 7, 9, 5), now=now) == "7 Feb 2023"


def test_grouping_needs_one_author_a_few_minutes_apart():
    t = datetime(2024, 5, 8, 12, 0)
    assert continues(msg(1, t + timedelta(minutes=4)), msg(1, t))
    assert not continues(msg(1, t + timedelta(minutes=6)), msg(1, t))
    assert not continues(msg(2, t + timedelta(minutes=1)), msg(1, t))
    assert not continues(msg(1, t + timedelta(minutes=1)), msg(1, t, "system"))
    assert not continues(msg(1, t + timedelta(minutes=1), "system"), msg(1, t))
    assert not continues(msg(1, t), None)


def test_history_rows_put_one_separator_per_day_in_the_readers_zone():
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    before = msg(1, datetime(2024, 5, 6, 22, 0))
    slice_ = [
        msg(1, datetime(2024, 5, 6, 22, 3)),  # same UTC day as `before`: no separator, grouped
        msg(1, datetime(2024, 5, 7, 1, 0)),
        msg(1, datetime(2024, 5, 7, 1, 2)),
        msg(2, datetime(2024, 5, 8, 8, 0)),
    ]
    rows = history_rows(slice_, before, "UTC", now)
    assert [r.day.label if r.day else None for r in rows] == [None, "Yesterday", None, "Today"]
    assert [r.prev is not None for r in rows] == [True, False, True, False]
    # In Shanghai (UTC+8) the first two fall on 7 May, and the day begins before them.
    rows = history_rows(slice_, before, "Asia/Shanghai", now)
    assert [r.day.label if r.day else None for r in rows] == [None, None, None, "Today"]
    # The start of the room: a separator above the very first message.
    rows = history_rows(slice_[:1], None, "UTC", now)
    assert rows[0].day.day == date(2024, 5, 6)


def covered(prefixes: list[str], key: str) -> bool:
    return any(key.startswith(p) for p in prefixes)


@pytest.mark.parametrize("zone_hours", [0, 8, -5, 5.5, 5.75, -9.5])
def test_utc_prefixes_cover_exactly_one_local_day(zone_hours):
    offset = timedelta(hours=zone_hours)
    start = datetime(2024, 5, 8, tzinfo=timezone(offset))
    prefixes = utc_prefixes(start, start + timedelta(days=1))
    assert len(prefixes) <= 30
    first = start.astimezone(UTC).replace(tzinfo=None)
    for minutes in range(-3, 24 * 60 + 3):
        key = iso_minute(first + timedelta(minutes=minutes))
        assert covered(prefixes, key) == (0 <= minutes < 24 * 60), (key, prefixes)


def test_live_page_style_marks_utc_times_and_the_next_day():
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    quiet = [msg(1, datetime(2024, 5, 6, 9, 0))]
    css = str(live_page_style(quiet[-1].created_at, "UTC", now))
    assert "t-utc" not in css
    assert '.log-live > .msg:not([data-at^="2024-05-06"]):not(:has(~ .msg:not([data-at^="2024-05-06"])))' in css
    assert 'content: "Today"' in css
    busy = [msg(1, datetime(2024, 5, 8, 9, 0))]
    css = str(live_page_style(busy[-1].created_at, "Europe/Zurich", now))
    assert '.t-utc::after { content: " UTC"; }' in css
    assert 'content: "Thursday, 9 May"' in css  # the tab stays open past midnight
    assert 'content: "Today"' in str(live_page_style(None, "UTC", now))
