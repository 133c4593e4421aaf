"""Security over HTTP: CSRF on every form, escaping, friendly error pages, response headers."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from flask import abort
from sqlalchemy import select

import config
from webchat import create_app
from webchat.extensions import db
from webchat.models import Message, Room, User

from .conftest import create_room, csrf_token, input_value, post_form, signed_up, signup

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


def text(response) -> str:
    return response.get_data(as_text=True)


def count(app, model) -> int:
    with app.app_context():
        return db.session.query(model).count()


def assert_friendly(response, code: int, words: str) -> str:
    """An error page of ours: the code, a plain explanation and a way back, no traceback."""
    assert response.status_code == code
    assert response.mimetype == "text/html"
    page = text(response)
    assert f'<p class="error-code">{code}</p>' in page
    assert words in page
    assert 'href="/"' in page
    assert "Traceback" not in page
    return page


@pytest.fixture
def alice(client):
    signup(client, "alice")
    create_room(client, "general")
    return client


# --- CSRF -----------------------------------------------------------------------------

CSRF_TEXT = "Your form expired or was sent from another site."


@pytest.mark.parametrize("token", [None, "", "forged-token"])
@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/signup/", {"username": "mallory", "password": "correct horse", "confirm": "correct horse"}),
        ("/login/", {"username": "mallory", "password": "correct horse"}),
    ],
)
def test_account_forms_need_a_csrf_token(app, client, url, data, token):
    client.get(url)  # a session exists; the token is still missing or wrong
    if token is not None:
        data = {**data, "csrf_token": token}
    assert_friendly(client.post(url, data=data), 400, CSRF_TEXT)
    assert count(app, User) == 0


@pytest.mark.parametrize("case", ["missing", "forged", "other session"])
@pytest.mark.parametrize(
    ("url", "data", "model", "before"),
    [
        ("/create/", {"name": "new room"}, Room, 1),
        ("/room/general/", {"message": "hello"}, Message, 1),
    ],
)
def test_logged_in_forms_need_a_csrf_token(app, alice, url, data, model, before, case):
    if case == "forged":
        data = {**data, "csrf_token": "forged-token"}
    elif case == "other session":  # a valid token, but for someone else's session
        data = {**data, "csrf_token": csrf_token(text(app.test_client().get("/login/")))}
    assert_friendly(alice.post(url, data=data), 400, CSRF_TEXT)
    assert count(app, model) == before
    # with the page's own token the same form works
    assert post_form(alice, url, {k: v for k, v in data.items() if k != "csrf_token"}).status_code == 303


def test_every_form_carries_a_csrf_token(alice):
    for url in ("/create/", "/room/general/", "/"):
        page = text(alice.get(url))
        forms = re.findall(r"<form\b.*?</form>", page, re.S)
        assert forms
        for form in forms:
            if 'method="post"' in form:
                assert 'name="csrf_token"' in form, form
    alice.post("/logout/", data={"csrf_token": csrf_token(text(alice.get("/")))})
    for url in ("/login/", "/signup/"):
        assert 'name="csrf_token"' in text(alice.get(url))


def one_byte_changed(signed: str) -> str:
    """A character of the signed payload changed (not the last one of the signature,
    whose low bits base64 ignores: changing it can leave the same bytes)."""
    i = next(i for i in range(len(signed) // 3, len(signed)) if signed[i] != ".")
    return signed[:i] + ("A" if signed[i] != "A" else "B") + signed[i + 1 :]


def test_a_remembered_csrf_token_still_needs_its_own_session(app, alice):
    """A token whose signature was checked once is remembered (webchat/csrf.py), but
    only ever for the session it signs: bob's accepted token is refused in alice's."""
    bob = signed_up(app, "bob")["bob"]
    bob_token = csrf_token(text(bob.get("/room/general/")))
    assert bob.post("/room/general/", data={"message": "from bob", "csrf_token": bob_token}).status_code == 303
    refused = alice.post("/room/general/", data={"message": "as bob", "csrf_token": bob_token})
    assert_friendly(refused, 400, CSRF_TEXT)
    assert bob.post("/room/general/", data={"message": "again", "csrf_token": bob_token}).status_code == 303
    with app.app_context():
        assert db.session.scalars(select(Message.body).where(Message.kind == Message.USER)).all() == [
            "from bob",
            "again",
        ]


def test_a_remembered_csrf_token_changed_by_a_byte_is_refused(app, alice):
    token = csrf_token(text(alice.get("/room/general/")))
    assert alice.post("/room/general/", data={"message": "one", "csrf_token": token}).status_code == 303
    changed = one_byte_changed(token)
    assert_friendly(alice.post("/room/general/", data={"message": "two", "csrf_token": changed}), 400, CSRF_TEXT)
    assert count(app, Message) == 2  # "created" and "one"


def test_a_remembered_csrf_token_still_needs_a_same_site_referrer_over_https(app, client):
    https = "https://localhost"
    page = client.get("/signup/", base_url=https)
    data = {"username": "alice", "password": "correct horse", "confirm": "correct horse"}
    token = csrf_token(text(page))
    signed = client.post("/signup/", base_url=https, data={**data, "csrf_token": token}, headers={"Referer": https})
    assert signed.status_code == 303
    token = csrf_token(text(client.get("/create/", base_url=https)))
    for n, (referrer, status) in enumerate([(f"{https}/create/", 303), ("https://evil.example/", 400), (None, 400)]):
        headers = {"Referer": referrer} if referrer else {}
        answer = client.post(
            "/create/", base_url=https, data={"name": f"room {n}", "csrf_token": token}, headers=headers
        )
        assert answer.status_code == status, referrer
        if status == 400:
            assert CSRF_TEXT in text(answer)
    assert count(app, Room) == 1


def test_pages_carry_one_signed_token_per_session_signed_once(app, alice, monkeypatch):
    """The signed CSRF token of a session is made once (webchat/csrf.py): a page loaded
    a minute later carries the same one (Flask-WTF would sign it again, with a new
    timestamp), it is accepted, and another session's token is its own."""
    import time

    first = csrf_token(text(alice.get("/room/general/")))
    later = time.time() + 60
    monkeypatch.setattr(time, "time", lambda: later)
    assert csrf_token(text(alice.get("/room/general/"))) == first
    assert alice.post("/room/general/", data={"message": "signed once", "csrf_token": first}).status_code == 303
    bob = signed_up(app, "bob")["bob"]
    assert csrf_token(text(bob.get("/create/"))) != first


