"""Jinja filters and globals shared by pages and pushed fragments.

Two kinds of rendering meet in a room's log, and they must not be confused:

* A message fragment (``rooms/_message.html``) is rendered ONCE and the same bytes go
  to every reader. It may depend on the message and on the message before it in the
  room (grouping), never on the reader or on the moment it is read: its time is UTC,
  written as ``<time datetime="...Z">`` and marked ``t-utc``.
* A page (the room, an older slice) is rendered for one reader: its times are in the
  reader's zone, and it adds day separators ("Today", "Yesterday", a date) computed
  against the reader's today. The page's own nonce ``<style>`` says how the reader
  should see what is pushed later (``live_page_style``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask
from flask_login import current_user
from markupsafe import Markup, escape

# Consecutive messages of one author this close together share one name.
GROUP_WINDOW = timedelta(minutes=5)


# --- time zones ----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _zone(name: str | None):
    if not name or name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def reader_zone() -> str:
    """The signed-in reader's zone name (their profile setting), UTC until they set one."""
    name = getattr(current_user, "time_zone", None) if current_user else None
    return name if name and _zone(name) is not UTC else "UTC"


def to_zone(value: datetime, tz: str | None = None) -> datetime:
    """Stored timestamps are naive UTC; return an aware datetime in zone ``tz``."""
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(_zone(tz))


def _zone_label(tz: str | None) -> str:
    return "UTC" if _zone(tz) is UTC else str(tz)


class Stamp(NamedTuple):
    iso: str  # UTC, for <time datetime>
    minute: str  # UTC to the minute: the key the page's style matches pushed messages by
    clock: str  # HH:MM in the zone
    title: str  # the full date and time in the zone


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def stamp(value: datetime, tz: str | None = None) -> Stamp:
    """Everything a message shows of its time, converting once (a page shows fifty).
    Plain integer formatting: strftime costs several times more, fifty times a page."""
    utc = to_zone(value)
    zone = _zone(tz)
    local = utc if zone is UTC else utc.astimezone(zone)
    minute = f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}"
    hm = f"{local.hour:02d}:{local.minute:02d}"
    return Stamp(
        f"{minute}:{utc.second:02d}Z",
        minute,
        hm,
        f"{_DAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, {hm} {_zone_label(tz)}",
    )


def iso_utc(value: datetime) -> str:
    return stamp(value).iso


def iso_minute(value: datetime) -> str:
    return stamp(value).minute


def clock(value: datetime, tz: str | None = None) -> str:
    return stamp(value, tz).clock


def full_time(value: datetime, tz: str | None = None) -> str:
    return stamp(value, tz).title


def when(value: datetime, tz: str | None = None, now: datetime | None = None) -> str:
    """Short, for lists: 14:05 today, then Yesterday, a weekday, a date (page rendering only)."""
    local = to_zone(value, tz)
    today = to_zone(now or _now(), tz).date()
    if local.date() == today:
        return f"{local:%H:%M}"
    if timedelta(0) < today - local.date() < timedelta(days=7):
        return day_label(local.date(), today)
    if local.year == today.year:
        return f"{local.day} {local:%b}"
    return f"{local.day} {local:%b %Y}"


def day_label(day: date, today: date) -> str:
    if day == today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if timedelta(0) < today - day < timedelta(days=7):
        return f"{day:%A}"
    if day.year == today.year:
        return f"{day:%A}, {day.day} {day:%B}"
    return f"{day:%A}, {day.day} {day:%B %Y}"


def _now() -> datetime:
    return datetime.now(UTC)


# --- message text --------------------------------------------------------------------

# http(s) URLs up to whitespace, quotes, angle brackets or CJK punctuation (which
# running text puts right after a URL, without a space).
URL_RE = re.compile(r"\bhttps?://[^\s<>\"'`\u3000-\u303f\uff01-\uff0f\uff1a-\uff20]+", re.IGNORECASE)
TRAILING = ".,;:!?'\"*_~»”’"
PAIRS = {")": "(", "]": "[", "}": "{"}


def _trim_url(url: str) -> str:
    """Drop trailing punctuation that belongs to the sentence, keeping balanced brackets."""
    while url:
        last = url[-1]
        if last in TRAILING:
            url = url[:-1]
        elif last in PAIRS and url.count(last) > url.count(PAIRS[last]):
            url = url[:-1]
        else:
            break
    return url


def _safe_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def linkify(text: str) -> Markup:
    """Escape the text and turn http(s) URLs into links; nothing else becomes markup.

    Every piece of user text goes through ``escape``; the only markup added is our own
    anchor, whose href is the escaped URL itself.
    """
    if "://" not in text:  # most messages: no regex, one escape
        return escape(text)
    out: list[str] = []
    pos = 0
    for match in URL_RE.finditer(text):
        url = _trim_url(match.group(0))
        if not url or not _safe_http_url(url):
            continue
        start = match.start()
        out.append(escape(text[pos:start]))
        out.append(Markup('<a href="{0}" rel="noopener nofollow ugc" target="_blank">{0}</a>').format(url))
        pos = start + len(url)
    out.append(escape(text[pos:]))
    return Markup("").join(out)


