"""@mentions: which names a text mentions, how they are stored and shown."""

from __future__ import annotations

from webchat.rooms.mentions import candidates, decode, encode, ids_attribute
from webchat.templating import linkify


def test_candidates_are_names_after_an_at_sign_in_any_script_once_each():
    text = "@Alice 你好 @小明同学, thanks @bob. mail me at x@bob.org @alice @room"
    assert candidates(text) == ["alice", "小明同学", "bob", "room"]
    assert candidates("no@mention here, @ab too short") == []


def test_stored_form_round_trips_and_gives_the_css_ids():
    stored = encode({7: "小明", 3: "alice"}, everyone=True)
    assert stored == "* 3:alice 7:小明"
    assert decode(stored) == {"room": 0, "alice": 3, "小明": 7}
    assert ids_attribute(stored) == "3 7"
    assert encode({}) is None


def test_only_stored_mentions_are_highlighted_and_user_text_stays_escaped():
    html = str(linkify("@Bob <b>hi</b> @carol @room https://x.y/@bob", "2:bob"))
    assert '<span class="mention" data-user="2">@Bob</span>' in html
    assert "@carol" in html and 'data-user="3"' not in html  # not a member: plain text
    assert "mention-room" not in html  # @room did not page anyone here
    assert "&lt;b&gt;hi&lt;/b&gt;" in html
    assert 'href="https://x.y/@bob"' in html


# --- stored, listed, counted (the Flask test client) ---------------------------------------

import re  # noqa: E402

from sqlalchemy import select  # noqa: E402

from webchat.extensions import db  # noqa: E402
from webchat.models import Mention, User  # noqa: E402

from .conftest import create_room, csrf_token, signup  # noqa: E402


def people(app, *names):
    clients = {}
    for name in names:
        clients[name] = app.test_client()
        signup(clients[name], name)
    return clients


def say(client, room: str, text: str):
    token = csrf_token(client.get(f"/room/{room}/").get_data(as_text=True))
    return client.post(f"/room/{room}/", data={"message": text, "csrf_token": token})


def mentioned_users(app) -> list[str]:
    with app.app_context():
        rows = db.session.execute(
            select(User.username).join(Mention, Mention.user_id == User.id).order_by(User.username)
        )
        return list(rows.scalars())


def test_a_mention_of_a_member_is_stored_shown_counted_and_listed(app, queries):
    c = people(app, "alice", "bob", "carol")
    create_room(c["alice"], "general")
    c["bob"].get("/room/general/")
    assert say(c["alice"], "general", "hey @BOB and @carol, see this").status_code == 303
    assert mentioned_users(app) == ["bob"]  # carol is not in the room
    with app.app_context():
        bob_id = db.session.execute(select(User.id).filter_by(username="bob")).scalar_one()
    listing = c["bob"].get("/").get_data(as_text=True)
    assert re.search(r'class="mention-badge"[^>]*>@1<', listing)
    page = c["bob"].get("/room/general/").get_data(as_text=True)
    assert f'<p class="msg-body" data-mentions=" {bob_id} ">' in page
    assert f'<span class="mention" data-user="{bob_id}">@BOB</span>' in page
    assert f'.msg-body[data-mentions~="{bob_id}"]' in page  # the page's own rule highlights it for bob
    # read now: no badge; still on the mentions page, newest first, linking into context
    assert "mention-badge" not in c["bob"].get("/").get_data(as_text=True)
    say(c["alice"], "general", "again @bob")
    response, _ = queries.measure(2, lambda: c["bob"].get("/mentions/"), writes=False)
    mentions = response.get_data(as_text=True)
    assert mentions.index("again") < mentions.index("see this")
    assert re.search(r'href="/room/general/\?around=\d+#m-\d+"', mentions)
    assert "see this" not in c["carol"].get("/mentions/").get_data(as_text=True)


def test_at_room_pages_everyone_only_when_the_owner_or_an_admin_writes_it(app):
    c = people(app, "alice", "bob", "carol")
    create_room(c["alice"], "general")
    for who in ("bob", "carol"):
        c[who].get("/room/general/")
    say(c["bob"], "general", "@room lunch?")  # bob is neither owner nor admin
    assert mentioned_users(app) == []
    say(c["alice"], "general", "@room meeting now")
    assert mentioned_users(app) == ["bob", "carol"]
    page = c["bob"].get("/room/general/").get_data(as_text=True)
    assert '<span class="mention mention-room">@room</span> meeting now' in page
    log = page.split('<div id="log"', 1)[1]
    assert "@room lunch?" in log and log.count("mention-room") == 1


def test_an_edit_updates_who_is_mentioned(app):
    c = people(app, "alice", "bob")
    create_room(c["alice"], "general")
    c["bob"].get("/room/general/")
    say(c["alice"], "general", "hi @bob")
    assert mentioned_users(app) == ["bob"]
    page = c["alice"].get("/room/general/").get_data(as_text=True)
    message_id = max(int(i) for i in re.findall(r'<article id="m-(\d+)"', page))
    token = csrf_token(page)
    edit = c["alice"].post(f"/room/general/messages/{message_id}/edit", data={"message": "hi all", "csrf_token": token})
    assert edit.status_code == 303
    assert mentioned_users(app) == []
    assert "Nobody has mentioned you yet" in c["bob"].get("/mentions/").get_data(as_text=True)
    # Adding one by an edit marks the message in what the change replaces (the
    # message's content), so a live page's "mentions me" mark follows the edit.
    hx = {"HX-Request": "true", "X-CSRFToken": token}
    answer = c["alice"].post(f"/room/general/messages/{message_id}/edit", data={"message": "@bob ?"}, headers=hx)
    swap = answer.get_data(as_text=True).split(f'hx-swap-oob="innerHTML:#m-{message_id} .msg-content')[1]
    bob_id = re.search(r'data-user="(\d+)"', swap).group(1)
    assert f'<p class="msg-body" data-mentions=" {bob_id} ">' in swap


def test_ids_past_what_the_database_holds_are_bad_input_not_errors(app):
    c = people(app, "alice")
    create_room(c["alice"], "general")
    for url in (
        "/room/general/?before=2147483648",
        "/room/general/?around=99999999999",
        "/mentions/?before=2147483648",
    ):
        assert c["alice"].get(url).status_code == 400, url
    assert c["alice"].get("/room/general/?before=2147483647").status_code == 200
