"""Finding messages: a piece of text, in every room the reader may read, newest first.

Substring search, so that Chinese (no spaces between words) works: "数据库" finds
"我们的数据库又挂了", "会" and "会议" work too, and English ignores letter case.

* Three characters or more use an index of trigrams (migrations/versions/d4f1a7c3e9b2):
  on SQLite the FTS5 table ``message_fts`` (``trigram`` tokenizer, ``case_sensitive 0``),
  asked with MATCH and the text quoted as one phrase, so nothing a reader types is an
  FTS operator; on PostgreSQL ``body ILIKE '%text%'`` on a pg_trgm GIN index.
* One or two characters have no trigram: they use an index of each message's distinct
  one- and two-character pieces, lower-cased (migrations/versions/b3e8d1f6a4c7), where
  the text is one term. On SQLite the FTS5 table ``message_grams``, each piece written
  as one ASCII token by ``webchat.grams`` (the same function fills the index and writes
  the question), which hands its matches over newest first like ``message_fts``; on
  PostgreSQL ``webchat_grams(body) @> ARRAY[lower(text)]`` on a GIN index of that
  expression, with the exact test below checking each row it finds — but only for a
  piece that is not common (see COMMON_PIECE).
* On PostgreSQL, a text without letter case (Chinese, digits) is matched with LIKE:
  ILIKE lowercases every message it reads, several times slower. A short text with
  letter case, where ILIKE has no trigram to use, is matched with ``~* '***=text'`` (a
  regular expression made all literal by its ``***=`` prefix): the same answer as
  ILIKE, about 1.7 times quicker a row.

Which way is quicker depends on the text and on how much the reader may read, which
PostgreSQL's planner weighs from its statistics (each search is planned with its own
text: ``plan_cache_mode``): a common text is quickest found by reading the newest
messages until a page is full, a rare one through an index. SQLite keeps no
statistics, so the search asks first: do the rooms to search hold fewer than
FEW_MESSAGES messages (older than ``before``)? Then it reads just those, through the
(room_id, id) index — a reader of a few rooms never waits for everyone else's messages
to be skipped; else it takes the trigram index or the index of short pieces. Both
FTS5 indexes stop at the page's end, so a common text costs little there too.

On PostgreSQL a plan that does not take the index of pieces still has to compute
``webchat_grams(body)`` for each message it tests (about 50–100 µs each, where LIKE
costs well under one), so the test of pieces is asked only when it can pay: the same
statement that sets ``plan_cache_mode`` reads, from the index's statistics, how often
the piece occurs. A piece in at least COMMON_PIECE of the messages is left to the plans
it had before (the newest first, or the reader's rooms), which fill a page quickly;
any other is asked of the index too, and the planner picks.

Then one statement reads a page plus one row (is there more?), with the author and
room joined: a fixed number of statements whatever the number of results. Paging is a
keyset on the message id (``before``), like a room's history.

Which rooms: the reader's rooms and every public room. A public room is open to anyone
signed in — its page shows its whole history to whoever opens it (and makes them a
member), and the room list names them all — so searching one reveals nothing its page
would not. Private rooms and direct conversations count only for their members: the
rule of ``rooms.service.room_for`` and of the room list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from flask_babel import ngettext
from markupsafe import Markup, escape
from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    Text,
    bindparam,
    column,
    false,
    func,
    literal_column,
    select,
    table,
)
from sqlalchemy import text as text_clause
from sqlalchemy.dialects.postgresql import ARRAY, array

from ..extensions import db
from ..grams import SQL_FUNCTION, gram_term
from ..models import MAX_ID, Membership, Message, Room, User, direct_title

QUERY_MAX = 100
TRIGRAM = 3  # the shortest text an index of trigrams can find
PAGE_SIZE = 20
NEWEST = MAX_ID  # "before" on the first page

# The FTS5 tables (SQLite only). Their hidden column of the same name takes MATCH.
fts = table("message_fts", column("rowid", Integer), column("message_fts"))
grams_fts = table("message_grams", column("rowid", Integer), column("message_grams"))


class InvalidQuery(ValueError):
    """Shown next to the search box."""


def clean_query(raw: str | None) -> str:
    """The text to look for: stripped; '' means nothing asked yet."""
    text = (raw or "").strip()
    if len(text) > QUERY_MAX:
        raise InvalidQuery(
            ngettext(
                "Search for at most %(num)d character; this has %(length)d.",
                "Search for at most %(num)d characters; this has %(length)d.",
                QUERY_MAX,
                length=len(text),
            )
        )
    return text


@dataclass(frozen=True)
class Hit:
    id: int
    room_name: str  # for the URL
    room_title: str  # what this reader calls the room: a direct conversation, the other person
    direct: bool
    author: str
    created_at: datetime
    snippet: Markup


@dataclass(frozen=True)
class Results:
    hits: list[Hit]  # newest first
    older: int | None  # ``before`` for the next page; None when this is the last


def _visible() -> list[ColumnElement]:
    """Which messages may be found at all: what people said and nobody deleted (a
    deletion empties the body too, so the index has nothing of it either)."""
    return [
        Message.kind == Message.USER,
        Message.deleted_at.is_(None),
    ]


def _readable_rooms() -> Select:
    """Public rooms and the reader's own (see the module's docstring for why)."""
    return (
        select(Room.id)
        .where(Room.private == false())
        .union_all(select(Membership.room_id).where(Membership.user_id == bindparam("reader_id")))
    )


# How the messages are found (see the module's docstring).
ROOMS = "rooms"  # every message of the rooms searched, through the (room_id, id) index
TRIGRAMS = "trigrams"  # SQLite: FTS5 hands its matches over newest first
GRAMS = "grams"  # SQLite: the same from the index of one- and two-character pieces
PLANNER = "planner"  # PostgreSQL: its planner picks a way from its statistics
FEW_MESSAGES = 20_000  # SQLite reads the rooms through when they hold fewer messages than this (~25 ms)
# PostgreSQL: a piece at least this frequent is not asked of the index of pieces (see the
# docstring); 0.5 % of a million messages is a page in the newest ~4,000 for a reader of all.
COMMON_PIECE = 0.005


# How each message's text is tested (PostgreSQL picks; SQLite's LIKE ignores ASCII case).
LIKE, ILIKE, REGEX = "like", "ilike", "regex"


@cache
def _statement(way: str, in_room: bool, test: str = LIKE, short: bool = False) -> Select:
    """Built once per shape, with bound parameters: building costs more than running.

    ``short``: PostgreSQL, a text of one or two characters (the index of pieces).
    The tests are written cheapest-first or most-selective-first for SQLite, which
    checks them in that order."""
    stmt = select(Message.id, Message.body, Message.created_at, User.username, Room.name, Room.kind)
    if way in (TRIGRAMS, GRAMS):
        index = fts if way == TRIGRAMS else grams_fts
        stmt = stmt.select_from(index).join(Message, Message.id == index.c.rowid)
        found = index.c[index.name].match(bindparam("match"))
        key = index.c.rowid  # FTS5 honours rowid < :before
    elif test == REGEX:
        found, key = Message.body.op("~*")(bindparam("regex")), Message.id
    else:
        like = Message.body.ilike if test == ILIKE else Message.body.like
        found, key = like(bindparam("pattern"), escape="\\"), Message.id
    room_test = Message.room_id == bindparam("room_id") if in_room else Message.room_id.in_(_readable_rooms())
    older = key < bindparam("before")
    tests = {
        ROOMS: [room_test, older, *_visible(), found],
        TRIGRAMS: [found, older, room_test, *_visible()],
        GRAMS: [found, older, room_test, *_visible()],
        PLANNER: [older, room_test, *_visible(), found],
    }[way]
    if short:
        # The index's own expression, so that the planner may use it; ``found`` then
        # checks each row it hands over (and is the whole test on the newest-first walk).
        pieces = getattr(func, SQL_FUNCTION)(Message.body, type_=ARRAY(Text))
        tests.insert(-1, pieces.contains(array([func.lower(bindparam("text", type_=Text))])))
    return (
        stmt.join(Room, Room.id == Message.room_id)
        .join(User, User.id == Message.author_id)
        .where(*tests)
        .order_by(key.desc())
        .limit(bindparam("limit"))
    )


# PostgreSQL: one statement before the search (as SET LOCAL was): plans made for this
# text, and how common its piece is, from ANALYZE's most common elements of the index of
# pieces (0 when it is not among them, or nothing was analysed yet).
_PLAN_SETTINGS = text_clause("SELECT set_config('plan_cache_mode', 'force_custom_plan', true), 0.0")
_PLAN_SETTINGS_SHORT = text_clause(
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true), coalesce(("
    "SELECT max(common.freq) FROM pg_stats, "
    "unnest(most_common_elems::text::text[], most_common_elem_freqs) AS common (piece, freq) "
    "WHERE tablename = 'ix_message_grams' AND common.piece = lower(:text)), 0.0)"
)


@cache
def _count_statement(in_room: bool) -> Select:
    """SQLite: how many messages the rooms to search hold below ``before``, up to ``limit``."""
    room_test = Message.room_id == bindparam("room_id") if in_room else Message.room_id.in_(_readable_rooms())
    some = select(literal_column("1")).where(room_test, Message.id < bindparam("before")).limit(bindparam("cap"))
    return select(func.count()).select_from(some.subquery())


def fts_phrase(text: str) -> str:
    """The text as one FTS5 phrase: quoted, quotes doubled; AND, NEAR, * and ^ are words."""
    return '"' + text.replace('"', '""') + '"'


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's own characters (% _ and the escape \\) taken literally."""
    return "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"


