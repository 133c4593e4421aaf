"""Count the SQL statements of one unit of work: a request, a socket's catch-up, a frame.

Pages must cost a fixed number of statements whatever their size (an N+1 is the
usual way a page gets slow), and a read must not write. This module makes both
visible: ``unit(name)`` tallies the statements and commits run inside it (per
greenlet: a context variable, so concurrent requests do not mix), and hands the tally
to a sink. Tests read the tallies (``tests/querybudget.py``); a server started with
``QUERY_LOG=<file>`` appends one JSON line per unit, which is how tests see the
socket paths of a real server. With neither, nothing is installed.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine

WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Tally:
    name: str
    statements: list[str] = field(default_factory=list)
    commits: int = 0

    @property
    def writes(self) -> list[str]:
        return [s for s in self.statements if s.lstrip().upper().startswith(WRITES)]

    def as_dict(self) -> dict:
        return {"unit": self.name, "statements": self.statements, "commits": self.commits}


Sink = Callable[[Tally], None]

_current: ContextVar[Tally | None] = ContextVar("webchat_query_tally", default=None)
_sinks: dict[int, Sink] = {}  # id(app) -> sink: each app reports to its own
_installed = False
_install_lock = threading.Lock()


def _on_execute(_conn, _cursor, statement, _params, _context, _executemany) -> None:
    note(statement)


def note(statement: str) -> None:
    """A statement run outside SQLAlchemy's execution (webchat/prepared.py) counts too."""
    tally = _current.get()
    if tally is not None:
        tally.statements.append(statement)


def _on_commit(_conn) -> None:
    tally = _current.get()
    if tally is not None:
        tally.commits += 1


def _install_listeners() -> None:
    global _installed
    with _install_lock:
        if not _installed:
            event.listen(Engine, "before_cursor_execute", _on_execute)
            event.listen(Engine, "commit", _on_commit)
            _installed = True


def enable(app: Flask, sink: Sink) -> None:
    """Tally every request of ``app`` (and the socket units that ask) into ``sink``."""
    _install_listeners()
    _sinks[id(app)] = sink
    if not app.extensions.get("webchat.querylog"):
        app.extensions["webchat.querylog"] = True
        app.wsgi_app = _Middleware(app, app.wsgi_app)


def disable(app: Flask) -> None:
    _sinks.pop(id(app), None)


@contextmanager
def unit(app: Flask, name: str) -> Iterator[Tally | None]:
    """Tally what runs inside under ``name``; a no-op unless ``enable`` was called."""
    sink = _sinks.get(id(app))
    if sink is None:
        yield None
        return
    tally = Tally(name)
    token = _current.set(tally)
    try:
        yield tally
    finally:
        _current.reset(token)
        sink(tally)


class _Middleware:
    """One unit per HTTP request, named like an access log line."""

    def __init__(self, app: Flask, wsgi_app) -> None:
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        name = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        if environ.get("QUERY_STRING"):
            name += "?" + environ["QUERY_STRING"]
        with unit(self.app, name):
            # Flask builds the whole body before returning (no streamed views here),
            # so everything the request runs is inside the unit.
            return self.wsgi_app(environ, start_response)


def file_sink(path: str) -> Sink:
    lock = threading.Lock()

    def write(tally: Tally) -> None:
        line = json.dumps(tally.as_dict(), ensure_ascii=False) + "\n"
        with lock, open(path, "a", encoding="utf-8") as f:
            f.write(line)

    return write


def init_app(app: Flask) -> None:
    path = app.config.get("QUERY_LOG")
    if path:
        enable(app, file_sink(path))
