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
