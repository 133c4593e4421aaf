"""Deactivated people's names are marked on room pages without touching a message.

Message fragments are rendered once per view and shared (webchat/fragments.py), so
a mark cannot live in them. The room page's nonce'd <style> carries it instead:
one rule per deactivated author, adding the words after their name, in the
reader's language.

Who is deactivated is kept per process, so a room page costs no statement for it:
read once by a process's first request, and again only when the broker's
"deactivated" generation moved (an admin (de)activated someone, on any worker or
host). With Redis, that is one GET per room page.
"""

from __future__ import annotations

import threading

from flask import Flask, current_app
from flask_babel import gettext
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db
from ..live import broker
from ..models import User

GENERATION = "deactivated"


class Deactivated:
    """This process's copy of the deactivated accounts' ids."""

    def __init__(self) -> None:
        self.ids: tuple[int, ...] | None = None  # None: not read yet
        self.generation = -1
        self._lock = threading.Lock()

    def load(self) -> tuple[int, ...]:
        generation = broker.get().generation(GENERATION)  # before the read: a change after it reloads
        ids = tuple(
            db.session.execute(select(User.id).where(User.deactivated_at.is_not(None)).order_by(User.id)).scalars()
        )
        with self._lock:
            self.ids, self.generation = ids, generation
        return ids

    def current(self) -> tuple[int, ...]:
        ids = self.ids
        if ids is None:
            return self.load()
        generation = broker.get().generation(GENERATION)
        if generation != -1 and generation != self.generation:  # -1: Redis is away, keep ours
            return self.load()
        return ids


def changed() -> None:
    """Someone was (de)activated and it is committed: every process reloads."""
    broker.get().bump(GENERATION)


def _state() -> Deactivated:
    return current_app.extensions["webchat.deactivated"]


def css_string(text: str) -> str:
    """``text`` as a CSS string literal: only letters, digits and spaces stay as they
    are; anything else (quotes, backslashes, '<' of a '</style>') becomes a 6-digit
    hex escape, which needs no terminating space."""
    return '"' + "".join(ch if ch.isalnum() or ch == " " else f"\\{ord(ch):06X}" for ch in text) + '"'


def deactivated_author_style() -> Markup:
    """CSS rules for the room page's <style>: "(deactivated)" after those authors' names."""
    ids = _state().current()
    if not ids:
        return Markup("")
    selectors = ",\n".join(f'.msg[data-author="{int(uid)}"] .msg-author bdi::after' for uid in ids)
    # TRANSLATORS: shown right after the name of a person whose account was deactivated
    content = css_string(gettext("(deactivated)"))
    rule = f"{selectors} {{ content: {content}; margin-inline-start: .3em; font-weight: 400; opacity: .8; }}"
    return Markup(rule)  # noqa: S704 - ints and an escaped CSS string only


def init_app(app: Flask) -> None:
    state = app.extensions["webchat.deactivated"] = Deactivated()

    @app.before_request
    def _first_read() -> None:
        """A process's first request reads the list, so no page pays for it later."""
        if state.ids is not None:
            return
        try:
            state.load()
        except SQLAlchemyError:
            db.session.rollback()  # the database is away: the page itself will say so
