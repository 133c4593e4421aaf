"""Server-side sessions: a login is a ``user_session`` row, and ending it ends it.

The signed cookie holds the row's random token as ``session["sid"]`` (the live
socket reads it too, to close only one session's sockets). Every request loads the
user with ONE statement that also proves the session: the row exists, belongs to
that user, was used within SESSION_DAYS, and the account is active. A read writes
nothing: ``last_seen_at`` moves at most once a day, and only then is the cookie sent
again, its expiry SESSION_DAYS from then (SESSION_REFRESH_EACH_REQUEST is off).
Flask-Login's remember-me cookie is never set, and cannot bring a session back: without
a live ``sid`` there is no user.

The signed-in user is a ``Reader`` (the columns pages read), not an ORM User: views
that change the account load its row with ``account()``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from flask import current_app, request, session
from flask_login import UserMixin, login_user, logout_user
from sqlalchemy import bindparam, delete, select, update

from ..extensions import db
from ..live import access, events
from ..models import User, UserSession, utcnow
from ..prepared import Prepared

TOUCH_EVERY = timedelta(days=1)
USER_AGENT_CHARS = 120


@dataclass(slots=True, eq=False)  # eq: UserMixin's, by id
class Reader(UserMixin):
    """Who is signed in, for this request: what pages read of them, not an ORM object.

    Building a User entity (identity map, instrumented attributes) was a tenth of every
    page's time. Code that changes the account loads the User row itself
    (``account()``)."""

    id: int
    username: str
    time_zone: str | None
    language: str | None
    is_admin: bool


READER_COLUMNS = (User.id, User.username, User.time_zone, User.language, User.is_admin)  # Reader's, in order


@cache
def _load_statement() -> Prepared:
    # Every request runs it: straight on the cursor (webchat/prepared.py).
    return Prepared(
        select(*READER_COLUMNS, UserSession.id, UserSession.last_seen_at)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            User.id == bindparam("user_id"),
            UserSession.token == bindparam("token"),
            UserSession.last_seen_at > bindparam("cutoff"),
            User.deactivated_at.is_(None),
        )
    )


def load_user(user_id: str) -> Reader | None:
    """Flask-Login's user loader: the user of this cookie's live session, or None."""
    token = session.get("sid")
    if not user_id.isdigit() or not isinstance(token, str):
        return None
    now = utcnow()
    cutoff = now - timedelta(days=current_app.config["SESSION_DAYS"])
    params = {"user_id": int(user_id), "token": token, "cutoff": cutoff}
    row = _load_statement().first(db.session.connection(), params)
    if row is None:
        return None
    *fields, session_id, last_seen = row
    if now - last_seen >= TOUCH_EVERY:
        # The loader runs before the view does anything, so this commits nothing else.
        db.session.execute(update(UserSession).where(UserSession.id == session_id).values(last_seen_at=now))
        db.session.commit()
        session.modified = True  # the cookie's expiry moves with the row's: SESSION_DAYS from now
    return Reader(*fields)


def account(reader: Reader) -> User:
    """The signed-in person's User row, to change it (settings, password)."""
    return db.session.get(User, reader.id)


def start(user: User) -> None:
    """Log ``user`` in with a new session (a new token: nothing of an earlier one is kept)."""
    token = secrets.token_urlsafe(32)
    agent = (request.user_agent.string or "")[:USER_AGENT_CHARS] or None
    db.session.add(UserSession(token=token, user_id=user.id, user_agent=agent))
    db.session.commit()
    session.clear()
    session.permanent = True  # the cookie lasts as long as the session may: SESSION_DAYS
    session["sid"] = token
    login_user(user)


def end_current(user_id: int) -> None:
    """Log out here: the row goes, so the same cookie replayed later is logged out too,
    and this session's sockets close wherever they are."""
    token = session.get("sid")
    if isinstance(token, str):
        db.session.execute(delete(UserSession).where(UserSession.token == token))
        db.session.commit()
        access.revoke_user(user_id, events.LOGGED_OUT, session=token)
    forget_cookie()


def end_all(user_id: int, reason: str = events.LOGGED_OUT) -> None:
    """End every session of a user (log out everywhere, deactivation) and close all
    their sockets. The caller commits first whatever else must be seen by a reconnect."""
    db.session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    db.session.commit()
    access.revoke_user(user_id, reason)


def end_others(user_id: int) -> int:
    """End every session of the user but this one (a password change); their sockets
    close, this session's stay. Returns how many ended."""
    keep = session.get("sid")
    tokens = list(
        db.session.execute(
            select(UserSession.token).where(UserSession.user_id == user_id, UserSession.token != keep)
        ).scalars()
    )
    if tokens:
        db.session.execute(delete(UserSession).where(UserSession.token.in_(tokens)))
    db.session.commit()
    for token in tokens:
        access.revoke_user(user_id, events.LOGGED_OUT, session=token)
    return len(tokens)


def forget_cookie() -> None:
    logout_user()
    session.pop("sid", None)
