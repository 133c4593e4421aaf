"""Dates and times in the reader's zone and language, through Babel (CLDR).

Everything a reader sees of a time goes through here, on pages and in pushed
fragments alike: a clock (14:05 in both languages), a full date for titles, and
day labels (Today / 今天, Yesterday / 昨天, a weekday, a date). Babel's formatting is
slow next to a page of fifty messages, so dates are formatted once per (day,
language) and clocks are plain integer formatting (CLDR's "Hm" is HH:mm for both).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_skeleton
from flask_babel import gettext as _
from flask_login import current_user

from .i18n import current_language


@lru_cache(maxsize=256)
def zone(name: str | None):
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def reader_zone() -> str:
    """The signed-in reader's zone name (their profile setting), UTC until they set one."""
    name = getattr(current_user, "time_zone", None) if current_user else None
    return name if name and zone(name) is not UTC else "UTC"


def to_zone(value: datetime, tz: str | None = None) -> datetime:
    """Stored timestamps are naive UTC; return an aware datetime in zone ``tz``."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(zone(tz))


def zone_label(tz: str | None) -> str:
    return "UTC" if zone(tz) is UTC else str(tz)


def now() -> datetime:
    return datetime.now(UTC)


@lru_cache(maxsize=4096)
def _date_text(day: date, language: str, form: str) -> str:
    if form == "long":  # December 1, 2026 · 2026年12月1日
        return format_date(day, "long", locale=language)
    if form == "weekday":  # Tuesday · 星期二
        return format_date(day, "EEEE", locale=language)
    if form == "day":  # Tue, December 1 · 12月1日周二
        return format_skeleton("MMMMEEEEd", day, locale=language)
    if form == "full":  # Tuesday, December 1, 2026 · 2026年12月1日星期二
        return format_date(day, "full", locale=language)
    if form == "short":  # Dec 1 · 12月1日
        return format_skeleton("MMMd", day, locale=language)
    return format_skeleton("yMMMd", day, locale=language)  # Dec 1, 2026 · 2026年12月1日


class Stamp(NamedTuple):
    iso: str  # UTC, for <time datetime>
    clock: str  # HH:mm in the zone
    title: str  # the full date and time in the zone, with the zone's name


def stamp(value: datetime, tz: str | None = None) -> Stamp:
    """Everything a message shows of its time, converting once (a page shows fifty)."""
    utc = to_zone(value)
    local = utc.astimezone(zone(tz))
    hm = f"{local.hour:02d}:{local.minute:02d}"
    day = _date_text(local.date(), current_language(), "long")
    return Stamp(
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}Z",
        hm,
        f"{day} {hm} {zone_label(tz)}",
    )


def iso_utc(value: datetime) -> str:
    return stamp(value).iso


def clock(value: datetime, tz: str | None = None) -> str:
    return stamp(value, tz).clock


def full_time(value: datetime, tz: str | None = None) -> str:
    return stamp(value, tz).title


def day_label(day: date, today: date) -> str:
    """The heading above a day's first message: Today, Yesterday, a weekday, a date."""
    if day == today:
        return _("Today")
    if day == today - timedelta(days=1):
        return _("Yesterday")
    language = current_language()
    if timedelta(0) < today - day < timedelta(days=7):
        return _date_text(day, language, "weekday")
    return _date_text(day, language, "day" if day.year == today.year else "full")


def when(value: datetime, tz: str | None = None, at: datetime | None = None) -> str:
    """Short, for lists: 14:05 today, then Yesterday, a weekday, a date."""
    local = to_zone(value, tz)
    today = to_zone(at or now(), tz).date()
    if local.date() == today:
        return f"{local.hour:02d}:{local.minute:02d}"
    if timedelta(0) < today - local.date() < timedelta(days=7):
        return day_label(local.date(), today)
    return _date_text(local.date(), current_language(), "short" if local.year == today.year else "medium")


def reader_view() -> tuple[str, str, date]:
    """What a page rendered for this reader depends on besides the data: their
    language, time zone, and their today (day labels say "Today")."""
    tz = reader_zone()
    return (current_language(), tz, to_zone(now(), tz).date())


def local_date(value: datetime, tz: str | None) -> date:
    return to_zone(value, tz).date()
