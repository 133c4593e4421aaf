"""Real PostgreSQL and Redis for tests.

Outside CI a missing server skips the tests that need it, with the reason; in CI
(CI=true) it is a failure. bin/test starts both when they are installed but down.
"""

from __future__ import annotations

import os
import uuid

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def missing(what: str, error: Exception) -> None:
    message = f"{what} is not reachable ({error}); bin/test starts it when installed"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def create_pg_database() -> tuple[str, str]:
    """A fresh database of our own; returns (sqlalchemy url, name)."""
    import psycopg

    name = f"webchat_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        missing("PostgreSQL", exc)
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}", name


def drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_or_skip():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing("Redis", exc)
    return client
