"""Accounts over HTTP: who may sign up (open, invite links, closed), admins and the
accounts page, sessions that end (logout, everywhere, password change, disuse),
login and sign-up throttling, and the `flask admin` commands."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import render_template_string
from sqlalchemy import select, update

from webchat.extensions import db
from webchat.live import events
from webchat.models import Invite, User, UserSession, utcnow

from .conftest import articles, create_room, csrf_token, field_error, login, logout, post_form, signup
from .test_i18n import Pages, browser, error_routes
from .test_query_budget import ROOM_PAGE_CACHED

PASSWORD = "correct horse"  # noqa: S105


def text(response) -> str:
    return response.get_data(as_text=True)


def whoami(client) -> str | None:
    response = client.get("/")
    if response.status_code != 200:
        return None
    match = re.search(r'class="whoami">([^<]*)<', text(response))
    return match.group(1) if match else None


def user(app, name: str) -> User:
    with app.app_context():
        found = db.session.execute(select(User).filter_by(username=name)).scalar_one()
        db.session.expunge(found)
        return found


def session_rows(app, name: str | None = None) -> list[UserSession]:
    with app.app_context():
        query = select(UserSession).order_by(UserSession.id)
        if name is not None:
            query = query.join(User, User.id == UserSession.user_id).where(User.username == name)
        rows = db.session.execute(query).scalars().all()
        db.session.expunge_all()
        return rows


def copy_cookies(app, source):
    """Another client holding the same cookies: a copied (stolen, replayed) cookie."""
    clone = app.test_client()
    for cookie in source._cookies.values():
        clone._cookies[(cookie.domain, cookie.path, cookie.key)] = cookie
    return clone


class Revocations:
    """Records what access.revoke_user publishes (the live tests check the sockets)."""

    def __init__(self, app) -> None:
        self.events: list[tuple[int, dict]] = []
        broker = app.extensions["webchat.broker"]
        real = broker.publish_user

        def record(user_id: int, event: dict) -> None:
            self.events.append((user_id, event))
            real(user_id, event)

        broker.publish_user = record


@pytest.fixture
def revocations(app) -> Revocations:
    return Revocations(app)


@pytest.fixture
def admin(app):
    """The first account of the database: an admin."""
    client = app.test_client()
    signup(client, "root")
    return client


@pytest.fixture
def bob(app, admin):
    client = app.test_client()
    signup(client, "bob")
    return client


# --- the first account, and the admin commands -----------------------------------------


def test_the_first_account_is_an_admin_and_the_next_ones_are_not(app, admin, bob):
    assert user(app, "root").is_admin
    assert not user(app, "bob").is_admin
    assert 'href="/admin/users/"' in text(admin.get("/"))
    assert 'href="/admin/users/"' not in text(bob.get("/"))


def test_cli_grants_and_revokes_admin_but_keeps_the_last_one(app, admin, bob):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["admin", "grant", "BOB"])  # any letter case
    assert result.exit_code == 0 and "bob is now an admin" in result.output
    assert user(app, "bob").is_admin
    assert "already" in runner.invoke(args=["admin", "grant", "bob"]).output

    result = runner.invoke(args=["admin", "revoke", "root"])
    assert result.exit_code == 0 and "root is no longer an admin" in result.output
    assert not user(app, "root").is_admin

    result = runner.invoke(args=["admin", "revoke", "bob"])
    assert result.exit_code != 0 and "last admin" in result.output
    assert user(app, "bob").is_admin

    result = runner.invoke(args=["admin", "grant", "nobody"])
    assert result.exit_code != 0 and "No account is called 'nobody'" in result.output
    assert "is not an admin" in runner.invoke(args=["admin", "revoke", "root"]).output


# --- who may sign up ------------------------------------------------------------------


def test_signup_mode_must_be_one_of_three(app):
    from config import TestingConfig
    from webchat import create_app

    with pytest.raises(RuntimeError, match="SIGNUP must be one of open, invite, closed"):
        create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI="sqlite://", SIGNUP="maybe")


def test_closed_signup_says_so_and_refuses_posts(app, admin, client):
    app.config["SIGNUP"] = "closed"
    page = client.get("/signup/")
    assert page.status_code == 403 and "Sign-up is closed" in text(page)
    token = csrf_token(text(client.get("/login/")))
    data = {"username": "mallory", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
    refused = client.post("/signup/", data=data)
    assert refused.status_code == 403 and "Sign-up is closed" in text(refused)
    with app.app_context():
        assert db.session.execute(select(User.username).order_by(User.id)).scalars().all() == ["root"]


def make_invite(app, creator: str = "root", **fields) -> str:
    with app.app_context():
        creator_id = db.session.execute(select(User.id).filter_by(username=creator)).scalar_one()
        invite = Invite(code=secrets.token_urlsafe(12), created_by_id=creator_id, **fields)
        db.session.add(invite)
        db.session.commit()
        return invite.code


def join(client, code: str, username: str):
    data = {"username": username, "password": PASSWORD, "confirm": PASSWORD}
    return post_form(client, f"/join/{code}/", data)


def test_invite_only_signup_needs_a_link_and_counts_each_use(app, admin):
    app.config["SIGNUP"] = "invite"
    visitor = app.test_client()
    page = visitor.get("/signup/")
    assert page.status_code == 403 and "Sign-up is by invitation" in text(page)

    code = make_invite(app, max_uses=2)
    form = visitor.get(f"/join/{code}/")
    assert form.status_code == 200 and f'action="/join/{code}/"' in text(form)
    assert "You have an invite" in text(form)
    response = join(visitor, code, "carol")
    assert response.status_code == 303 and whoami(visitor) == "carol"
    assert not user(app, "carol").is_admin

    other = app.test_client()
    taken = join(other, code, "carol")  # a form error does not use the invite up
    assert taken.status_code == 400 and field_error(text(taken), "username") == "That username is taken."
    assert join(other, code, "dave").status_code == 303
    with app.app_context():
        assert db.session.execute(select(Invite.uses)).scalar_one() == 2

    late = app.test_client()
    gone = late.get(f"/join/{code}/")
    assert gone.status_code == 410 and "This invite link has been used up" in text(gone)
    token = csrf_token(text(late.get("/login/")))
    data = {"username": "erin", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
    assert late.post(f"/join/{code}/", data=data).status_code == 410
    assert whoami(late) is None


def test_an_invite_used_up_while_its_form_was_sent_creates_nobody(app, admin, monkeypatch):
    code = make_invite(app, max_uses=1)
    first, second = app.test_client(), app.test_client()
    token = csrf_token(text(second.get(f"/join/{code}/")))
    assert join(first, code, "carol").status_code == 303
    # The race: the second sign-up passed the page's check before the first one's
    # commit; the use is counted in its own transaction and refuses it.
    real, checks = Invite.state, []

    def state_as_the_page_saw_it(invite, now=None):
        checks.append(invite.id)
        return Invite.ACTIVE if len(checks) == 1 else real(invite, now)

    monkeypatch.setattr(Invite, "state", state_as_the_page_saw_it)
    data = {"username": "dave", "password": PASSWORD, "confirm": PASSWORD, "csrf_token": token}
    refused = second.post(f"/join/{code}/", data=data)
    assert refused.status_code == 410 and "used up" in text(refused)
    with app.app_context():
        assert db.session.execute(select(User.id).filter_by(username="dave")).first() is None
        assert db.session.execute(select(Invite.uses)).scalar_one() == 1
    assert whoami(second) is None


def test_expired_revoked_and_unknown_invites(app, admin):
    visitor = app.test_client()
    expired = make_invite(app, expires_at=utcnow() - timedelta(minutes=1))
    revoked = make_invite(app, revoked_at=utcnow())
    page = visitor.get(f"/join/{expired}/")
    assert page.status_code == 410 and "This invite link has expired" in text(page)
    page = visitor.get(f"/join/{revoked}/")
    assert page.status_code == 410 and "This invite link was revoked" in text(page)
    assert visitor.get("/join/no-such-code/").status_code == 404
    assert visitor.get("/join/" + "x" * 200 + "/").status_code == 404


def test_invites_work_in_open_mode_and_not_in_closed_mode(app, admin):
    code = make_invite(app)
    app.config["SIGNUP"] = "closed"
    page = app.test_client().get(f"/join/{code}/")
    assert page.status_code == 403 and "Sign-up is closed" in text(page)
    app.config["SIGNUP"] = "open"
    assert join(app.test_client(), code, "carol").status_code == 303


def test_admins_create_list_and_revoke_invite_links(app, admin, queries):
    app.config["SIGNUP"] = "invite"
    response = post_form(admin, "/invites/", {"expires": "1d", "uses": "3"})
    assert response.status_code == 303
    page, tally = queries.measure(2, lambda: admin.get("/invites/"), writes=False)  # the user, the invites
    html = text(page)
    [link] = re.findall(r'value="(http://localhost/join/[^"]+/)"', html)
    assert "0 of 3" in html and "Active" in html and "root" in html
    with app.app_context():
        invite = db.session.execute(select(Invite)).scalar_one()
        assert invite.max_uses == 3
        assert timedelta(hours=23) < invite.expires_at - utcnow() <= timedelta(days=1)

    code = link.rsplit("/", 2)[1]
    assert join(app.test_client(), code, "carol").status_code == 303
    assert "1 of 3" in text(admin.get("/invites/"))

    revoke = re.search(r'action="(/invites/\d+/revoke)"', html).group(1)
    assert post_form(admin, revoke, {}, get_url="/invites/").status_code == 303
    html = text(admin.get("/invites/"))
    assert "Revoked" in html and "/revoke" not in html
    assert app.test_client().get(f"/join/{code}/").status_code == 410

    post_form(admin, "/invites/", {"expires": "never", "uses": ""})
    with app.app_context():
        newest = db.session.execute(select(Invite).order_by(Invite.id.desc())).scalars().first()
        assert newest.expires_at is None and newest.max_uses is None


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"expires": "1d", "uses": "0"}, "uses", "Enter a whole number from 1 to 1000."),
        ({"expires": "1d", "uses": "lots"}, "uses", "Enter a whole number from 1 to 1000."),
        ({"expires": "1d", "uses": "1001"}, "uses", "Enter a whole number from 1 to 1000."),
        ({"expires": "forever", "uses": "5"}, "expires", "Pick an expiry from the list."),
    ],
)
def test_invite_form_errors_are_next_to_their_inputs(app, admin, data, field, message):
    response = post_form(admin, "/invites/", data)
    assert response.status_code == 400
    assert field_error(text(response), field) == message
    with app.app_context():
        assert db.session.execute(select(Invite.id)).first() is None


# --- the accounts page and deactivation -------------------------------------------------


ADMIN_PAGES = ["/admin/users/", "/invites/"]
ADMIN_POSTS = ["/admin/users/root/deactivate", "/admin/users/root/reactivate", "/invites/", "/invites/1/revoke"]


def test_admin_pages_are_not_found_for_everybody_else(app, admin, bob):
    for path in ADMIN_PAGES:
        assert bob.get(path).status_code == 404, path
        assert admin.get(path).status_code == 200, path
    token = csrf_token(text(bob.get("/")))
    for path in ADMIN_POSTS:
        assert bob.post(path, data={"csrf_token": token}).status_code == 404, path
    visitor = app.test_client()
    for path in ADMIN_PAGES:
        assert visitor.get(path).headers["Location"].startswith("/login/"), path
    assert user(app, "root").is_active


def test_admin_posts_need_a_csrf_token(app, admin, bob):
    for path in ["/admin/users/bob/deactivate", "/invites/"]:
        assert admin.post(path, data={}).status_code == 400, path
    assert user(app, "bob").is_active


def test_the_accounts_page_lists_everybody_within_budget(app, admin, bob, queries):
    page, _ = queries.measure(2, lambda: admin.get("/admin/users/"), writes=False)  # the user, the accounts
    html = text(page)
    for name in ("root", "bob"):
        assert f"<bdi>{name}</bdi>" in html
    assert "Admin" in html and "Member" in html and "Active" in html
    assert 'action="/admin/users/bob/deactivate"' in html
    assert 'action="/admin/users/root/deactivate"' not in html  # not oneself


def test_deactivation_ends_every_session_and_login_says_why(app, admin, bob, revocations):
    second_bob = app.test_client()
    login(second_bob, "bob")
    assert len(session_rows(app, "bob")) == 2
    response = post_form(admin, "/admin/users/bob/deactivate", {}, get_url="/admin/users/")
    assert response.status_code == 303
    bob_id = user(app, "bob").id
    assert user(app, "bob").deactivated_at is not None
    assert session_rows(app, "bob") == []
    assert revocations.events == [(bob_id, events.revoke_event(events.DEACTIVATED))]
    assert whoami(bob) is None and whoami(second_bob) is None  # both sessions ended, server side
    assert bob.get("/").headers["Location"].startswith("/login/")

    refused = login(bob, "bob")
    assert refused.status_code == 403
    assert field_error(text(refused), "login") == "This account has been deactivated. An admin can reactivate it."
    wrong = login(bob, "bob", "not the password")  # a wrong password says nothing about the account
    assert field_error(text(wrong), "login") == "Wrong username or password."

    page = text(admin.get("/admin/users/"))
    assert "Deactivated" in page and 'action="/admin/users/bob/reactivate"' in page
    assert post_form(admin, "/admin/users/bob/reactivate", {}, get_url="/admin/users/").status_code == 303
    assert user(app, "bob").is_active
    assert login(bob, "bob").status_code == 303 and whoami(bob) == "bob"


def test_an_admin_cannot_deactivate_themselves(app, admin, bob):
    response = post_form(admin, "/admin/users/root/deactivate", {}, get_url="/admin/users/")
    assert response.status_code == 400 and "You cannot deactivate your own account." in text(response)
    assert user(app, "root").is_active


def test_an_admin_may_deactivate_another_admin_who_is_then_out(app, admin, bob):
    app.test_cli_runner().invoke(args=["admin", "grant", "bob"])
    assert post_form(bob, "/admin/users/root/deactivate", {}, get_url="/admin/users/").status_code == 303
    assert not user(app, "root").is_active
    assert admin.get("/admin/users/").status_code == 302  # root's session is gone
    result = app.test_cli_runner().invoke(args=["admin", "revoke", "bob"])
    assert result.exit_code != 0 and "last admin" in result.output


def test_two_admins_deactivating_each_other_leave_one_admin(app, admin, bob, monkeypatch):
    """bob's request starts while root deactivates bob: under the row lock bob's request
    reads itself afresh, finds bob deactivated, and does nothing."""
    import webchat.admin.views as admin_views

    app.test_cli_runner().invoke(args=["admin", "grant", "bob"])
    token = csrf_token(text(bob.get("/admin/users/")))
    real = admin_views._user_or_404

    def meanwhile(username: str):
        target = real(username)
        with db.engine.begin() as connection:  # root's request, committed in between
            connection.execute(update(User).where(User.username == "bob").values(deactivated_at=utcnow()))
        return target

    monkeypatch.setattr(admin_views, "_user_or_404", meanwhile)
    assert bob.post("/admin/users/root/deactivate", data={"csrf_token": token}).status_code == 404
    assert user(app, "root").is_active and not user(app, "bob").is_active


STYLE = "<style>{{ deactivated_author_style() }}</style>"


def render_style(app, language: str = "en") -> tuple[str, int | None]:
    """The style block as a page renders it, and the SQL statements that cost (None
    when the app's statements are not counted)."""
    from webchat import querylog

    with app.test_request_context("/", headers={"Accept-Language": language}):
        with querylog.unit(app, "style") as tally:
            css = render_template_string(STYLE)
    return css, None if tally is None else len(tally.statements)


def test_deactivated_names_are_marked_in_css_in_the_readers_language(app, admin, bob, queries):
    bob_id = user(app, "bob").id
    assert render_style(app) == ("<style></style>", 0)  # read by the process's first request already
    post_form(admin, "/admin/users/bob/deactivate", {}, get_url="/admin/users/")
    css, statements = render_style(app)
    assert statements == 1, "a change is read again, once"
    assert f'.msg[data-author="{bob_id}"] .msg-author bdi::after' in css
    assert 'content: "\\000028deactivated\\000029"' in css
    chinese, statements = render_style(app, "zh-CN")
    assert statements == 0
    assert 'content: "\\00FF08已停用\\00FF09"' in chinese
    post_form(admin, "/admin/users/bob/reactivate", {}, get_url="/admin/users/")
    assert render_style(app) == ("<style></style>", 1)


def test_every_process_rereads_who_is_deactivated_after_a_change(app, admin, bob):
    """Two processes sharing Redis: a deactivation on one moves the other's marks."""
    from config import TestingConfig
    from webchat import create_app

    from . import services
    from .test_broker import delete_prefix, unique_prefix

    client = services.redis_or_skip()
    prefix = unique_prefix()
    shared = {"SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"], "REDIS_URL": services.REDIS_URL}
    one, two = (create_app(TestingConfig(), REDIS_KEY_PREFIX=prefix, **shared) for _ in range(2))
    try:
        for process in (one, two):
            process.test_client().get("/login/")  # each process's first request reads the list
            assert render_style(process)[0] == "<style></style>"
        root = one.test_client()
        login(root, "root")
        post_form(root, "/admin/users/bob/deactivate", {}, get_url="/admin/users/")
        assert f'data-author="{user(app, "bob").id}"' in render_style(two)[0]
    finally:
        for process in (one, two):
            process.extensions["webchat.broker"].close()
            with process.app_context():
                db.engine.dispose()
        delete_prefix(client, prefix)
        client.close()


