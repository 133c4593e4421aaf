import uuid

import pytest

from .liveserver import Browser, message_ids

pytestmark = pytest.mark.live


def name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def test_two_users_see_each_others_messages(server):
    room = name("room")
    alice = Browser(server).signup(name("alice")).create_room(room)
    bob = Browser(server).signup(name("bob"))
    bob.enter(room)
    a, b = alice.socket(room), bob.socket(room)
    a.wait_for('id="status"')
    b.wait_for('id="status"')
    a.send("hello from alice")
    frame = b.wait_for("hello from alice")
    assert 'hx-swap-oob="afterbegin:#log-live"' in frame
    assert len(message_ids(frame)) == 1
    b.send("hi alice")
    a.wait_for("hi alice")
    a.close()
    b.close()
