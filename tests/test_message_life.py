"""Messages that change, over HTTP: edit, delete, reply, react; who may, and what each
refusal looks like. Live delivery and the catch-up are in test_live.py and
test_scaleout.py, the statement budgets in test_query_budget.py."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from webchat.extensions import db
from webchat.models import Message, Reaction, Room, User

from .conftest import articles, create_room, csrf_token, field_error, input_value, signed_up

ROOM = "/room/general/"
HX = {"HX-Request": "true"}


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def people(app):
    """alice owns "general", bob is a member, carol has never been in it."""
    clients = signed_up(app, "alice", "bob", "carol")
    create_room(clients["alice"], "general")
    clients["bob"].get(ROOM)
    return clients


def post(client, url: str, data: dict | None = None, headers: dict | None = None, page: str = ROOM):
    token = csrf_token(text(client.get(page)))
    return client.post(url, data={**(data or {}), "csrf_token": token}, headers=headers)


def say(client, body: str, reply_to: int | None = None, room: str = ROOM) -> int:
    data = {"message": body} if reply_to is None else {"message": body, "reply_to": str(reply_to)}
    assert post(client, room, data, page=room).status_code == 303
    return newest_id(client.application, body.strip())


def newest_id(app, body: str) -> int:
    with app.app_context():
        return db.session.execute(select(Message.id).filter_by(body=body).order_by(Message.id.desc())).scalars().first()


def row(app, message_id: int) -> Message:
    with app.app_context():
        message = db.session.get(Message, message_id)
        db.session.expunge(message)
        return message


def change_seq(app, name: str = "general") -> int:
    with app.app_context():
        return db.session.execute(select(Room.change_seq).filter_by(name=name)).scalar_one()


def system_id(app) -> int:
    with app.app_context():
        return db.session.execute(select(Message.id).filter_by(kind=Message.SYSTEM).order_by(Message.id)).scalar()


def shown(client, room: str = ROOM) -> dict[int, str]:
    return articles(text(client.get(room)))


# --- edit ---------------------------------------------------------------------------------


def test_the_author_edits_a_message_without_javascript(app, people):
    alice = people["alice"]
    mid = say(alice, "helo world")
    form = alice.get(f"{ROOM}messages/{mid}/edit")
    assert form.status_code == 200
    assert "helo world</textarea>" in text(form) and 'name="csrf_token"' in text(form)
    response = post(alice, f"{ROOM}messages/{mid}/edit", {"message": "hello world"})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"{ROOM}#m-{mid}")
    stored = row(app, mid)
    assert stored.body == "hello world" and stored.edited_at is not None
    assert stored.changed_seq == change_seq(app) == 1
    article = shown(alice)[mid]
    assert "hello world" in article and "helo" not in article
    assert re.search(r'<span class="msg-edited" title="Edited [^"]+ UTC">edited</span>', article)
    assert "hello world" in text(people["bob"].get("/"))  # the room list's preview, not a stale entry


def test_editing_inline_with_htmx_swaps_the_inside_of_the_article(app, people):
    alice = people["alice"]
    mid = say(alice, "first draft")
    form = alice.get(f"{ROOM}messages/{mid}/edit", headers=HX)
    assert form.status_code == 200 and "<html" not in text(form) and "<article" not in text(form)
    assert f'hx-post="{ROOM}messages/{mid}/edit"' in text(form) and "autofocus" in text(form)
    token = csrf_token(text(alice.get(ROOM)))
    saved = alice.post(
        f"{ROOM}messages/{mid}/edit", data={"message": "second draft"}, headers={**HX, "X-CSRFToken": token}
    )
    assert saved.status_code == 200
    assert '<bdi class="msg-text">second draft</bdi>' in text(saved) and "<article" not in text(saved)
    cancel = alice.get(f"{ROOM}messages/{mid}", headers=HX)
    assert '<bdi class="msg-text">second draft</bdi>' in text(cancel)
    assert alice.get(f"{ROOM}messages/{mid}").status_code == 303  # without htmx: back to the room


def test_an_edit_is_validated_like_a_message_and_the_error_is_by_its_field(app, people):
    alice = people["alice"]
    mid = say(alice, "keep me")
    for body, error in (("   ", "Type a message before sending."), ("x" * 4001, "at most 4000 characters")):
        page = post(alice, f"{ROOM}messages/{mid}/edit", {"message": body})
        assert page.status_code == 400
        assert error in field_error(text(page), f"edit-{mid}")
        inline = post(alice, f"{ROOM}messages/{mid}/edit", {"message": body}, headers=HX)
        assert inline.status_code == 422 and error in field_error(text(inline), f"edit-{mid}")
    assert row(app, mid).body == "keep me" and change_seq(app) == 0


def test_nobody_edits_someone_elses_message_or_a_system_message(app, people):
    alice, bob = people["alice"], people["bob"]
    mid = say(alice, "mine")
    for url in (f"{ROOM}messages/{mid}/edit", f"{ROOM}messages/{system_id(app)}/edit"):
        assert bob.get(url).status_code == 403
        assert post(bob, url, {"message": "yours now"}).status_code == 403
    assert post(alice, f"{ROOM}messages/{system_id(app)}/edit", {"message": "rewritten"}).status_code == 403
    assert row(app, mid).body == "mine" and row(app, mid).edited_at is None
    assert change_seq(app) == 0  # nothing changed, not even the room's number


# --- delete -------------------------------------------------------------------------------


def test_the_author_deletes_a_message_and_its_text_is_served_nowhere(app, people):
    alice, bob = people["alice"], people["bob"]
    mid = say(alice, "a regrettable secret")
    reply = say(bob, "what secret?", reply_to=mid)
    assert post(bob, f"{ROOM}messages/{mid}/reactions", {"emoji": "😮"}).status_code == 303
    assert "regrettable" in shown(bob)[reply]  # the reply quotes it
    assert alice.get(f"{ROOM}messages/{mid}/delete").status_code == 200  # the page without JavaScript
    response = post(alice, f"{ROOM}messages/{mid}/delete")
    assert response.status_code == 303 and response.headers["Location"].endswith(ROOM)
    stored = row(app, mid)
    assert stored.deleted_at is not None and stored.body == "" and stored.reactions is None
    with app.app_context():
        assert db.session.execute(select(Reaction).filter_by(message_id=mid)).first() is None
    for reader in (alice, bob):
        page = text(reader.get(ROOM))
        assert "regrettable" not in page and f'id="m-{mid}"' not in page
        assert "The original message was deleted." in articles(page)[reply]
        assert "regrettable" not in text(reader.get("/"))
    assert alice.get(f"{ROOM}messages/{mid}/edit").status_code == 404
    assert post(alice, f"{ROOM}messages/{mid}/delete").status_code == 404
    assert post(alice, f"{ROOM}messages/{mid}/reactions", {"emoji": "👍"}).status_code == 404


def test_deleting_the_last_message_leaves_the_room_list_without_its_text(app, people):
    alice = people["alice"]
    mid = say(alice, "the very last word")
    assert post(alice, f"{ROOM}messages/{mid}/delete", headers=HX).status_code == 200
    page = text(alice.get("/"))
    assert "the very last word" not in page and "Message deleted" in page


def test_with_htmx_a_deletion_answers_an_empty_article(app, people):
    alice = people["alice"]
    mid = say(alice, "short-lived")
    response = post(alice, f"{ROOM}messages/{mid}/delete", headers=HX)
    assert response.status_code == 200 and text(response) == ""


def test_the_owner_and_admins_delete_anyones_message_members_only_their_own(app, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    carol.get(ROOM)  # joins
    from_alice, from_carol, from_bob = say(alice, "by alice"), say(carol, "by carol"), say(bob, "by bob")
    assert bob.get(f"{ROOM}messages/{from_alice}/delete").status_code == 403
    assert post(bob, f"{ROOM}messages/{from_alice}/delete").status_code == 403
    assert post(bob, f"{ROOM}messages/{system_id(app)}/delete").status_code == 403
    assert post(alice, f"{ROOM}messages/{system_id(app)}/delete").status_code == 403  # the room's record
    assert row(app, from_alice).deleted_at is None and change_seq(app) == 0
    assert post(alice, f"{ROOM}messages/{from_carol}/delete").status_code == 303  # the owner
    with app.app_context():
        db.session.execute(select(User).filter_by(username="carol")).scalar_one().is_admin = True
        db.session.commit()
    assert post(carol, f"{ROOM}messages/{from_bob}/delete").status_code == 303  # an admin
    assert row(app, from_carol).deleted_at is not None and row(app, from_bob).deleted_at is not None


def test_the_page_shows_edit_and_delete_by_css_for_whom_may_use_them(app, people):
    alice, bob = people["alice"], people["bob"]
    say(alice, "hi")
    page_alice, page_bob = text(alice.get(ROOM)), text(bob.get(ROOM))
    alice_id = re.search(r'data-author="(\d+)"', articles(page_alice)[newest_id(app, "hi")]).group(1)
    own = '.msg-user[data-author="{}"] .msg-own'
    assert own.format(alice_id) + ", .msg-menu .msg-delete {" in page_alice  # the owner deletes any
    assert re.search(r'\.msg-user\[data-author="\d+"\] \.msg-own \{', page_bob)  # bob: his own only
    assert articles(page_alice) == articles(page_bob)  # the same fragments for both


def test_a_messages_menu_is_loaded_when_first_opened_not_carried_by_every_message(app, people):
    alice, bob = people["alice"], people["bob"]
    mid = say(alice, "hello")
    article = shown(bob)[mid]
    assert f'hx-get="messages/{mid}/menu" hx-trigger="toggle once"' in article
    assert f'<a class="msg-action" href="messages/{mid}/menu">' in article  # without JavaScript: a page
    assert "react-button" not in article and "/edit" not in article  # the menu's items are not in the page
    items = bob.get(f"{ROOM}messages/{mid}/menu", headers=HX)
    assert items.status_code == 200 and "HX-Request" in items.headers["Vary"]
    html = text(items)
    assert html.lstrip().startswith('<div class="msg-actions"') and "<html" not in html
    assert html.count('class="react-button"') == 7 and ">Reply</a>" in html
    # One menu for every reader: the page's style shows edit and delete to whom may.
    assert 'class="msg-action msg-own"' in html and 'class="msg-own msg-delete"' in html
    assert html == text(alice.get(f"{ROOM}messages/{mid}/menu", headers=HX))


def test_without_javascript_the_menu_page_offers_only_what_the_reader_may(app, people):
    alice, bob = people["alice"], people["bob"]
    from_alice, from_bob = say(alice, "mine"), say(bob, "his")
    page = text(bob.get(f"{ROOM}messages/{from_alice}/menu"))
    assert "<title>Message actions · webchat</title>" in page and "mine" in page
    assert 'name="csrf_token"' in page and page.count('class="react-button"') == 7
    assert f'href="{ROOM}?reply_to={from_alice}#message"' in page
    assert f"messages/{from_alice}/edit" not in page and f"messages/{from_alice}/delete" not in page
    page = text(alice.get(f"{ROOM}messages/{from_bob}/menu"))  # the owner deletes, but edits only her own
    assert f"messages/{from_bob}/delete" in page and f"messages/{from_bob}/edit" not in page
    page = text(alice.get(f"{ROOM}messages/{from_alice}/menu"))
    assert f"messages/{from_alice}/delete" in page and f"messages/{from_alice}/edit" in page
    # A reaction chosen there posts with its CSRF token and returns to the room.
    assert (
        post(
            bob, f"{ROOM}messages/{from_alice}/reactions", {"emoji": "👍"}, page=f"{ROOM}messages/{from_alice}/menu"
        ).status_code
        == 303
    )


def test_the_menu_of_a_system_gone_or_unreadable_message_is_refused(app, people):
    alice, carol = people["alice"], people["carol"]
    mid = say(alice, "members only")
    for headers in (None, HX):
        assert alice.get(f"{ROOM}messages/{system_id(app)}/menu", headers=headers).status_code == 403
        assert carol.get(f"{ROOM}messages/{mid}/menu", headers=headers).status_code == 404
        for bad in ("999999", "99999999999999999999999", "abc"):
            assert alice.get(f"{ROOM}messages/{bad}/menu", headers=headers).status_code == 404
    assert post(alice, f"{ROOM}messages/{mid}/delete").status_code == 303
    assert alice.get(f"{ROOM}messages/{mid}/menu", headers=HX).status_code == 404


# --- reply --------------------------------------------------------------------------------


def test_a_reply_quotes_the_start_of_its_original_and_links_to_it(app, people):
    alice, bob = people["alice"], people["bob"]
    long_text = "Lunch at noon? " + "We could try the new place on the corner. " * 5
    mid = say(alice, long_text)
    reply = say(bob, "Yes!", reply_to=mid)
    assert row(app, reply).reply_to_id == mid
    article = shown(alice)[reply]
    quote = re.search(rf'<a class="quote quote-of-{mid}" href="#m-{mid}">(.*?)</a>', article, re.S).group(1)
    assert '<bdi class="quote-author">alice</bdi>' in quote
    assert "Lunch at noon? We could try" in quote and "…" in quote and len(quote) < 400
    # An edit of the original changes the quote (and the reply's change number).
    assert post(alice, f"{ROOM}messages/{mid}/edit", {"message": "Dinner instead?"}).status_code == 303
    assert "Dinner instead?" in shown(bob)[reply]
    assert row(app, reply).changed_seq == change_seq(app)


def test_without_javascript_reply_to_prefills_the_composer_and_is_checked(app, people):
    alice, bob = people["alice"], people["bob"]
    mid = say(alice, "question?")
    page = text(bob.get(f"{ROOM}?reply_to={mid}"))
    assert input_value(page, "message") == ""
    assert re.search(rf'<input type="hidden" name="reply_to" value="{mid}">', page)
    assert "Replying to <bdi>alice</bdi>" in page and "question?" in page.split('id="composer"')[1]
    for bad in ("abc", "١", "-1", "9" * 30, str(system_id(app)), "999999"):
        assert bob.get(f"{ROOM}?reply_to={bad}").status_code == 400, bad
    # htmx fetches the same composer, keeping what was typed
    fragment = bob.get(f"{ROOM}composer?reply_to={mid}&message=draft", headers=HX)
    assert fragment.status_code == 200 and 'id="composer"' in text(fragment) and "<html" not in text(fragment)
    assert input_value(text(fragment), "message") == "draft" and "autofocus" in text(fragment)
    # ...with the menu of the message answered, out of band: closed.
    assert f'<details class="msg-menu" hx-swap-oob="outerHTML:#m-{mid} .msg-menu">' in text(fragment)
    cancel = bob.get(f"{ROOM}composer?message=draft", headers=HX)
    assert 'name="reply_to"' not in text(cancel) and input_value(text(cancel), "message") == "draft"


def test_a_reply_to_another_room_or_a_gone_message_is_refused_by_the_input(app, people):
    alice, bob = people["alice"], people["bob"]
    create_room(alice, "elsewhere")
    there = say(alice, "in another room", room="/room/elsewhere/")
    gone = say(alice, "soon gone")
    assert post(alice, f"{ROOM}messages/{gone}/delete").status_code == 303
    count = len(shown(bob))
    for target, error in (
        (there, "You can only reply to a message of this room."),
        (system_id(app), "You can only reply to a message of this room."),
        ("not a number", "You can only reply to a message of this room."),
        (gone, "That message was deleted, so it cannot be replied to."),
    ):
        page = post(bob, ROOM, {"message": "my answer", "reply_to": str(target)})
        assert page.status_code == 400
        assert field_error(text(page), "composer") == error
        assert input_value(text(page), "message") == "my answer"  # the draft is kept
    assert len(shown(bob)) == count
    # Any other error keeps the reply being written.
    mid = say(alice, "still here")
    page = text(post(bob, ROOM, {"message": " ", "reply_to": str(mid)}))
    assert f'name="reply_to" value="{mid}"' in page


# --- reactions ----------------------------------------------------------------------------


def test_a_reaction_toggles_and_shows_who_reacted(app, people):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    carol.get(ROOM)
    mid = say(alice, "cake in the kitchen")
    ids = {}
    with app.app_context():
        for name in ("alice", "bob", "carol"):
            ids[name] = db.session.execute(select(User.id).filter_by(username=name)).scalar_one()
    for who in (bob, carol):
        assert post(who, f"{ROOM}messages/{mid}/reactions", {"emoji": "🎉"}).status_code == 303
    assert post(alice, f"{ROOM}messages/{mid}/reactions", {"emoji": "👍"}).status_code == 303
    article = shown(alice)[mid]
    chips = re.findall(r'<button class="reaction"[^>]*>.*?</button>', article, re.S)
    assert len(chips) == 2
    assert 'value="👍"' in chips[0] and 'value="🎉"' in chips[1]  # in palette order
    assert f'data-by="{ids["bob"]} {ids["carol"]}"' in chips[1] and 'title="bob, carol"' in chips[1]
    assert 'aria-label="🎉 from 2 people: bob, carol"' in chips[1]
    assert '<span class="reaction-count">2</span>' in chips[1]
    # Pressing it again takes it back.
    assert post(bob, f"{ROOM}messages/{mid}/reactions", {"emoji": "🎉"}).status_code == 303
    assert f'data-by="{ids["carol"]}"' in shown(alice)[mid]
    with app.app_context():
        rows = db.session.execute(select(Reaction.emoji, Reaction.user_id).filter_by(message_id=mid)).all()
    assert sorted(rows) == sorted([("🎉", ids["carol"]), ("👍", ids["alice"])])
    assert json.loads(row(app, mid).reactions) == [["👍", [[ids["alice"], "alice"]]], ["🎉", [[ids["carol"], "carol"]]]]
    # The reader's own are marked by the page's style, not in the shared fragment.
    assert f'.reaction[data-by~="{ids["carol"]}"]' in text(carol.get(ROOM))
    assert shown(alice)[mid] == shown(carol)[mid]


def test_reactions_outside_the_palette_or_on_system_messages_are_refused(app, people):
    bob = people["bob"]
    mid = say(people["alice"], "hello")
    for emoji in ("💩", "x", "", "👍👍"):
        assert post(bob, f"{ROOM}messages/{mid}/reactions", {"emoji": emoji}).status_code == 400
        assert bob.get(f"{ROOM}messages/{mid}/reactions?emoji={emoji}").status_code == 400
    assert post(bob, f"{ROOM}messages/{mid}/reactions").status_code == 400
    assert post(bob, f"{ROOM}messages/{system_id(app)}/reactions", {"emoji": "👍"}).status_code == 403
    assert row(app, mid).reactions is None and change_seq(app) == 0


def test_without_javascript_a_reaction_chip_opens_a_page_that_posts_with_csrf(app, people):
    bob = people["bob"]
    mid = say(people["alice"], "hello")
    page = text(bob.get(f"{ROOM}messages/{mid}/reactions?emoji=👀"))
    assert 'name="csrf_token"' in page and re.search(r'value="👀" aria-pressed="false" autofocus', page)
    assert post(bob, f"{ROOM}messages/{mid}/reactions", {"emoji": "👀"}).status_code == 303
    assert 'value="👀" aria-pressed="true"' in text(bob.get(f"{ROOM}messages/{mid}/reactions"))


def test_with_htmx_a_reaction_answers_the_inside_of_the_article(app, people):
    bob = people["bob"]
    mid = say(people["alice"], "hello")
    response = post(bob, f"{ROOM}messages/{mid}/reactions", {"emoji": "❤️"}, headers=HX)
    assert response.status_code == 200 and "<article" not in text(response)
    assert '<button class="reaction" name="emoji" value="❤️"' in text(response)


# --- refusals common to every action ----------------------------------------------------


ACTIONS = [("edit", {"message": "x"}), ("delete", {}), ("reactions", {"emoji": "👍"})]


@pytest.mark.parametrize(("action", "data"), ACTIONS, ids=[a for a, _ in ACTIONS])
def test_a_post_without_its_csrf_token_is_refused(app, people, action, data):
    alice = people["alice"]
    mid = say(alice, "guarded")
    assert alice.post(f"{ROOM}messages/{mid}/{action}", data=data).status_code == 400
    assert alice.post(f"{ROOM}messages/{mid}/{action}", data=data, headers={"X-CSRFToken": "forged"}).status_code == 400
    assert row(app, mid).body == "guarded" and row(app, mid).deleted_at is None and change_seq(app) == 0


@pytest.mark.parametrize(("action", "data"), ACTIONS, ids=[a for a, _ in ACTIONS])
def test_non_members_and_other_rooms_get_404(app, people, action, data):
    alice, carol = people["alice"], people["carol"]
    mid = say(alice, "members only")
    url = f"{ROOM}messages/{mid}/{action}"
    assert carol.get(url).status_code == 404  # never entered the room
    assert post(carol, url, data, page="/").status_code == 404
    create_room(alice, "elsewhere")
    assert post(alice, f"/room/elsewhere/messages/{mid}/{action}", data).status_code == 404
    for bad in ("999999", "99999999999999999999999", "abc"):
        assert post(alice, f"{ROOM}messages/{bad}/{action}", data).status_code == 404
    assert row(app, mid).body == "members only" and change_seq(app) == 0


def test_every_change_counts_in_the_rooms_change_sequence(app, people):
    alice, bob = people["alice"], people["bob"]
    mid = say(alice, "one")
    other = say(alice, "two")
    assert post(alice, f"{ROOM}messages/{mid}/edit", {"message": "uno"}).status_code == 303
    assert post(bob, f"{ROOM}messages/{other}/reactions", {"emoji": "👍"}).status_code == 303
    assert post(alice, f"{ROOM}messages/{other}/delete").status_code == 303
    assert change_seq(app) == 3
    assert (row(app, mid).changed_seq, row(app, other).changed_seq) == (1, 3)
    page = text(alice.get(ROOM))
    assert re.search(r'ws-connect="[^"]*[?;]seq=3"', page)