ROOM_TEMPLATE = Path(__file__).resolve().parent.parent / "templates" / "rooms" / "room.html"


@pytest.mark.skipif(
    "deactivated_author_style()" not in ROOM_TEMPLATE.read_text(), reason="room.html does not call it yet"
)
def test_the_room_page_marks_deactivated_authors_and_leaves_messages_alone(app, admin, bob, queries):
    create_room(admin, "general")
    post_form(bob, "/room/general/", {"message": "hello"})
    before = articles(text(admin.get("/room/general/")))
    post_form(admin, "/admin/users/bob/deactivate", {}, get_url="/admin/users/")
    page = text(admin.get("/room/general/"))
    assert f'.msg[data-author="{user(app, "bob").id}"] .msg-author bdi::after' in page
    assert articles(page) == before  # the fragments are untouched
    # the mark costs no statement: the same budget as any kept room page
    queries.measure(ROOM_PAGE_CACHED, lambda: admin.get("/room/general/"), writes=False)


def test_css_strings_cannot_break_out_of_the_style_element():
    from webchat.admin.marks import css_string

    escaped = css_string('a"b\\c</style><script>\n')
    assert escaped.startswith('"') and escaped.endswith('"')
    inner = escaped[1:-1]
    assert '"' not in inner and "<" not in inner and "\n" not in inner and "/" not in inner
    assert inner.count("\\") == 8  # " \\ < / > < > and the newline
    assert css_string("已停用 x") == '"已停用 x"'


