"""Real Chromium (Debian's, through Playwright) against a real gunicorn server.

Chromium missing: the tests skip with a reason on a developer's machine and fail in
CI (CI=true), where a silent skip would hide that nothing was tested.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from ..liveserver import LiveServer

ROOT = Path(__file__).resolve().parents[2]
# The README's screenshots: refreshed with SCREENSHOTS_DIR=docs/screenshots bin/test -m browser.
# By default they go to a scratch folder, so a test run leaves the work tree clean.
SCREENSHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "webchat-screenshots")
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-features=Translate,MediaRouter",
]
PASSWORD = "correct horse battery"  # noqa: S105 - a test account's
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="session")
def chromium():
    if not Path(CHROMIUM).exists():
        reason = f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def web(live_database_url, tmp_path_factory) -> Iterator[LiveServer]:
    """One server for a module's browser tests; a generous rate limit for seeding."""
    srv = LiveServer(live_database_url, tmp_path_factory.mktemp("web"), RATE_LIMIT_COUNT="1000", RATE_LIMIT_WINDOW="1")
    srv.start()
    yield srv
    srv.stop()


@dataclass
class Console:
    """What the pages of one test said: CSP violations and uncaught errors fail it."""

    messages: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page) -> None:
        page.on("console", lambda msg: self.messages.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    @property
    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if "Content Security Policy" in m or "Content-Security-Policy" in m]

    def unexpected(self, allowed: tuple[str, ...] = ()) -> list[str]:
        """Console errors except the expected ones (e.g. a socket failing while the server is down)."""
        return [m for m in self.messages if m.startswith("error:") and not any(a in m for a in allowed)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def open_page(chromium, console):
    """open_page(**context options) -> a page in a fresh context (its own cookies)."""
    contexts = []

    def open_(**options):
        options.setdefault("viewport", DESKTOP)
        context = chromium.new_context(**options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        page = context.new_page()
        console.watch(page)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert console.csp_violations == [], console.csp_violations
    assert console.errors == [], console.errors


# --- acting like a person --------------------------------------------------------------


def sign_up(page, base_url: str, username: str) -> None:
    page.goto(base_url + "/signup/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Confirm password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("button", name="Log out").wait_for()


def create_room(page, base_url: str, name: str) -> None:
    page.goto(base_url + "/create/")
    page.get_by_label("Room name").fill(name)
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name=name, level=1).wait_for()


# --- seeding history straight into the database ----------------------------------------


def _app(database_url: str):
    from config import TestingConfig
    from webchat import create_app

    return create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=database_url)


def seed_room(database_url: str, room_name: str, owner: str, created_at: datetime) -> None:
    """A room that ``owner`` created at ``created_at`` (naive UTC), with its system message."""
    from webchat.extensions import db
    from webchat.models import Membership, Message, Room, User
    from webchat.rooms.service import room_key

    app = _app(database_url)
    with app.app_context():
        creator = db.session.query(User).filter_by(username=owner).one()
        room = Room(name=room_name, name_key=room_key(room_name), owner=creator, created_at=created_at)
        db.session.add(room)
        db.session.flush()
        db.session.add(Membership(user_id=creator.id, room_id=room.id, joined_at=created_at))
        message = Message(
            room_id=room.id,
            author_id=creator.id,
            body="",
            kind=Message.SYSTEM,
            event=Message.CREATED,
            created_at=created_at,
        )
        db.session.add(message)
        db.session.flush()
        room.last_message_id, room.last_activity_at = message.id, created_at
        db.session.commit()
        db.session.remove()
        db.engine.dispose()


def seed_messages(database_url: str, room_name: str, lines: list[tuple[str, str, datetime]]) -> list[int]:
    """(username, text, created_at naive UTC) rows, as if posted then; a newcomer joins
    first (with its system message). Returns the ids of the rows."""
    from webchat.extensions import db
    from webchat.models import Membership, Message, Room, User

    app = _app(database_url)
    ids = []
    with app.app_context():
        room = db.session.query(Room).filter_by(name=room_name).one()
        users = {}

        def add(author: User, body: str, kind: str, at: datetime, event: str | None = None) -> Message:
            message = Message(room_id=room.id, author_id=author.id, body=body, kind=kind, event=event, created_at=at)
            db.session.add(message)
            db.session.flush()
            room.last_message_id, room.last_activity_at = message.id, at
            return message

        for username, text, at in lines:
            if username not in users:
                user = users[username] = db.session.query(User).filter_by(username=username).one()
                if not db.session.query(Membership).filter_by(user_id=user.id, room_id=room.id).first():
                    db.session.add(Membership(user_id=user.id, room_id=room.id, joined_at=at))
                    add(user, "", Message.SYSTEM, at, Message.JOINED)
            ids.append(add(users[username], text, Message.USER, at).id)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return ids


def seed_conversation(
    database_url: str, room_name: str, owner: str, created_at: datetime, lines: list[tuple[str, str, datetime]]
) -> list[int]:
    """A room ``owner`` created at ``created_at`` and what was said in it (seed_messages)."""
    seed_room(database_url, room_name, owner, created_at)
    return seed_messages(database_url, room_name, lines)


def stored_bodies(database_url: str, room_name: str) -> list[str]:
    """What people have said in a room, oldest first, straight from the database."""
    from webchat.extensions import db
    from webchat.models import Message, Room

    app = _app(database_url)
    with app.app_context():
        bodies = [
            body
            for (body,) in db.session.query(Message.body)
            .join(Room, Room.id == Message.room_id)
            .filter(Room.name == room_name, Message.kind == Message.USER)
            .order_by(Message.id)
        ]
        db.session.remove()
        db.engine.dispose()
    return bodies


def spread(count: int, start: datetime, step: timedelta) -> list[datetime]:
    return [start + i * step for i in range(count)]


def no_horizontal_scroll(page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
    log_widths = page.evaluate(
        "() => { const l = document.getElementById('log'); return l ? [l.scrollWidth, l.clientWidth] : [0, 0] }"
    )
    assert log_widths[0] <= log_widths[1], f"the log scrolls sideways: {log_widths}"


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