def test_a_session_cookie_changed_by_a_byte_is_refused_after_the_original_was_accepted(app, alice):
    """Each cookie's signature is checked once (webchat/auth/cookie.py); any other text,
    however close, is checked in full."""
    assert alice.get("/room/general/").status_code == 200
    cookie = alice.get_cookie("session")
    value = cookie.value
    changed = one_byte_changed(value)
    alice.set_cookie("session", changed, domain=cookie.domain)
    assert alice.get("/room/general/").status_code == 302  # to the login page
    alice.set_cookie("session", value, domain=cookie.domain)
    assert alice.get("/room/general/").status_code == 200


def test_a_remembered_session_cookie_still_expires(app, alice, monkeypatch):
    import time

    assert alice.get("/room/general/").status_code == 200  # the cookie is now remembered
    later = time.time() + app.permanent_session_lifetime.total_seconds() + 60
    monkeypatch.setattr(time, "time", lambda: later)
    assert alice.get("/room/general/").status_code == 302


def test_another_browser_string_keeps_the_session_and_its_cookie(alice):
    """Flask-Login's session protection is off (webchat/auth/__init__.py): a browser that
    updates itself is still signed in, and its cookie is not rewritten for it."""
    for agent in ("Browser/1", "Browser/2"):  # neither is the one alice signed up with
        answer = alice.get("/room/general/", headers={"User-Agent": agent})
        assert answer.status_code == 200
        assert "Set-Cookie" not in answer.headers


def test_flashed_messages_are_not_shared_through_a_remembered_cookie(app, client):
    """Flask keeps flashed messages in a list inside the session: a cookie holding one
    is never remembered, so a message is shown once, not again on the next page."""
    login_page = client.get("/room/general/", follow_redirects=True)
    assert "Please log in to continue." in text(login_page)
    assert "Please log in to continue." not in text(client.get("/login/"))


# --- escaping -------------------------------------------------------------------------


def test_script_in_a_message_is_escaped_on_the_room_page_and_the_list(app, alice):
    assert post_form(alice, "/room/general/", {"message": XSS}).status_code == 303
    for url in ("/room/general/", "/"):
        page = text(alice.get(url))
        assert ESCAPED in page
        assert XSS not in page


def test_markup_in_a_message_stays_text_even_next_to_a_link(app, alice):
    evil = '"><img src=x onerror=alert(1)> https://example.com/?q="><b>x</b> <svg/onload=alert(2)>'
    assert post_form(alice, "/room/general/", {"message": evil}).status_code == 303
    for url in ("/room/general/", "/"):
        page = text(alice.get(url))
        assert "<img src=x" not in page
        assert "<svg" not in page
        assert "<b>x</b>" not in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_refused_message_is_kept_escaped(alice):
    response = post_form(alice, "/room/general/", {"message": XSS + "x" * 4000})
    assert response.status_code == 400
    page = text(response)
    assert XSS not in page
    assert input_value(page, "message") == XSS + "x" * 4000


def test_a_refused_room_name_is_kept_escaped(alice):
    response = post_form(alice, "/create/", {"name": XSS})
    assert response.status_code == 400
    page = text(response)
    assert XSS not in page
    assert input_value(page, "name") == XSS


def test_script_in_a_room_name_is_escaped_wherever_it_is_shown(app, alice):
    """The form refuses < and >, but a name stored otherwise must still be harmless."""
    name = "<script>alert(1)"
    with app.app_context():
        owner = db.session.execute(select(User).filter_by(username="alice")).scalar_one()
        db.session.add(Room(name=name, name_key=name.casefold(), owner=owner))
        db.session.commit()
    url = f"/room/{quote(name, safe='')}/"
    room_page = alice.get(url)
    assert room_page.status_code == 200
    assert post_form(alice, url, {"message": "hi"}).status_code == 303
    for page in (text(room_page), text(alice.get(url)), text(alice.get("/"))):
        assert "<script>alert" not in page
        assert "&lt;script&gt;alert(1)" in page