# --- sessions that end --------------------------------------------------------------------


def test_login_creates_a_server_side_session_and_the_cookie_names_it(app, client):
    signup(client, "alice")
    [row] = session_rows(app, "alice")
    with client.session_transaction() as sess:
        assert sess["sid"] == row.token
        assert sess.permanent
    assert len(row.token) >= 40
    assert row.user_agent and row.user_agent.startswith("Werkzeug")


def test_a_cookie_replayed_after_logout_is_logged_out(app, client, revocations):
    signup(client, "alice")
    stolen = copy_cookies(app, client)
    assert whoami(stolen) == "alice"
    with client.session_transaction() as sess:
        sid = sess["sid"]
    assert logout(client).status_code == 303
    assert session_rows(app) == []
    assert revocations.events == [(user(app, "alice").id, events.revoke_event(events.LOGGED_OUT, session=sid))]
    assert whoami(stolen) is None
    assert stolen.get("/").headers["Location"].startswith("/login/")


def test_the_remember_cookie_cannot_bring_a_session_back(app, client):
    from flask_login.utils import encode_cookie

    signup(client, "alice")
    alice_id = user(app, "alice").id
    assert "remember_token" not in {c.key for c in client._cookies.values()}  # never set
    logout(client)
    with app.test_request_context("/"):
        forged = encode_cookie(str(alice_id))  # as Flask-Login would sign one
    client.set_cookie("remember_token", forged)
    assert whoami(client) is None
    stranger = app.test_client()
    stranger.set_cookie("remember_token", forged)
    assert whoami(stranger) is None


