"""Accounts over HTTP: /signup/, /login/, /logout/, the login wall and `next`."""

from __future__ import annotations

import html
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from werkzeug.security import check_password_hash

from webchat.extensions import db
from webchat.models import User

from .conftest import create_room, csrf_token, field_error, input_value, login, logout, post_form, signup

PASSWORD = "correct horse"  # noqa: S105


def text(response) -> str:
    return response.get_data(as_text=True)


def signup_form(client, username="alice", password=PASSWORD, confirm=None, next_url=None):
    url = "/signup/" if next_url is None else f"/signup/?next={next_url}"
    data = {"username": username, "password": password, "confirm": password if confirm is None else confirm}
    return post_form(client, url, data)


def whoami(client) -> str | None:
    """The logged-in user's name from the top bar, or None when logged out."""
    response = client.get("/")
    if response.status_code != 200:
        return None
    page = text(response)
    start = page.find('class="whoami">')
    return page[start + len('class="whoami">') : page.index("<", start + 15)] if start >= 0 else None


def users(app) -> list[User]:
    with app.app_context():
        found = db.session.query(User).order_by(User.id).all()
        db.session.expunge_all()
        return found


# --- sign up --------------------------------------------------------------------------


def test_signup_creates_the_account_and_logs_in(app, client):
    response = signup_form(client, "alice")
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert whoami(client) == "alice"
    [user] = users(app)
    assert user.username == "alice"


def test_password_is_stored_hashed(app, client):
    signup(client, "alice", PASSWORD)
    [user] = users(app)
    assert PASSWORD not in user.password_hash
    assert user.password_hash.split(":")[0] in {"scrypt", "pbkdf2"}
    assert check_password_hash(user.password_hash, PASSWORD)
    assert not check_password_hash(user.password_hash, PASSWORD.upper())


@pytest.mark.parametrize("username", ["abc", "a" * 32, "ok_name.1-2", "A.B-C_D", "李小龙", "Zoë_99"])
def test_valid_usernames_are_accepted(app, client, username):
    assert signup_form(client, username).status_code == 303
    assert [u.username for u in users(app)] == [username]


@pytest.mark.parametrize(
    "username",
    ["ab", "a" * 33, "bad name", "a@b.c", "a/b/c", "<b>bold</b>", "tab\there", "semi;colon", "emoji😀x", "plus+one"],
)
def test_invalid_usernames_are_refused_next_to_the_field(app, client, username):
    response = signup_form(client, username)
    assert response.status_code == 400
    page = text(response)
    assert field_error(page, "username") == "Use 3 to 32 letters, digits, '_', '.' or '-'."
    assert input_value(page, "username") == username  # what they typed is kept
    assert PASSWORD not in page
    assert users(app) == []


def test_username_is_trimmed(app, client):
    assert signup_form(client, "  alice  ").status_code == 303
    assert [u.username for u in users(app)] == ["alice"]


def test_username_whose_casefolded_form_is_too_long_is_refused(app, client):
    # 'ß' folds to 'ss': 17 of them fold to 34 characters, more than the key column holds
    response = signup_form(client, "ß" * 17)
    assert response.status_code == 400
    assert "too long" in field_error(text(response), "username")
    assert users(app) == []


def test_usernames_are_unique_ignoring_case(app, client):
    signup(client, "alice")
    other = app.test_client()
    for taken in ("alice", "ALICE", "Alice"):
        response = signup_form(other, taken)
        assert response.status_code == 400
        page = text(response)
        assert field_error(page, "username") == "That username is taken."
        assert input_value(page, "username") == taken
    assert len(users(app)) == 1


@pytest.mark.parametrize("password", ["", "1234567", "short"])
def test_short_password_is_refused_next_to_the_field(app, client, password):
    response = signup_form(client, "alice", password=password)
    assert response.status_code == 400
    page = text(response)
    expected = "Choose a password." if password == "" else "Use 8 to 128 characters."
    assert field_error(page, "password") == expected
    assert input_value(page, "username") == "alice"
    if password:
        assert f'value="{password}"' not in page
    assert users(app) == []