# --- grouping and day separators -----------------------------------------------------


def continues(message, prev) -> bool:
    """Does ``message`` continue ``prev`` (same author, a few minutes later)?

    Depends only on the two messages, so a pushed fragment may use it.
    """
    if prev is None or message.kind != "user" or prev.kind != "user" or message.author_id != prev.author_id:
        return False
    return timedelta(0) <= message.created_at - prev.created_at <= GROUP_WINDOW


@dataclass
class DaySeparator:
    day: date
    label: str


@dataclass
class Row:
    message: object
    prev: object | None  # the message just above, unless a day separator comes between
    day: DaySeparator | None  # a separator to show above this message


def history_rows(messages, before, tz: str | None, now: datetime | None = None) -> list[Row]:
    """Rows for a slice of history (oldest first), for one reader.

    ``before`` is the message just older than the slice (None at the start of the room):
    a separator goes above the first message of each day, also across slice borders, so
    slices loaded one after another never repeat a separator.
    """
    today = to_zone(now or _now(), tz).date()
    rows, prev = [], before
    prev_day = to_zone(before.created_at, tz).date() if before is not None else None
    for m in messages:
        day = to_zone(m.created_at, tz).date()
        sep = DaySeparator(day, day_label(day, today)) if day != prev_day else None
        rows.append(Row(m, None if sep else prev, sep))
        prev, prev_day = m, day
    return rows


# --- the live page's own style -------------------------------------------------------

_UNITS = (10, 12, 13, 15, 16)  # lengths of "YYYY-MM-DDTHH:MM" prefixes: day, 10 h, h, 10 min, min


def _prefix_end(start: datetime, length: int) -> datetime:
    """The end of the span that the first ``length`` characters of start's key cover."""
    if length == 10:
        return start + timedelta(days=1)
    if length == 12:
        tens = start.hour // 10 * 10
        return start.replace(hour=0, minute=0) + timedelta(hours=min(tens + 10, 24))
    if length == 13:
        return start + timedelta(hours=1)
    if length == 15:
        return start + timedelta(minutes=10)
    return start + timedelta(minutes=1)


def utc_prefixes(start: datetime, end: datetime) -> list[str]:
    """Few string prefixes of minute keys (``iso_minute``) covering [start, end) exactly."""
    start = start.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
    end = end.astimezone(UTC).replace(second=0, microsecond=0, tzinfo=None)
    out = []
    while start < end:
        key = start.strftime("%Y-%m-%dT%H:%M")
        for length in _UNITS:
            stop = _prefix_end(start, length)
            if _aligned(start, length) and stop <= end:
                out.append(key[:length])
                start = stop
                break
    return out


def _aligned(start: datetime, length: int) -> bool:
    if length == 10:
        return start.hour == 0 and start.minute == 0
    if length == 12:
        return start.hour % 10 == 0 and start.minute == 0
    if length == 13:
        return start.minute == 0
    if length == 15:
        return start.minute % 10 == 0
    return True


def live_page_style(newest_at: datetime | None, tz: str | None, now: datetime | None = None) -> Markup:
    """CSS for one reader's live room page, for what gets pushed to it later.

    * Pushed times are UTC: a reader in another zone sees them marked " UTC".
    * A pushed message on a later day than the newest one the page was rendered with
      gets a day separator above it (the first such message only): "Today" when the page
      ends on an earlier day, the new date when the page ends today (the tab stayed
      open past midnight).
    """
    rules = []
    if _zone(tz) is not UTC:
        rules.append('.t-utc::after { content: " UTC"; }')
    now_local = to_zone(now or _now(), tz)
    last_day = to_zone(newest_at, tz).date() if newest_at else None
    if last_day is None:
        same_day = ""
    else:
        zone = _zone(tz)
        day_start = datetime.combine(last_day, datetime.min.time(), zone)
        next_start = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), zone)
        same_day = ",".join(f'[data-at^="{p}"]' for p in utc_prefixes(day_start, next_start))
    if last_day == now_local.date():
        tomorrow = now_local.date() + timedelta(days=1)
        label = f"{tomorrow:%A}, {tomorrow.day} {tomorrow:%B}"
    else:
        label = "Today"
    fresh = f".msg:not({same_day})" if same_day else ".msg"
    first_fresh = f".log-live > {fresh}:not(:has(~ {fresh}))"
    rules.append(f"{first_fresh} {{ margin-top: 2.75rem; }}")
    rules.append(f'{first_fresh}::before {{ content: "{label}"; }}')
    # Only digits, dashes, our own day names and fixed CSS: nothing a user wrote.
    return Markup("\n  ".join(rules))  # noqa: S704


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        iso_utc=iso_utc,
        iso_minute=iso_minute,
        stamp=stamp,
        clock=clock,
        full_time=full_time,
        when=when,
        linkify=linkify,
        continues=continues,
    )
    app.jinja_env.globals.update(
        reader_zone=reader_zone,
        history_rows=history_rows,
        live_page_style=live_page_style,
    )
    # Fragments are rendered once and pushed verbatim; trimmed blocks keep them small.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
