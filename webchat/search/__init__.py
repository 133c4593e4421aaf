"""Search: messages across the rooms a reader may read (``/search/?q=...``)."""

from flask import Flask

from .views import bp

# What the search migration (d4f1a7c3e9b2) adds beside the models: the FTS5 table and
# its shadow tables (SQLite), the trigram index (PostgreSQL).
SCHEMA_OBJECTS = ("message_fts", "ix_message_body_trgm")


def include_object(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """For Alembic's comparisons (autogenerate, tests/test_migrations.py): the search
    index is not a difference between the models and the database."""
    return not (reflected and compare_to is None and (name or "").startswith(SCHEMA_OBJECTS))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
