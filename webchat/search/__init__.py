"""Search: messages across the rooms a reader may read (``/search/?q=...``)."""

from flask import Flask

from .views import bp

# What the search migrations (d4f1a7c3e9b2, b3e8d1f6a4c7) add beside the models: the
# FTS5 tables and their shadow tables (SQLite), the GIN indexes (PostgreSQL).
SCHEMA_OBJECTS = ("message_fts", "ix_message_body_trgm", "message_grams", "ix_message_grams")


def include_object(obj, name: str | None, type_: str, reflected: bool, compare_to) -> bool:
    """For Alembic's comparisons (autogenerate, tests/test_migrations.py): the search
    index is not a difference between the models and the database."""
    return not (reflected and compare_to is None and (name or "").startswith(SCHEMA_OBJECTS))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
