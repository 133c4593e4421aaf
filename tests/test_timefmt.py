"""Times in the reader's zone and language (Babel), on pages and in pushes alike."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from webchat.timefmt import clock, day_label, full_time, stamp, when


@pytest.fixture
def chinese(app):
    with app.test_request_context("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"}):
        yield


@pytest.fixture
def english(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        yield


def test_times_in_a_zone_and_in_utc(english):
    at = datetime(2024, 3, 9, 23, 30)  # naive UTC, as stored
    assert clock(at) == "23:30"
    assert clock(at, "Asia/Shanghai") == "07:30"
    assert full_time(at) == "March 9, 2024 23:30 UTC"
    assert full_time(at, "Asia/Shanghai") == "March 10, 2024 07:30 Asia/Shanghai"
    assert clock(at, "Not/AZone") == "23:30"  # an unknown zone falls back to UTC
    assert stamp(at).iso == "2024-03-09T23:30:00Z"


def test_day_labels_and_short_times_in_english(english):
    today = date(2024, 5, 8)  # a Wednesday
    assert day_label(today, today) == "Today"
    assert day_label(date(2024, 5, 7), today) == "Yesterday"
    assert day_label(date(2024, 5, 4), today) == "Saturday"
    assert day_label(date(2024, 4, 1), today) == "Mon, April 1"
    assert day_label(date(2023, 12, 31), today) == "Sunday, December 31, 2023"
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    assert when(datetime(2024, 5, 8, 9, 5), at=now) == "09:05"
    assert when(datetime(2024, 5, 7, 9, 5), at=now) == "Yesterday"
    assert when(datetime(2024, 2, 7, 9, 5), at=now) == "Feb 7"
    assert when(datetime(2023, 2, 7, 9, 5), at=now) == "Feb 7, 2023"


def test_day_labels_and_times_in_chinese(chinese):
    today = date(2024, 5, 8)
    assert day_label(today, today) == "今天"
    assert day_label(date(2024, 5, 7), today) == "昨天"
    assert day_label(date(2024, 5, 4), today) == "星期六"
    assert day_label(date(2024, 4, 1), today) == "4月1日周一"
    assert day_label(date(2023, 12, 31), today) == "2023年12月31日星期日"
    now = datetime(2024, 5, 8, 12, 0, tzinfo=UTC)
    assert when(datetime(2024, 2, 7, 9, 5), at=now) == "2月7日"
    assert full_time(datetime(2024, 3, 9, 23, 30), "Asia/Shanghai") == "2024年3月10日 07:30 Asia/Shanghai"