def test_log_out_everywhere_ends_every_session(app, client, revocations):
    signup(client, "alice")
    elsewhere = app.test_client()
    login(elsewhere, "alice")
    assert len(session_rows(app, "alice")) == 2
    response = post_form(client, "/settings/logout-everywhere/", {}, get_url="/settings/")
    assert response.status_code == 303 and response.headers["Location"] == "/login/"
    assert "You have logged out everywhere." in text(client.get("/login/"))
    assert session_rows(app) == []
    assert revocations.events == [(user(app, "alice").id, events.revoke_event(events.LOGGED_OUT))]
    assert whoami(client) is None and whoami(elsewhere) is None


def test_a_password_change_ends_every_other_session(app, client, revocations):
    signup(client, "alice")
    elsewhere, third = app.test_client(), app.test_client()
    login(elsewhere, "alice")
    login(third, "alice")
    others = {row.token for row in session_rows(app)}
    with client.session_transaction() as sess:
        mine = sess["sid"]
    others.discard(mine)
    data = {"old_password": PASSWORD, "new_password": "battery staple", "confirm_password": "battery staple"}
    response = post_form(client, "/settings/password/", data, get_url="/settings/")
    assert response.status_code == 303
    assert "every other session is logged out" in text(client.get("/settings/"))
    assert whoami(client) == "alice"  # this session stays
    assert whoami(elsewhere) is None and whoami(third) is None
    assert [row.token for row in session_rows(app)] == [mine]
    alice_id = user(app, "alice").id
    assert sorted(e["session"] for _, e in revocations.events) == sorted(others)
    assert all(uid == alice_id and e["reason"] == events.LOGGED_OUT for uid, e in revocations.events)
    assert login(elsewhere, "alice", PASSWORD).status_code == 400
    assert login(elsewhere, "alice", "battery staple").status_code == 303


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"old_password": "wrong one", "new_password": "battery staple", "confirm_password": "battery staple"},
         "old_password", "That is not your current password."),
        ({"old_password": "", "new_password": "battery staple", "confirm_password": "battery staple"},
         "old_password", "Enter your current password."),
        ({"old_password": PASSWORD, "new_password": "short", "confirm_password": "short"},
         "new_password", "Use 8 to 128 characters."),
        ({"old_password": PASSWORD, "new_password": "battery staple", "confirm_password": "battery stapler"},
         "confirm_password", "The passwords do not match."),
    ],
)  # fmt: skip
def test_password_change_errors_are_next_to_their_inputs(app, client, data, field, message):
    signup(client, "alice")
    elsewhere = app.test_client()
    login(elsewhere, "alice")
    response = post_form(client, "/settings/password/", data, get_url="/settings/")
    assert response.status_code == 400
    assert field_error(text(response), field) == message
    assert PASSWORD not in text(response)
    assert whoami(elsewhere) == "alice"  # nothing changed
    assert len(session_rows(app)) == 2


