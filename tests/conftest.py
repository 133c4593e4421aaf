"""Shared fixtures. The database is SQLite unless WEBCHAT_TEST_DB=postgres."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from flask_migrate import upgrade

from config import TestingConfig
from webchat import create_app
from webchat.extensions import db

from . import services

TEST_DB = os.environ.get("WEBCHAT_TEST_DB", "sqlite")
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    """One migrated database for the session; tests empty it after themselves."""
    if TEST_DB == "postgres":
        url, name = services.create_pg_database()
        yield url
        services.drop_pg_database(name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def _migrated(database_url):
    migrate_database(database_url)
    return database_url


def empty_tables() -> None:
    for table in ("membership", "message", "room", '"user"' if TEST_DB == "postgres" else "user"):
        db.session.execute(db.text(f"DELETE FROM {table}"))
    db.session.commit()


@pytest.fixture
def app(_migrated):
    app = create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=_migrated, RATE_LIMIT_COUNT=1000)
    with app.app_context():
        yield app
        db.session.remove()
        empty_tables()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


def post_form(client, url: str, data: dict, follow: bool = False, get_url: str | None = None):
    """GET the page for its CSRF token, then POST the form like a browser."""
    page = client.get(get_url or url)
    return client.post(url, data={**data, "csrf_token": csrf_token(page.get_data(as_text=True))}, follow_redirects=follow)


def signup(client, username: str = "alice", password: str = "correct horse"):
    response = post_form(client, "/signup/", {"username": username, "password": password, "confirm": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def create_room(client, name: str = "general"):
    response = post_form(client, "/create/", {"name": name})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


ROOT = Path(__file__).resolve().parent.parent


def migrate_database(url: str) -> None:
    app = create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="module")
def live_database_url(tmp_path_factory):
    """A database of the module's own for servers it starts (they outlive one test)."""
    if TEST_DB == "postgres":
        url, name = services.create_pg_database()
    else:
        url, name = f"sqlite:///{tmp_path_factory.mktemp('livedb') / 'live.sqlite3'}", None
    migrate_database(url)
    yield url
    if name:
        services.drop_pg_database(name)


@pytest.fixture(scope="module")
def server(live_database_url, tmp_path_factory):
    from .liveserver import LiveServer

    srv = LiveServer(live_database_url, tmp_path_factory.mktemp("server"), RATE_LIMIT_COUNT="5", RATE_LIMIT_WINDOW="3")
    srv.start()
    yield srv
    srv.stop()
