"""Hot statements, compiled once per dialect and run straight on the DBAPI cursor.

On the path of every request (the session check) and every message (its writes),
SQLAlchemy's per-call work (the cache key, the execution context, the result object)
cost more than the database took to run the statement. A ``Prepared`` statement keeps
what SQLAlchemy compiled for the dialect and, on each run, converts the parameters
with the statement's own bind processors (SQLite keeps datetimes as text) and the row
with its columns' result processors, so values are stored and read back exactly as
SQLAlchemy would. Each run is reported to the query log, so budgets still count it.

Only for statements whose every parameter is named: an INSERT must name each column
it writes (nothing fills in Python-side column defaults here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

from . import querylog


@dataclass(frozen=True)
class _Form:
    sql: str
    names: tuple[str, ...]  # the parameters, in the order of a positional paramstyle
    positional: bool
    defaults: dict[str, Any]  # values the statement carries itself (LIMIT 1's)
    binds: tuple[tuple[str, Callable[[Any], Any]], ...]  # (name, processor) where one is needed
    results: tuple[Callable[[Any], Any] | None, ...]


class Prepared:
    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._forms: dict[str, _Form] = {}

    def _form(self, dialect: Dialect) -> _Form:
        form = self._forms.get(dialect.name)
        if form is None:
            compiled = self.statement.compile(dialect=dialect)
            if isinstance(self.statement, Insert) and compiled.insert_prefetch:
                missing = ", ".join(c.key for c in compiled.insert_prefetch)
                raise ValueError(f"a prepared INSERT must give every column it writes: {missing}")
            names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
            binds = []
            for name in names:
                processor = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                if processor is not None:
                    binds.append((name, processor))
            columns = self.statement.exported_columns  # a SELECT's columns, or what RETURNING gives
            results = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns)
            defaults = {name: bind.effective_value for name, bind in compiled.binds.items() if not bind.required}
            form = _Form(compiled.string, names, compiled.positional, defaults, tuple(binds), results)
            self._forms[dialect.name] = form
        return form

    def _run(self, connection: Connection, params: Mapping[str, Any], fetch: bool) -> tuple | None:
        form = self._form(connection.dialect)
        if form.defaults or form.binds:
            params = {**form.defaults, **params}
            for name, processor in form.binds:
                params[name] = processor(params[name])
        args = tuple(params[name] for name in form.names) if form.positional else params
        querylog.note(form.sql)
        dbapi = connection.dialect.loaded_dbapi
        cursor = connection.connection.cursor()
        try:
            cursor.execute(form.sql, args)
            row = cursor.fetchone() if fetch else None
        except dbapi.Error as exc:
            # As SQLAlchemy's own execution would: its exception types (the error pages
            # know them), and a connection the server dropped is not used again.
            gone = connection.dialect.is_disconnect(exc, connection.connection.dbapi_connection, cursor)
            if gone:
                connection.invalidate(exc)
            raise DBAPIError.instance(
                form.sql, args, exc, dbapi.Error, connection_invalidated=gone, dialect=connection.dialect
            ) from exc
        finally:
            cursor.close()
        if row is None or not any(form.results):
            return row
        return tuple(value if p is None else p(value) for p, value in zip(form.results, row, strict=True))

    def first(self, connection: Connection, params: Mapping[str, Any]) -> tuple | None:
        """The first row (a tuple, converted), or None."""
        return self._run(connection, params, fetch=True)

    def run(self, connection: Connection, params: Mapping[str, Any]) -> None:
        self._run(connection, params, fetch=False)