def test_eight_character_password_is_enough(app, client):
    assert signup_form(client, "alice", password="12345678").status_code == 303  # noqa: S106
    assert len(users(app)) == 1


def test_confirm_must_match(app, client):
    response = signup_form(client, "alice", password=PASSWORD, confirm="correct horsf")
    assert response.status_code == 400
    page = text(response)
    assert field_error(page, "confirm") == "The passwords do not match."
    assert field_error(page, "password") is None
    assert field_error(page, "username") is None
    assert input_value(page, "username") == "alice"
    assert PASSWORD not in page and "correct horsf" not in page
    assert input_value(page, "password") in (None, "")
    assert input_value(page, "confirm") in (None, "")
    assert users(app) == []


def test_every_blank_field_gets_its_own_error(client):
    response = post_form(client, "/signup/", {"username": "", "password": "", "confirm": ""})
    assert response.status_code == 400
    page = text(response)
    assert field_error(page, "username") == "Choose a username."
    assert field_error(page, "password") == "Choose a password."
    assert field_error(page, "confirm") == "Type the password again."
    # the input points at its error for screen readers
    assert 'aria-describedby="username-error"' in page
    assert 'aria-invalid="true"' in page


# --- log in ---------------------------------------------------------------------------


def test_login_with_the_right_password(client):
    signup(client, "Alice")
    logout(client)
    assert whoami(client) is None
    response = login(client, "alice", PASSWORD)  # any letter case
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert whoami(client) == "Alice"


def test_login_error_is_the_same_for_unknown_user_and_wrong_password(app, client):
    signup(client, "alice")
    logout(client)
    wrong_password = login(client, "alice", "not the password")
    unknown_user = login(client, "nobody", "not the password")
    assert wrong_password.status_code == unknown_user.status_code == 400
    pages = text(wrong_password), text(unknown_user)
    errors = [field_error(p, "login") for p in pages]
    assert errors[0] == errors[1] == "Wrong username or password."
    # the error is generic: the fields themselves carry none
    for p in pages:
        assert field_error(p, "username") is None and field_error(p, "password") is None
        assert "not the password" not in p
    assert input_value(pages[0], "username") == "alice"
    assert input_value(pages[1], "username") == "nobody"
    # apart from the name typed back and the token, the pages are identical
    a = pages[0].replace('value="alice"', 'value="X"').replace(csrf_token(pages[0]), "T")
    b = pages[1].replace('value="nobody"', 'value="X"').replace(csrf_token(pages[1]), "T")
    assert a == b
    assert whoami(client) is None


def test_unknown_user_costs_a_password_check_too(client, monkeypatch):
    """Answering faster for unknown names would tell which names exist."""
    import webchat.auth.views as views

    calls = []
    real = views.check_password_hash
    monkeypatch.setattr(views, "check_password_hash", lambda h, p: calls.append(p) or real(h, p))
    login(client, "nobody", "whatever1")
    assert calls == ["whatever1"]


def test_login_blank_fields_show_errors_next_to_them(client):
    response = post_form(client, "/login/", {"username": "", "password": ""})
    assert response.status_code == 400
    page = text(response)
    assert field_error(page, "username") == "Enter your username."
    assert field_error(page, "password") == "Enter your password."


# --- next -----------------------------------------------------------------------------


OFFSITE = [
    "//evil.com",
    "https://evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "http:evil.com",
    "evil.com",
    "///evil.com",
    "/\t/evil.com",
    "javascript:alert(1)",
]


def test_login_refuses_a_next_that_leaves_the_site(client):
    signup(client)
    for target in OFFSITE:
        logout(client)
        response = login(client, next_url=target)
        assert response.status_code == 303, target
        assert response.headers["Location"] == "/", target


