"""Sessions that end, over real servers and real sockets: deactivation, logout, a
replayed cookie, "log out everywhere" and a password change close the sockets they
should (1008, with a status saying why) and refuse them on reconnect; across two
servers sharing Redis too."""

from __future__ import annotations

import copy
import time

import pytest
import sqlalchemy as sa

from . import services
from .liveserver import Browser, Socket
from .test_live import engine, uniq  # noqa: F401 - engine: a fixture, used by name
from .test_scaleout import redis_prefix, start_server  # noqa: F401 - a fixture, used by name

pytestmark = pytest.mark.live

PASSWORD = "correct horse"  # noqa: S105


def make_admin(database, name: str) -> None:
    with database.begin() as c:
        c.execute(sa.text('UPDATE "user" SET is_admin = true WHERE username = :n'), {"n": name})


def log_in(browser: Browser, name: str, password: str = PASSWORD) -> tuple[int, str]:
    return browser.post("/login/", {"username": name, "password": password})


def logged_in(browser: Browser) -> bool:
    status, page = browser.get("/settings/")  # a logged-out browser is redirected to the login page
    return status == 200 and "Log out everywhere" in page


def copy_of(browser: Browser) -> Browser:
    """Another client replaying the same cookies."""
    clone = Browser(browser.server)
    for cookie in browser.jar:
        clone.jar.set_cookie(copy.copy(cookie))
    return clone


def live_socket(browser: Browser, room: str) -> Socket:
    sock = browser.socket(room)
    sock.wait_for('id="log-live"')
    return sock


def closed_because(sock: Socket, words: str, timeout: float = 5.0) -> None:
    """The socket says why (a refused status naming the reason) and closes with 1008."""
    status = sock.wait_for(f"status-refused.*{words}", timeout)
    assert 'hx-swap-oob="true"' in status
    assert sock.wait_closed(timeout) == 1008


def still_live(sock: Socket) -> None:
    sock.wait_for("status-live", timeout=3)  # heartbeats keep coming (every second here)


def refused_on_connect(browser: Browser, room: str) -> None:
    sock = browser.socket(room)
    closed_because(sock, "logged out")


@pytest.fixture
def room_with_bob(server, engine):  # noqa: F811 - the fixture imported above
    """An admin's room that bob has joined."""
    room, root_name, bob_name = uniq("room"), uniq("root"), uniq("bob")
    root = Browser(server).signup(root_name).create_room(room)
    make_admin(engine, root_name)
    bob = Browser(server).signup(bob_name)
    bob.enter(room)
    return room, root, bob, bob_name


def test_deactivation_closes_the_socket_and_refuses_login_and_reconnects(room_with_bob):
    room, root, bob, bob_name = room_with_bob
    sock = live_socket(bob, room)
    status, page = root.post(f"/admin/users/{bob_name}/deactivate", {}, form_path="/admin/users/")
    assert status == 200 and "deactivated and logged out everywhere" in page
    closed_because(sock, "Your account has been deactivated.")

    refused_on_connect(bob, room)
    assert not logged_in(bob)
    status, page = log_in(bob, bob_name)
    assert status == 403 and "This account has been deactivated." in page
    refused_on_connect(bob, room)

    root.post(f"/admin/users/{bob_name}/reactivate", {}, form_path="/admin/users/")
    assert log_in(bob, bob_name)[0] == 200 and logged_in(bob)
    live_socket(bob, room).close()


def test_logout_closes_that_sessions_sockets_and_its_replayed_cookie_is_refused(server):
    room, name = uniq("room"), uniq("alice")
    here = Browser(server).signup(name).create_room(room)
    there = Browser(server)
    log_in(there, name)  # another session of the same person
    stolen = copy_of(here)
    mine, theirs = live_socket(here, room), live_socket(there, room)

    status, page = here.post("/logout/", {}, form_path="/")
    assert status == 200 and "You have logged out." in page
    closed_because(mine, "You logged out.")
    still_live(theirs)  # only that session ended

    assert not logged_in(stolen)  # the copied cookie is dead, server side
    refused_on_connect(stolen, room)
    refused_on_connect(here, room)
    assert logged_in(there)
    theirs.close()


def test_log_out_everywhere_closes_every_socket_of_every_session(server):
    room, name = uniq("room"), uniq("alice")
    here = Browser(server).signup(name).create_room(room)
    there = Browser(server)
    log_in(there, name)
    sockets = [live_socket(here, room), live_socket(here, room), live_socket(there, room)]

    status, page = here.post("/settings/logout-everywhere/", {}, form_path="/settings/")
    assert status == 200 and "You have logged out everywhere." in page
    for sock in sockets:
        closed_because(sock, "You logged out.")
    assert not logged_in(here) and not logged_in(there)
    refused_on_connect(there, room)


def test_a_password_change_closes_the_other_sessions_sockets_only(server):
    room, name = uniq("room"), uniq("alice")
    here = Browser(server).signup(name).create_room(room)
    there = Browser(server)
    log_in(there, name)
    mine, theirs = live_socket(here, room), live_socket(there, room)

    data = {"old_password": PASSWORD, "new_password": "battery staple", "confirm_password": "battery staple"}
    status, page = here.post("/settings/password/", data, form_path="/settings/")
    assert status == 200 and "every other session is logged out" in page
    closed_because(theirs, "You logged out.")
    still_live(mine)
    assert logged_in(here) and not logged_in(there)
    refused_on_connect(there, room)
    assert log_in(there, name)[0] == 400
    assert log_in(there, name, "battery staple")[0] == 200
    mine.close()


def test_deactivation_on_server_a_closes_the_socket_on_server_b_within_a_second(
    live_database_url,
    tmp_path,
    redis_prefix,  # noqa: F811 - the fixture imported above
):
    services.redis_or_skip().close()
    a_srv = start_server(live_database_url, tmp_path, "a", services.REDIS_URL, redis_prefix)
    b_srv = start_server(live_database_url, tmp_path, "b", services.REDIS_URL, redis_prefix)
    database = sa.create_engine(live_database_url)
    try:
        room, root_name, bob_name = uniq("room"), uniq("root"), uniq("bob")
        root = Browser(a_srv).signup(root_name).create_room(room)
        make_admin(database, root_name)
        bob = Browser(b_srv).signup(bob_name)
        bob.enter(room)
        sock = live_socket(bob, room)

        started = time.monotonic()
        status, _ = root.post(f"/admin/users/{bob_name}/deactivate", {}, form_path="/admin/users/")
        assert status == 200
        answered = time.monotonic()
        closed_because(sock, "Your account has been deactivated.", timeout=1.0)
        assert time.monotonic() - answered < 1.0, "server B closed the socket too late"
        assert time.monotonic() - started < 1.0 + (answered - started)
        refused_on_connect(bob, room)  # and server B refuses it on reconnect, from the database
    finally:
        database.dispose()
        a_srv.stop()
        b_srv.stop()