# --- friendly error pages -------------------------------------------------------------


def test_400_page(alice):
    assert_friendly(alice.get("/room/general/?before=abc"), 400, "Bad request")


def test_403_page(app, client):
    app.add_url_rule("/forbidden-test/", "forbidden_test", lambda: abort(403))
    signup(client)
    assert_friendly(client.get("/forbidden-test/"), 403, "You are not allowed to do that.")


def test_404_pages(alice):
    assert_friendly(alice.get("/room/nowhere/"), 404, "Not found")
    assert_friendly(alice.get("/no/such/page"), 404, "Not found")
    assert_friendly(alice.get("/static/missing.css"), 404, "Not found")


def test_405_page(alice):
    response = alice.delete("/room/general/")
    assert_friendly(response, 405, "That action is not available here.")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_500_page(app, client):
    def boom():
        raise RuntimeError("secret internals")

    app.add_url_rule("/boom-test/", "boom_test", boom)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: handled, not raised into the test
    signup(client)
    page = assert_friendly(client.get("/boom-test/"), 500, "Something went wrong")
    assert "secret internals" not in page
    assert "RuntimeError" not in page


def test_database_down_is_a_friendly_503_even_for_a_logged_in_reader(app, client, tmp_path):
    signup(client)
    broken = create_app(
        config.TestingConfig(),
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'no-tables.sqlite3'}",
        PROPAGATE_EXCEPTIONS=False,
    )
    reader = broken.test_client()
    reader.set_cookie("session", client.get_cookie("session").value)  # the same signed-in session
    page = assert_friendly(reader.get("/"), 503, "The database is not answering.")
    assert "no such table" not in page
    visitor = broken.test_client()
    page = text(visitor.get("/login/"))
    data = {"username": "alice", "password": "correct horse", "csrf_token": csrf_token(page)}
    assert_friendly(visitor.post("/login/", data=data), 503, "The database is not answering.")
    with broken.app_context():
        db.engine.dispose()


# --- headers --------------------------------------------------------------------------


def csp(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def responses(app, alice):
    anonymous = app.test_client()
    return {
        "room": alice.get("/room/general/"),
        "list": alice.get("/"),
        "create": alice.get("/create/"),
        "login": anonymous.get("/login/"),
        "404": alice.get("/room/nowhere/"),
        "400 csrf": alice.post("/create/", data={"name": "x"}),
        "redirect": anonymous.get("/"),
        "static": anonymous.get("/static/css/app.css"),
    }


def test_every_response_has_a_strict_csp(app, alice):
    for what, response in responses(app, alice).items():
        policy = csp(response)
        assert policy["default-src"] == ["'self'"], what
        assert policy["script-src"] == ["'self'"], what  # no 'unsafe-inline', no 'unsafe-eval', no hosts
        assert "'unsafe-inline'" not in policy["style-src"], what
        assert policy["object-src"] == ["'none'"], what
        assert policy["frame-ancestors"] == ["'none'"], what
        assert policy["base-uri"] == ["'self'"], what
        assert policy["form-action"] == ["'self'"], what


def test_hardening_headers_on_every_response(app, alice):
    for what, response in responses(app, alice).items():
        assert response.headers["X-Content-Type-Options"] == "nosniff", what
        assert response.headers["Referrer-Policy"] in {"same-origin", "strict-origin-when-cross-origin", "no-referrer"}
        assert response.headers["X-Frame-Options"] == "DENY", what


def test_pages_have_no_inline_script_and_only_nonced_styles(app, alice):
    for what, response in responses(app, alice).items():
        if response.mimetype != "text/html" or response.status_code == 302:
            continue
        page = text(response)
        for tag in re.findall(r"<script\b[^>]*>", page):
            assert re.search(r'\ssrc="/static/', tag), (what, tag)
        assert not re.search(r"<script\b[^>]*>[^<]+</script>", page), what
        assert not re.search(r"\son[a-z]+\s*=", page), what  # no inline event handlers
        assert not re.search(r"\shx-on[:-]", page), what  # would need 'unsafe-eval'
        assert not re.search(r'<[^>]+\sstyle="', page), what  # inline style attributes are blocked
        styles = re.findall(r"<style\b[^>]*>", page)
        if styles:
            [nonce_source] = [s for s in csp(response)["style-src"] if s.startswith("'nonce-")]
            for tag in styles:
                assert f'nonce="{nonce_source[7:-1]}"' in tag, (what, tag)


def test_the_style_nonce_is_new_for_every_response(alice):
    nonces = {re.search(r'<style nonce="([^"]+)"', text(alice.get("/room/general/"))).group(1) for _ in range(3)}
    assert len(nonces) == 3
