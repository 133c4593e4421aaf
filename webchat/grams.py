"""The one- and two-character pieces of a message, for SQLite's index of short texts.

Search finds any part of a message; three characters or more go through an index of
trigrams, which has nothing for one or two. ``message_grams`` (an FTS5 table, see
migrations/versions/b3e8d1f6a4c7) indexes the distinct one- and two-character pieces
of each message's text instead, each piece written as one ASCII token, so that a
search of one or two characters is the look-up of a single term.

``grams`` is registered on every SQLite connection as the SQL function
``webchat_grams`` (webchat/extensions.py): the triggers that keep the index in step
with the messages call it, the search (``gram_term``) and bench/search.py use the same
code, so the index and the question cannot disagree.

It lives apart from webchat.search so that webchat.extensions can import it without
importing the search views.
"""

from __future__ import annotations

SQL_FUNCTION = "webchat_grams"


def fold(text: str) -> str:
    """Lower case, one character for one: the rule of the index and of the question."""
    lowered = text.lower()
    if len(lowered) == len(text):
        return lowered
    # A rare character lowers to two ('İ' to 'i̇'): it stays as it is, so that a piece
    # of one or two characters stays one piece.
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)


def token(piece: str) -> str:
    """A piece as one token of FTS5's ascii tokenizer: each character's code point in hex
    after an 'x' ("数据" -> "x6570x636e"), so punctuation, emoji and wildcards are
    plain terms and no piece can be read as query syntax."""
    return "".join(f"x{ord(c):x}" for c in piece)


_char_tokens: dict[str, str] = {}  # a character's token, made once: grams() runs for every message written


def grams(body: str | None) -> str:
    """The distinct one- and two-character pieces of ``body`` (folded), as tokens
    separated by spaces, in the order they first appear: deterministic, as the index's
    'delete' needs the very tokens it was given.

    Pieces with whitespace are left out: a search is stripped, so a text of one or two
    characters never holds any, and those pieces would only make the index bigger."""
    if not body:
        return ""
    seen: dict[str, None] = {}
    previous = ""
    for char in fold(body):
        if char.isspace():
            previous = ""
            continue
        current = _char_tokens.get(char)
        if current is None:
            current = _char_tokens[char] = token(char)
        seen[current] = None
        if previous:
            seen[previous + current] = None  # == token(previous char + char)
        previous = current
    return " ".join(seen)


def gram_term(text: str) -> str:
    """The FTS5 query for a text of one or two characters: its one term, quoted."""
    return '"' + token(fold(text)) + '"'
