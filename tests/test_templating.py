"""The reading-comfort helpers: links, day separators, grouping (times: test_timefmt.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from markupsafe import Markup

from webchat.templating import continues, history_rows, linkify, pushed_row


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


def test_a_pushed_message_gets_a_heading_when_it_starts_a_day_in_the_views_zone():
    prev = msg(1, datetime(2024, 5, 7, 23, 50))
    late = msg(1, datetime(2024, 5, 8, 0, 5))  # a new day in UTC, still 7 May in New York
    row = pushed_row(late, prev, "UTC")
    assert row.day is not None and row.day.day == date(2024, 5, 8) and row.prev is None
    row = pushed_row(late, prev, "America/New_York")
    assert row.day is None and row.prev is prev  # same day there: grouped, no heading


def test_kept_urls_are_what_url_for_builds_for_that_root(app):
    from flask import url_for

    from webchat.templating import kept_url_for

    cases = [
        ("static", {"filename": "css/app.css"}),
        ("rooms.index", {}),
        ("rooms.room", {"room_name": "数据 room", "before": 42}),
        ("rooms.room", {"room_name": "other"}),
        ("rooms.index", {"_external": True}),
    ]
    for root in ("", "/chat"):
        with app.test_request_context("/", base_url=f"http://example.test{root}/"):
            for _ in range(2):  # built, then kept
                assert [kept_url_for(e, **v) for e, v in cases] == [url_for(e, **v) for e, v in cases]
            assert kept_url_for("rooms.index").startswith(f"{root}/")
    with app.test_request_context("/", base_url="http://elsewhere.test/"):
        assert kept_url_for("rooms.index", _external=True) == "http://elsewhere.test/"