@pytest.mark.parametrize("target", ["/create/", "/room/general/?before=5"])
def test_login_follows_a_local_next(client, target):
    signup(client)
    logout(client)
    response = login(client, next_url=target)
    assert response.status_code == 303
    assert response.headers["Location"] == target


def test_signup_follows_a_local_next_and_refuses_others(app, client):
    assert signup_form(client, "alice", next_url="/create/").headers["Location"] == "/create/"
    other = app.test_client()
    assert signup_form(other, "bob_b", next_url="//evil.com").headers["Location"] == "/"


def form_action(page: str) -> str:
    start = page.index('<form method="post" action="', page.index("<main")) + len('<form method="post" action="')
    return html.unescape(page[start : page.index('"', start)])


def test_the_login_page_carries_next_into_its_form(client):
    action = urlsplit(form_action(text(client.get("/login/?next=/create/"))))
    assert action.path == "/login/"
    assert parse_qs(action.query) == {"next": ["/create/"]}
    page = text(client.get("/login/?next=//evil.com"))
    assert "evil.com" not in page
    assert form_action(page) == "/login/"


# --- the login wall -------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/create/", "/room/general/", "/room/%E8%81%8A%E5%A4%A9%E5%AE%A4/", "/room/general/?before=10"],
)
def test_pages_redirect_to_login_with_next(client, path):
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login/"
    assert parse_qs(location.query)["next"] == [unquote(path)]


def test_after_login_the_user_lands_on_the_page_they_asked_for(client):
    signup(client)
    create_room(client, "聊天室")
    logout(client)
    for path in ("/create/", "/room/%E8%81%8A%E5%A4%A9%E5%AE%A4/"):
        login_url = client.get(path).headers["Location"]
        page = text(client.get(login_url))
        assert "Please log in to continue." in page
        data = {"username": "alice", "password": PASSWORD, "csrf_token": csrf_token(page)}
        response = client.post(form_action(page), data=data)
        assert response.status_code == 303
        assert response.headers["Location"] == path
        assert client.get(path).status_code == 200
        logout(client)


def test_posting_while_logged_out_redirects_to_login(client):
    token = csrf_token(text(client.get("/login/")))
    response = client.post("/create/", data={"name": "general", "csrf_token": token})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login/"


@pytest.mark.parametrize("path", ["/signup/", "/login/", "/static/css/app.css"])
def test_account_pages_and_static_files_are_public(client, path):
    assert client.get(path).status_code == 200


def test_logged_in_user_is_sent_on_from_login_and_signup(client):
    signup(client)
    assert client.get("/login/").headers["Location"] == "/"
    assert client.get("/login/?next=/create/").headers["Location"] == "/create/"
    assert client.get("/signup/").headers["Location"] == "/"
    assert client.get("/signup/?next=/create/").headers["Location"] == "/create/"
    assert client.get("/signup/?next=//evil.com").headers["Location"] == "/"


# --- log out --------------------------------------------------------------------------


def test_logout_is_a_post_with_csrf(client):
    signup(client)
    page = text(client.get("/"))
    assert '<form method="post" action="/logout/"' in page
    response = client.post("/logout/", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 303
    assert response.headers["Location"] == "/login/"
    assert whoami(client) is None
    assert client.get("/").status_code == 302


def test_logout_by_get_is_405(client):
    signup(client)
    response = client.get("/logout/")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    assert "Not allowed" in text(response)
    assert whoami(client) == "alice"


@pytest.mark.parametrize("token", [None, "forged"])
def test_logout_without_a_valid_token_is_a_400_page(client, token):
    signup(client)
    response = client.post("/logout/", data={} if token is None else {"csrf_token": token})
    assert response.status_code == 400
    page = text(response)
    assert "Your form expired or was sent from another site." in page
    assert '<p class="error-code">400</p>' in page
    assert whoami(client) == "alice"