def search(
    reader_id: int,
    reader_name: str,
    text: str,
    before: int | None = None,
    room_id: int | None = None,
    limit: int | None = None,
) -> Results:
    """A page of the messages containing ``text`` (cleaned), newest first, in the rooms
    the reader may read or in one room (``room_id``: the caller checked it is readable).
    Two statements."""
    limit = PAGE_SIZE if limit is None else limit
    params = {"reader_id": reader_id, "before": NEWEST if before is None else min(before, NEWEST), "limit": limit + 1}
    in_room = room_id is not None
    if in_room:
        params["room_id"] = room_id
    test = LIKE
    if db.engine.dialect.name == "sqlite":
        few = db.session.execute(_count_statement(in_room), {**params, "cap": FEW_MESSAGES}).scalar_one()
        way = ROOMS if few < FEW_MESSAGES else TRIGRAMS if len(text) >= TRIGRAM else GRAMS
    else:
        # Planned for this text, never a generic plan made for any text: how common the
        # text is decides between an index and the newest messages first.
        settings = _PLAN_SETTINGS if len(text) >= TRIGRAM else _PLAN_SETTINGS_SHORT
        _, frequency = db.session.execute(settings, {"text": text}).one()
        way = PLANNER
        if text.lower() != text.upper():  # letter case to ignore
            test = ILIKE if len(text) >= TRIGRAM else REGEX
    short = way == PLANNER and len(text) < TRIGRAM and frequency < COMMON_PIECE
    if short:
        params["text"] = text
    if way == TRIGRAMS:
        params["match"] = fts_phrase(text)
    elif way == GRAMS:
        params["match"] = gram_term(text)
    elif test == REGEX:
        params["regex"] = "***=" + text  # the rest of the expression is literal
    else:
        params["pattern"] = like_pattern(text)
    rows = db.session.execute(_statement(way, in_room, test, short), params).all()
    pattern = re.compile(re.escape(text), re.IGNORECASE)
    hits = [
        Hit(
            id=id_,
            room_name=room_name,
            room_title=direct_title(room_name, reader_name) if kind == Room.DIRECT else room_name,
            direct=kind == Room.DIRECT,
            author=author,
            created_at=created_at,
            snippet=snippet(body, pattern),
        )
        for id_, body, created_at, author, room_name, kind in rows[:limit]
    ]
    return Results(hits, hits[-1].id if len(rows) > limit else None)


SNIPPET_CHARS = 160
SNIPPET_LEAD = 40  # characters shown before the first match


def snippet(body: str, pattern: re.Pattern) -> Markup:
    """Up to SNIPPET_CHARS of ``body`` around its first match, each match in <mark>.

    Built from escaped pieces: every piece of the message goes through ``escape``, and
    the only markup added is our own <mark> and the ellipses.
    """
    first = pattern.search(body)
    start = max(0, first.start() - SNIPPET_LEAD) if first else 0
    end = min(len(body), max(start + SNIPPET_CHARS, first.end() if first else 0))
    window = body[start:end]
    pieces: list[Markup] = [Markup("…")] if start else []
    pos = 0
    for match in pattern.finditer(window):
        pieces += [escape(window[pos : match.start()]), Markup("<mark>{}</mark>").format(match.group(0))]
        pos = match.end()
    pieces.append(escape(window[pos:]))
    if end < len(body):
        pieces.append(Markup("…"))
    return Markup("").join(pieces)
