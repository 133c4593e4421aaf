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
    """A fresh app on the session's database, emptied afterwards.

    No app context stays pushed during the test: Flask would reuse it for every
    request, and ``g`` (Flask-Login's user, the CSP nonce) and the database session
    would leak from one client's request into another's. Query the database inside
    ``with app.app_context():``, as a real server would scope it.
    """
    app = create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=_migrated, RATE_LIMIT_COUNT=1000)
    yield app
    with app.app_context():
        db.session.remove()
        empty_tables()
        db.engine.dispose()
    app.extensions["webchat.broker"].close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def queries(app):
    """Counts the SQL statements of each request: ``queries.measure(budget, call)``."""
    from .querybudget import Queries

    counter = Queries(app)
    yield counter
    from webchat import querylog

    querylog.disable(app)


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


def post_form(client, url: str, data: dict, follow: bool = False, get_url: str | None = None):
    """GET the page for its CSRF token, then POST the form like a browser."""
    page = client.get(get_url or url)
    return client.post(
        url, data={**data, "csrf_token": csrf_token(page.get_data(as_text=True))}, follow_redirects=follow
    )


def signup(client, username: str = "alice", password: str = "correct horse"):
    response = post_form(client, "/signup/", {"username": username, "password": password, "confirm": password})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response


def signed_up(app, *names: str) -> dict:
    """A test client of its own for each name, signed up (and so logged in)."""
    clients = {}
    for name in names:
        clients[name] = app.test_client()
        signup(clients[name], name)
    return clients


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

    srv = LiveServer(
        live_database_url,
        tmp_path_factory.mktemp("server"),
        RATE_LIMIT_COUNT="5",
        RATE_LIMIT_WINDOW="3",
        TYPING_TTL_SECONDS="2",
    )
    srv.start()
    yield srv
    srv.stop()


def login(client, username: str = "alice", password: str = "correct horse", next_url: str | None = None):  # noqa: S107
    from urllib.parse import quote

    url = "/login/" if next_url is None else f"/login/?next={quote(next_url, safe='')}"
    return post_form(client, url, {"username": username, "password": password})


def logout(client):
    page = client.get("/")
    return client.post("/logout/", data={"csrf_token": csrf_token(page.get_data(as_text=True))})


def field_error(page: str, field_id: str) -> str | None:
    """The text of a form field's error element (``<p id="<field>-error">``), or None."""
    import html

    match = re.search(rf'<p\b[^>]*\bid="{re.escape(field_id)}-error"[^>]*>(.*?)</p>', page, re.S)
    return html.unescape(match.group(1)).strip() if match else None


def input_value(page: str, field_id: str) -> str | None:
    """The value attribute of the <input> with that id, or None when it has none."""
    import html

    tag = re.search(rf'<input\b[^>]*\bid="{re.escape(field_id)}"[^>]*>', page)
    assert tag, f"page has no input #{field_id}"
    value = re.search(r'\svalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else None


def articles(page: str) -> dict[int, str]:
    """Each message's ``<article id="m-N">...</article>`` HTML by id, in page order."""
    return {int(m.group(1)): m.group(0) for m in re.finditer(r'<article id="m-(\d+)".*?</article>', page, re.S)}