def test_a_session_unused_for_session_days_ends(app, client):
    signup(client, "alice")
    with app.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(days=31)))
        db.session.commit()
    assert whoami(client) is None
    app.config["SESSION_DAYS"] = 40
    assert whoami(client) == "alice"


def test_reads_write_nothing_and_last_seen_moves_once_a_day(app, client, queries):
    signup(client, "alice")
    queries.measure(1, lambda: client.get("/settings/"), writes=False)  # the user, with the session
    two_days_ago = utcnow() - timedelta(days=2)
    with app.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=two_days_ago))
        db.session.commit()
    _, tally = queries.measure(2, lambda: client.get("/settings/"))
    assert tally.commits == 1 and tally.writes[0].lstrip().upper().startswith("UPDATE USER_SESSION")
    [row] = session_rows(app)
    assert row.last_seen_at > two_days_ago + timedelta(days=1)
    queries.measure(1, lambda: client.get("/settings/"), writes=False)


def test_the_cookie_is_sent_again_only_when_the_session_is_touched(app, client):
    """Not with every answer (re-signing it was a tenth of a page's cost), but when the
    row's last use moves, so that its expiry keeps following the session's."""
    signup(client, "alice")
    create_room(client, "general")
    for path in ("/", "/settings/", "/room/general/", "/mentions/"):
        assert "Set-Cookie" not in client.get(path).headers, path
    with app.app_context():
        db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(days=2)))
        db.session.commit()
    cookie = client.get("/settings/").headers["Set-Cookie"]
    stamp = re.search(r"Expires=([^;]+)", cookie).group(1)
    expires = datetime.strptime(stamp, "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    days = app.config["SESSION_DAYS"]
    assert abs(expires - datetime.now(UTC) - timedelta(days=days)) < timedelta(minutes=5)
    assert "Set-Cookie" not in client.get("/settings/").headers
    assert whoami(client) == "alice"


# --- throttling -----------------------------------------------------------------------------


@pytest.fixture
def hashes(monkeypatch):
    """Every password hash the login and settings pages compute."""
    import webchat.auth.views as views

    calls: list[str] = []
    real = views.check_password_hash
    monkeypatch.setattr(views, "check_password_hash", lambda h, p: calls.append(p) or real(h, p))
    return calls


def test_too_many_failures_for_an_account_get_429_without_hashing(app, client, hashes):
    app.config["LOGIN_MAX_FAILURES"] = 3
    signup(client, "alice")
    logout(client)
    for i in range(3):
        assert login(client, "alice", f"wrong {i}").status_code == 400
    assert len(hashes) == 3
    refused = login(client, "alice", PASSWORD)  # even the right password: not looked at
    assert refused.status_code == 429
    assert "Too many attempts. Try again in 15 minutes." in text(refused)
    assert 800 < int(refused.headers["Retry-After"]) <= 900
    assert len(hashes) == 3, "a throttled attempt computed a password hash"
    assert whoami(client) is None
    # Another address is refused too for this account...
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert login(elsewhere, "alice", PASSWORD).status_code == 429
    # ...but may log in to another one.
    signup(app.test_client(), "bob")
    assert login(elsewhere, "bob", PASSWORD).status_code == 303
    assert len(hashes) == 4


def test_too_many_failures_from_one_address_get_429_for_any_name(app, client, hashes):
    app.config["LOGIN_MAX_FAILURES"] = 3
    signup(client, "alice")
    logout(client)
    for name in ("nobody", "somebody", "anybody"):  # names that do not exist count alike
        assert login(client, name, "guess").status_code == 400
    refused = login(client, "alice", PASSWORD)
    assert refused.status_code == 429 and len(hashes) == 3
    other_address = app.test_client()
    other_address.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert login(other_address, "alice", PASSWORD).status_code == 303


def test_a_successful_login_clears_the_accounts_failures(app, client):
    app.config["LOGIN_MAX_FAILURES"] = 3
    signup(client, "alice")
    logout(client)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for _ in range(2):
        login(elsewhere, "alice", "wrong")
    assert login(client, "alice", PASSWORD).status_code == 303
    logout(client)
    for _ in range(2):  # two more from a third address: the account's count started over
        third = app.test_client()
        third.environ_base["REMOTE_ADDR"] = "192.0.2.1"
        login(third, "alice", "wrong")
    assert login(client, "alice", PASSWORD).status_code == 303


def test_the_wait_is_said_in_minutes_in_chinese_too(app, client):
    app.config["LOGIN_MAX_FAILURES"] = 1
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-CN"
    login(client, "alice", "wrong")
    refused = login(client, "alice", "wrong")
    assert refused.status_code == 429 and "尝试次数过多，请 15 分钟后再试。" in text(refused)
    pages = Pages()
    pages.add("429", text(refused))
    pages.assert_chinese()


def test_a_wrong_current_password_counts_as_a_failed_login(app, client, hashes):
    app.config["LOGIN_MAX_FAILURES"] = 2
    signup(client, "alice")
    data = {"old_password": "wrong one", "new_password": "battery staple", "confirm_password": "battery staple"}
    for _ in range(2):
        assert post_form(client, "/settings/password/", data, get_url="/settings/").status_code == 400
    refused = post_form(client, "/settings/password/", {**data, "old_password": PASSWORD}, get_url="/settings/")
    assert refused.status_code == 429 and len(hashes) == 2


def test_signups_per_address_are_throttled(app):
    app.config["SIGNUP_MAX_PER_HOUR"] = 2
    for name in ("one", "two"):
        signup(app.test_client(), name)
    third = app.test_client()
    data = {"username": "three", "password": PASSWORD, "confirm": PASSWORD}
    refused = post_form(third, "/signup/", data)
    assert refused.status_code == 429 and "Try again in 60 minutes." in text(refused)
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    assert post_form(elsewhere, "/signup/", data).status_code == 303


def test_the_client_address_comes_from_the_trusted_proxy(app):
    from config import TestingConfig
    from webchat import create_app

    proxied = create_app(TestingConfig(), SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"], PROXY_COUNT=1)
    proxied.config["LOGIN_MAX_FAILURES"] = 1
    try:
        one, two = proxied.test_client(), proxied.test_client()
        one.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.1"
        two.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.2"
        assert login(one, "ghost1", "guess").status_code == 400
        assert login(one, "ghost2", "guess").status_code == 429
        assert login(two, "ghost3", "guess").status_code == 400  # another client behind the same proxy
    finally:
        proxied.extensions["webchat.broker"].close()
        with proxied.app_context():
            db.engine.dispose()


# --- in Chinese -------------------------------------------------------------------------------


def test_the_new_pages_have_no_english_word_for_a_chinese_reader(app):
    error_routes(app)
    pages = Pages()
    root = browser(app, "zh-CN,zh;q=0.9")
    signup(root, "管理员")
    other = browser(app, "zh-CN")
    signup(other, "王小明")
    pages.check("settings", root.get("/settings/"))
    bad = {"old_password": "错", "new_password": "短", "confirm_password": "不同"}
    pages.check("settings, password errors", post_form(root, "/settings/password/", bad, get_url="/settings/"), 400)
    pages.check("accounts", root.get("/admin/users/"))
    pages.check("invites, none", root.get("/invites/"))
    bad = {"expires": "永远", "uses": "很多"}
    pages.check("invites, errors", post_form(root, "/invites/", bad), 400)
    post_form(root, "/invites/", {"expires": "1d", "uses": "2"})
    post_form(root, "/invites/", {"expires": "never", "uses": ""})
    page = pages.check("invites, listed", root.get("/invites/", follow_redirects=True))
    code = re.search(r"/join/([^/]+)/", page).group(1)
    revoke = re.search(r'action="(/invites/\d+/revoke)"', page).group(1)
    pages.check("invite revoked", post_form(root, revoke, {}, get_url="/invites/", follow=True))
    for mode in ("invite", "closed"):
        app.config["SIGNUP"] = mode
        pages.check(f"invites, {mode}", root.get("/invites/"))
    app.config["SIGNUP"] = "open"
    pages.check("accounts, oneself", post_form(root, "/admin/users/管理员/deactivate", {}, get_url="/"), 400)
    done = post_form(root, "/admin/users/王小明/deactivate", {}, get_url="/", follow=True)
    assert "已停用" in pages.check("accounts, deactivated", done)
    pages.check("reactivated", post_form(root, "/admin/users/王小明/reactivate", {}, get_url="/", follow=True))

    visitor = browser(app, "zh-CN")
    pages.check("join, used or revoked", visitor.get(f"/join/{code}/"), 410)
    with app.app_context():
        fresh = db.session.execute(select(Invite.code).where(Invite.revoked_at.is_(None))).scalars().first()
    pages.check("join", visitor.get(f"/join/{fresh}/"))
    app.config["SIGNUP"] = "invite"
    pages.check("signup, by invitation", visitor.get("/signup/"), 403)
    app.config["SIGNUP"] = "closed"
    pages.check("signup, closed", visitor.get("/signup/"), 403)
    app.config["SIGNUP"] = "open"
    post_form(root, "/admin/users/王小明/deactivate", {}, get_url="/")
    pages.check("login, deactivated", login(visitor, "王小明", PASSWORD), 403)
    pages.check("logged out everywhere", post_form(root, "/settings/logout-everywhere/", {}, get_url="/", follow=True))
    pages.assert_chinese()
