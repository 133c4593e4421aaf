"""Jinja filters and globals shared by pages and pushed fragments.

Everything is rendered for a *view*: a language and a time zone. A page renders for
its reader's view; a pushed fragment is rendered once per view present in the room
(webchat/live/push.py) and the same bytes go to every socket of that view. Nothing
here may depend on the reader beyond the view: own bubbles, own reactions and
mentions of the reader come from the page's CSS rule for the reader's id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from flask import Flask, has_request_context, request, url_for
from markupsafe import Markup, escape

from . import timefmt
from .auth.forms import username_key
from .rooms.mentions import MENTION_RE
from .rooms.mentions import decode as decode_mentions
from .rooms.mentions import ids_attribute as mention_ids

# Consecutive messages of one author this close together share one name.
GROUP_WINDOW = timedelta(minutes=5)


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


def linkify(text: str, mentions: str | None = None) -> Markup:
    """Escape the text, turn http(s) URLs into links and the stored @mentions into
    highlighted names; nothing else becomes markup.

    Every piece of user text goes through ``escape``; the only markup added is our own:
    an anchor whose href is the escaped URL itself, and a span around a name that the
    message was stored as mentioning (``mentions``: "id:name ...").
    """
    if "://" not in text and not mentions:  # most messages: no regex, one escape
        return escape(text)
    names = decode_mentions(mentions) if mentions else {}
    out: list[str] = []
    pos = 0
    for match in URL_RE.finditer(text) if "://" in text else ():
        url = _trim_url(match.group(0))
        if not url or not _safe_http_url(url):
            continue
        start = match.start()
        out.append(_mark_mentions(text[pos:start], names))
        out.append(Markup('<a href="{0}" rel="noopener nofollow ugc" target="_blank">{0}</a>').format(url))
        pos = start + len(url)
    out.append(_mark_mentions(text[pos:], names))
    return Markup("").join(out)


def _mark_mentions(text: str, names: dict[str, int]) -> Markup:
    if not names or "@" not in text:
        return escape(text)
    out: list[str] = []
    pos = 0
    for match in MENTION_RE.finditer(text):
        name = match.group(1).rstrip(".-")
        key = username_key(name)
        if key not in names:
            continue
        start, end = match.start(), match.start() + 1 + len(name)
        out.append(escape(text[pos:start]))
        if key == "room":
            out.append(Markup('<span class="mention mention-room">@{0}</span>').format(name))
        else:
            out.append(Markup('<span class="mention" data-user="{0}">@{1}</span>').format(names[key], name))
        pos = end
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
    today = timefmt.to_zone(now or timefmt.now(), tz).date()
    rows, prev = [], before
    prev_day = timefmt.local_date(before.created_at, tz) if before is not None else None
    for m in messages:
        day = timefmt.local_date(m.created_at, tz)
        sep = DaySeparator(day, timefmt.day_label(day, today)) if day != prev_day else None
        rows.append(Row(m, None if sep else prev, sep))
        prev, prev_day = m, day
    return rows


def pushed_row(message, prev, tz: str | None) -> Row:
    """A message pushed live, for one view: with its day's heading when it is the first
    message of a new day in that view's zone (the page's last day ended, say)."""
    return history_rows([message], prev, tz)[0]


# --- URLs -------------------------------------------------------------------------------

URLS_KEPT = 4096
_urls: dict[tuple, str] = {}


def kept_url_for(endpoint: str, **values) -> str:
    """``url_for`` for templates, each URL built once per (script root, endpoint, arguments).

    Building one walks werkzeug's rule map, about 15 µs; a room page builds fourteen, the
    same fourteen for every reader of the room. Given the script root, the endpoint and
    the arguments the URL is always the same. Relative endpoints (".x", which depend on
    the current blueprint), options such as ``_external`` (the request's host), and
    anything outside a request are built each time."""
    if not has_request_context() or endpoint.startswith(".") or any(k.startswith("_") for k in values):
        return url_for(endpoint, **values)
    key = (request.script_root, endpoint, *sorted(values.items()))
    found = _urls.get(key)
    if found is None:
        if len(_urls) >= URLS_KEPT:
            _urls.clear()
        found = _urls[key] = url_for(endpoint, **values)
    return found


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        iso_utc=timefmt.iso_utc,
        stamp=timefmt.stamp,
        full_time=timefmt.full_time,
        when=timefmt.when,
        linkify=linkify,
        mention_ids=mention_ids,
        continues=continues,
    )
    app.jinja_env.globals.update(
        url_for=kept_url_for,
        reader_zone=timefmt.reader_zone,
        history_rows=history_rows,
        pushed_row=pushed_row,
    )
    # Fragments are rendered once and pushed verbatim; trimmed blocks keep them small.
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
