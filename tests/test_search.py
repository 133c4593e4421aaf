"""Search: Chinese and English substrings, newest first and paged, only what the reader
may read, always in step with the messages, and nothing a reader types is an operator."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from markupsafe import Markup
from sqlalchemy import event, select, text

from webchat.extensions import db
from webchat.grams import gram_term
from webchat.models import Message, Room, User, utcnow
from webchat.search import query

from .conftest import TEST_DB, field_error, input_value, post_form, signed_up

HIT = re.compile(r'<li class="hit">\s*<a class="hit-link" href="([^"]+)">(.*?)</a>\s*</li>', re.S)
SNIPPET = re.compile(r'<span class="hit-text">(.*?)</span>', re.S)


def page(response) -> str:
    return response.get_data(as_text=True)


def hits(response) -> list[tuple[int, str]]:
    """(message id, snippet HTML) of each result, in page order."""
    assert response.status_code == 200, page(response)[:2000]
    found = []
    for href, body in HIT.findall(page(response)):
        message_id = int(re.search(r"around=(\d+)#m-\1$", html.unescape(href)).group(1))
        found.append((message_id, SNIPPET.search(body).group(1)))
    return found


def found_ids(client, q: str, **args) -> list[int]:
    return [message_id for message_id, _ in hits(client.get("/search/", query_string={"q": q, **args}))]


@pytest.fixture(params=["rooms", "indexes"])
def way(request, monkeypatch):
    """Both ways SQLite finds messages: reading the rooms searched through (few messages,
    as in every small test) and the indexes (many): trigrams for three characters or
    more, one- and two-character pieces below. On PostgreSQL the planner chooses; both
    runs take its one way."""
    if request.param == "indexes":
        monkeypatch.setattr(query, "FEW_MESSAGES", 0)
    return request.param


def say(app, room_name: str, author: str, *bodies: str, kind: str = Message.USER) -> list[int]:
    """Messages stored straight into the database, one second apart; their ids."""
    with app.app_context():
        room = db.session.execute(select(Room).filter_by(name=room_name)).scalar_one()
        user = db.session.execute(select(User).filter_by(username=author)).scalar_one()
        start = utcnow()
        rows = [
            Message(room_id=room.id, author_id=user.id, body=b, kind=kind, created_at=start + timedelta(seconds=i))
            for i, b in enumerate(bodies)
        ]
        db.session.add_all(rows)
        db.session.flush()
        room.last_message_id = rows[-1].id
        db.session.commit()
        return [r.id for r in rows]


@pytest.fixture
def people(app):
    """alice (owner of public 'general' and private 'secret', with bob) and carol."""
    clients = signed_up(app, "alice", "bob", "carol")
    alice = clients["alice"]
    assert post_form(alice, "/create/", {"name": "general"}).status_code == 303
    assert post_form(alice, "/create/", {"name": "secret", "private": "y"}).status_code == 303
    assert post_form(alice, "/room/secret/members", {"username": "bob"}).status_code == 303
    return clients


# --- what is found -----------------------------------------------------------------------


def test_chinese_is_found_without_spaces_by_one_two_or_more_characters(app, people, way):
    alice = people["alice"]
    db_down, meeting, room = say(app, "general", "alice", "我们的数据库又挂了", "明天开会议", "会议室在三楼")
    say(app, "general", "alice", "大家好")
    assert found_ids(alice, "数据库") == [db_down]
    assert found_ids(alice, "的数据库又") == [db_down]
    assert found_ids(alice, "会议") == [room, meeting]
    assert found_ids(alice, "会") == [room, meeting]
    assert found_ids(alice, "挂了") == [db_down]
    assert found_ids(alice, "数据仓库") == []
    [(_, snippet)] = hits(alice.get("/search/?q=数据库"))
    assert snippet == "我们的<mark>数据库</mark>又挂了"


def test_english_ignores_letter_case_and_finds_parts_of_words(app, people, way):
    alice = people["alice"]
    deploy, other = say(app, "general", "alice", "Deploy the DATABASE now", "nothing to see")
    for q in ("database", "Database", "DATABASE", "dEpLoY", "the data", "base", "aBa", "Ab", "d", "DE"):
        assert found_ids(alice, q) == [deploy], q
    [(_, snippet)] = hits(alice.get("/search/?q=database"))
    assert snippet == "Deploy the <mark>DATABASE</mark> now"


def test_text_is_literal_whatever_it_holds(app, people, way):
    """LIKE's wildcards (% _ \\) and FTS5's syntax ("" * ^ : ( ) AND OR NOT NEAR) find only
    themselves, and none of them is an error."""
    alice = people["alice"]
    bodies = {
        "percent": "sale 100% off",
        "no-percent": "sale 100 off",
        "underscore": "snake_case name",
        "no-underscore": "snakeXcase name",
        "backslash": r"C:\temp\dir",
        "quote": 'she said "hi" twice',
        "star": "star* and start",
        "operators": "this AND that OR NOT NEAR(x y) col:umn ^caret -minus",
        "regex": "dot q.v pipe q|v star Q* ",
        "no-regex": "qxv qqv",
    }
    ids = dict(zip(bodies, say(app, "general", "alice", *bodies.values()), strict=True))
    assert found_ids(alice, "%") == [ids["percent"]]
    assert found_ids(alice, "100%") == [ids["percent"]]
    assert found_ids(alice, "100% off") == [ids["percent"]]
    assert found_ids(alice, "_") == [ids["underscore"]]
    assert found_ids(alice, "e_c") == [ids["underscore"]]
    assert found_ids(alice, "snake_case") == [ids["underscore"]]
    assert found_ids(alice, "\\") == [ids["backslash"]]
    assert found_ids(alice, r"\temp\d") == [ids["backslash"]]
    assert found_ids(alice, '"') == [ids["quote"]]
    assert found_ids(alice, '"hi"') == [ids["quote"]]
    assert found_ids(alice, 'said "hi" tw') == [ids["quote"]]
    assert found_ids(alice, "star*") == [ids["star"]]
    assert found_ids(alice, "AND that OR") == [ids["operators"]]
    assert found_ids(alice, "NEAR(x y)") == [ids["operators"]]
    assert found_ids(alice, "col:umn") == [ids["operators"]]
    assert found_ids(alice, "^caret -minus") == [ids["operators"]]
    # Short texts with letter case (PostgreSQL: a literal regular expression), never a pattern.
    for q in ("q.", ".v", "q|", "|v", "Q*", "q*", "*"):
        assert found_ids(alice, q) == ([ids["regex"]] if q != "*" else [ids["regex"], ids["star"]]), q
    for q in ('"', '""', "AND", "NOT x", "NEAR(", "(", ")", "*", "^", "-", ":", "a OR b", "x*", "%%%", "___"):
        response = alice.get("/search/", query_string={"q": q})
        assert response.status_code == 200, q


def test_newest_first_and_paged_by_id(app, people, way):
    alice = people["alice"]
    ids = say(app, "general", "alice", *[f"数据库 report {i}" for i in range(45)])
    say(app, "general", "alice", "unrelated")
    seen, before, pages = [], None, 0
    while True:
        args = {"q": "数据库"} | ({"before": before} if before else {})
        response = alice.get("/search/", query_string=args)
        found = [message_id for message_id, _ in hits(response)]
        seen += found
        pages += 1
        older = re.search(r'<a href="([^"]+)"[^>]*>Older results</a>', page(response))
        if not older:
            break
        before = int(re.search(r"before=(\d+)", html.unescape(older.group(1))).group(1))
        assert before == found[-1]
        assert "Newest results" in page(alice.get("/search/", query_string={"q": "数据库", "before": before}))
    assert pages == 3 and seen == sorted(ids, reverse=True)  # all of them, newest first, each once
    short = [message_id for message_id, _ in hits(alice.get("/search/", query_string={"q": "据", "before": ids[5]}))]
    assert short == sorted(ids[:5], reverse=True)
    response = alice.get("/search/", query_string={"q": "数据库", "before": ids[0]})
    assert hits(response) == [] and "No older messages contain “数据库”." in page(response)


def test_private_rooms_and_conversations_only_for_their_members(app, people, way):
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    [public] = say(app, "general", "alice", "部署 plan: public")
    [secret] = say(app, "secret", "alice", "部署 plan: secret")
    assert alice.get("/dm/bob/").status_code == 302
    direct = db_room_name(app, Room.DIRECT)
    [dm] = say(app, direct, "bob", "部署 plan: just us")
    for q in ("部署", "plan", "部"):
        assert found_ids(alice, q) == [dm, secret, public], q
        assert found_ids(bob, q) == [dm, secret, public], q
        assert found_ids(carol, q) == [public], q  # not a member of general either: it is public
    # Each reader sees the conversation under the other person's name.
    assert "conversation with <bdi>bob</bdi>" in page(alice.get("/search/?q=just"))
    assert "conversation with <bdi>alice</bdi>" in page(bob.get("/search/?q=just"))
    # A room the reader may not read cannot be searched: the same 404 as its page.
    for client, room, status in ((carol, "secret", 404), (carol, "nowhere", 404), (bob, "secret", 200)):
        assert client.get("/search/", query_string={"q": "plan", "room": room}).status_code == status
    assert found_ids(bob, "plan", room="secret") == [secret]
    assert found_ids(carol, "plan", room="general") == [public]
    assert found_ids(alice, "plan", room=direct) == [dm]


def db_room_name(app, kind: str) -> str:
    with app.app_context():
        return db.session.execute(select(Room.name).filter_by(kind=kind)).scalar_one()


def test_removed_from_a_room_no_longer_finds_it(app, people, way):
    alice, bob = people["alice"], people["bob"]
    [secret] = say(app, "secret", "alice", "the launch date")
    assert found_ids(bob, "launch") == [secret]
    assert post_form(alice, "/room/secret/members/bob/remove", {}, get_url="/room/secret/").status_code == 303
    assert found_ids(bob, "launch") == []


def test_system_messages_are_not_found(app, people, way):
    alice, carol = people["alice"], people["carol"]
    assert carol.get("/room/general/").status_code == 200  # "carol joined the room"
    # "alice added bob" stores bob's name as the system message's body.
    assert found_ids(alice, "bob") == [] and found_ids(alice, "carol") == []
    [said] = say(app, "general", "carol", "bob is here")
    assert found_ids(alice, "bob") == [said]


def test_an_edited_message_is_found_by_its_new_text_only_and_a_deleted_one_never(app, people, way):
    """At the SQL level (the lifecycle branch will edit and delete through its own code):
    the index follows an UPDATE or a DELETE of a row at once."""
    alice = people["alice"]
    first, second = say(app, "general", "alice", "我们的数据库又挂了", "deploy at noon")
    with app.app_context():
        db.session.execute(text("UPDATE message SET body = '会议改到明天' WHERE id = :id"), {"id": first})
        db.session.execute(text("DELETE FROM message WHERE id = :id"), {"id": second})
        db.session.commit()
    for q in ("数据库", "数据", "又", "deploy", "noon", "de"):
        assert found_ids(alice, q) == [], q
    for q in ("会议改", "会议", "明"):
        assert found_ids(alice, q) == [first], q
    if TEST_DB != "postgres":
        with app.app_context():  # the FTS5 index agrees with the table, row for row
            db.session.execute(text("INSERT INTO message_fts (message_fts) VALUES ('integrity-check')"))


def test_one_or_two_characters_of_any_kind_are_found_exactly(app, people, way):
    """The index of short pieces: each character is a term, punctuation, wildcards,
    quotes and emoji included; letters in any case; the text stripped first."""
    alice = people["alice"]
    bodies = {
        "hashes": "release ## notes",
        "hash": "# one heading",
        "percent": "50% off",
        "underscore": "snake_case",
        "backslash": r"C:\dir",
        "quotes": """say "hi" it's""",
        "rocket": "launch 🚀 now",
        "thumb": "👍🏽 ok",  # two code points: the thumb and its skin tone
        "chinese": "熔断器已打开",
        "letters": "Zebra QUIZ",
    }
    ids = dict(zip(bodies, say(app, "general", "alice", *bodies.values()), strict=True))
    expected = {
        "##": ["hashes"],
        "#": ["hash", "hashes"],
        "%": ["percent"],
        "0%": ["percent"],
        "_": ["underscore"],
        "e_": ["underscore"],
        "\\": ["backslash"],
        ":\\": ["backslash"],
        '"': ["quotes"],
        '"h': ["quotes"],
        "'": ["quotes"],
        "'s": ["quotes"],
        "🚀": ["rocket"],
        " 🚀 ": ["rocket"],  # stripped: one character
        "👍🏽": ["thumb"],
        "🏽": ["thumb"],
        "熔断": ["chinese"],
        "断": ["chinese"],
        "器已": ["chinese"],
        "z": ["letters"],
        "ZE": ["letters"],
        "qU": ["letters"],
        "iz": ["letters"],
        "zq": [],
        "熔器": [],
        "%%": [],
        "#o": [],  # "# one": a space between
    }
    for q, names in expected.items():
        assert found_ids(alice, q) == sorted((ids[n] for n in names), reverse=True), q
    # "s " is stripped to "s": every message with an s, not just those with "s " in them.
    with_s = sorted((ids[n] for n in ("quotes", "hashes", "underscore")), reverse=True)
    assert found_ids(alice, "s ") == found_ids(alice, "S") == with_s


def pieces_index(app, piece: str) -> list[int]:
    """The ids the index of short pieces holds for a piece of one or two characters."""
    with app.app_context():
        if TEST_DB == "postgres":
            sql = "SELECT id FROM message WHERE webchat_grams(body) @> ARRAY[lower(:q)] ORDER BY id"
            return db.session.execute(text(sql), {"q": piece}).scalars().all()
        sql = "SELECT rowid FROM message_grams WHERE message_grams MATCH :q ORDER BY rowid"
        return db.session.execute(text(sql), {"q": gram_term(piece)}).scalars().all()


def search_plan(app, reader: str, q: str) -> str:
    """The database's plan for the statement that ``query.search`` ran to find ``q``."""
    ran = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        ran.append((statement, parameters))

    with app.app_context():
        reader_id = db.session.execute(select(User.id).filter_by(username=reader)).scalar_one()
        event.listen(db.engine, "before_cursor_execute", keep)
        try:
            query.search(reader_id, reader, q)
        finally:
            event.remove(db.engine, "before_cursor_execute", keep)
        statement, parameters = ran[-1]
        explain = "EXPLAIN " if TEST_DB == "postgres" else "EXPLAIN QUERY PLAN "
        plan = db.session.connection().exec_driver_sql(explain + statement, parameters).all()
        db.session.rollback()
    return "\n".join(str(row[-1]) for row in plan)


def test_short_texts_are_looked_up_in_the_index_of_pieces_kept_in_step(app, people, monkeypatch):
    """Posting, editing and deleting through the app keep the index in step at once, and
    a search of one or two characters reads it rather than the messages."""
    alice = people["alice"]
    monkeypatch.setattr(query, "FEW_MESSAGES", 0)  # SQLite: never read the rooms through
    assert post_form(alice, "/room/general/", {"message": "鑫 Zq 起来"}).status_code == 303
    [new] = pieces_index(app, "鑫")
    assert pieces_index(app, "zQ") == pieces_index(app, "起来") == [new]
    assert found_ids(alice, "鑫") == found_ids(alice, "zq") == [new]
    edit = f"/room/general/messages/{new}/edit"
    assert post_form(alice, edit, {"message": "熔断"}, get_url="/room/general/").status_code == 303
    assert pieces_index(app, "鑫") == pieces_index(app, "zq") == [] and pieces_index(app, "熔断") == [new]
    assert found_ids(alice, "鑫") == [] and found_ids(alice, "熔") == [new]
    delete = f"/room/general/messages/{new}/delete"
    assert post_form(alice, delete, {}, get_url="/room/general/").status_code == 303
    assert pieces_index(app, "熔断") == pieces_index(app, "熔") == [] and found_ids(alice, "熔") == []

    if TEST_DB != "postgres":
        plan = search_plan(app, "alice", "鑫")
        assert "message_grams VIRTUAL TABLE" in plan, plan
        assert "message_fts" not in search_plan(app, "alice", "db") and "message_fts" in search_plan(
            app, "alice", "db!"
        )
        return
    # PostgreSQL: with statistics, a rare text goes through the index, a common one
    # reads the newest messages until the page is full (query.COMMON_PIECE).
    with app.app_context():
        db.session.execute(
            text(
                "INSERT INTO message (room_id, author_id, body, kind, created_at) "
                "SELECT room.id, room.owner_id, '今天的会议 ' || i, 'user', now() "
                "FROM room, generate_series(1, 5000) AS i WHERE room.name = 'general'"
            )
        )
        db.session.commit()
        db.session.execute(text("ANALYZE message"))
        db.session.commit()
    rare, common = search_plan(app, "alice", "鑫"), search_plan(app, "alice", "会议")
    assert "ix_message_grams" in rare, rare
    assert "Index Scan Backward" in common, common
    # A common piece is not asked of the index at all: a plan without the index would
    # compute webchat_grams for every message it reads.
    assert "webchat_grams" not in common, common
    assert "ix_message_grams" in search_plan(app, "alice", "ZQ")  # letter case: the regular expression rechecks


# --- the page ----------------------------------------------------------------------------


def test_a_result_shows_author_room_time_and_links_to_the_message(app, people):
    alice = people["alice"]
    [message_id] = say(app, "general", "alice", "数据库 is down")
    with app.app_context():
        user = db.session.execute(select(User).filter_by(username="alice")).scalar_one()
        user.time_zone, user.language = "Asia/Shanghai", "zh_Hans"
        stored = db.session.get(Message, message_id).created_at
        db.session.commit()
    result = page(alice.get("/search/?q=数据库"))
    [(href, body)] = HIT.findall(result)
    assert html.unescape(href) == f"/room/general/?around={message_id}#m-{message_id}"
    assert "<bdi>alice</bdi>" in body and "<bdi>general</bdi>" in body
    local = stored + timedelta(hours=8)  # Shanghai: UTC+8, no summer time
    assert f">{local:%H:%M}</time>" in body or f"{local.month}月{local.day}日" in body
    assert "Asia/Shanghai" in body and "数据库" in body


def test_snippets_escape_the_message_and_mark_each_match(app, people):
    alice = people["alice"]
    say(app, "general", "alice", "<script>alert(1)</script> 数据库 & 数据库")
    [(_, snippet)] = hits(alice.get("/search/?q=数据库"))
    assert snippet == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>数据库</mark> &amp; <mark>数据库</mark>"
    [(_, snippet)] = hits(alice.get("/search/", query_string={"q": "<script>"}))
    assert snippet.startswith("<mark>&lt;script&gt;</mark>alert(1)")


def test_snippet_shows_the_text_around_the_first_match():
    body = "x" * 300 + " 数据库 " + "y" * 300
    out = query.snippet(body, re.compile("数据库"))
    assert isinstance(out, Markup)
    assert out.startswith("…") and out.endswith("…")
    assert "<mark>数据库</mark>" in out
    assert len(html.unescape(re.sub("<[^>]+>", "", out))) <= query.SNIPPET_CHARS + 2
    assert query.snippet("short <b>", re.compile("zzz")) == "short &lt;b&gt;"  # no match: the start, escaped


def test_the_search_page_without_javascript(app, people):
    alice = people["alice"]
    say(app, "general", "alice", "数据库 down")
    empty = alice.get("/search/")
    assert empty.status_code == 200 and "Type a word or a part of one." in page(empty)
    assert not HIT.search(page(empty)) and input_value(page(empty), "q") == ""
    assert "Type a word" in page(alice.get("/search/?q=%20%20%20"))  # spaces only: nothing asked
    found = alice.get("/search/?q=%20数据库%20")
    assert input_value(page(found), "q") == "数据库" and len(hits(found)) == 1
    assert 'method="get" action="/search/"' in page(found)
    # 100 characters is the most: one more is a 400 with the error next to the box.
    assert alice.get("/search/", query_string={"q": "字" * 100}).status_code == 200
    long = alice.get("/search/", query_string={"q": "字" * 101})
    assert long.status_code == 400
    assert field_error(page(long), "q") == "Search for at most 100 characters; this has 101."
    assert 'aria-invalid="true"' in page(long) and input_value(page(long), "q") == "字" * 101
    assert alice.get("/search/?q=x&before=abc").status_code == 400
    assert alice.get("/search/?q=x&before=%C2%B2").status_code == 400  # '²' is a digit to str.isdigit()


def test_htmx_gets_the_results_alone_with_the_error_out_of_band(app, people):
    alice = people["alice"]
    say(app, "general", "alice", "数据库 down")
    hx = {"HX-Request": "true"}
    fragment = alice.get("/search/?q=数据库", headers=hx)
    assert fragment.status_code == 200 and "HX-Request" in fragment.headers["Vary"]
    body = page(fragment)
    assert "<html" not in body and len(hits(fragment)) == 1
    assert '<p id="q-error" class="field-error search-error" role="alert" hx-swap-oob="true"></p>' in body
    long = alice.get("/search/", query_string={"q": "x" * 101}, headers=hx)
    assert long.status_code == 400 and "<html" not in page(long)
    assert 'hx-swap-oob="true">Search for at most 100 characters; this has 101.</p>' in page(long)
    # htmx restoring a page from history asks for all of it.
    restored = alice.get("/search/?q=数据库", headers={**hx, "HX-History-Restore-Request": "true"})
    assert "<html" in page(restored) and len(hits(restored)) == 1
    full = page(alice.get("/search/?q=数据库"))
    assert 'hx-trigger="input changed delay:300ms, search"' in full
    assert 'hx-target="#search-results"' in full and 'hx-push-url="true"' in full


def test_search_in_one_room_and_the_boxes_that_lead_there(app, people):
    alice = people["alice"]
    [general] = say(app, "general", "alice", "release notes")
    [secret] = say(app, "secret", "alice", "release date")
    assert found_ids(alice, "release") == [secret, general]
    scoped = alice.get("/search/?q=release&room=secret")
    assert [i for i, _ in hits(scoped)] == [secret]
    assert "Only in <bdi>secret</bdi>." in page(scoped)
    assert 'href="/search/?q=release"' in page(scoped)  # every room again
    assert '<input type="hidden" name="room" value="secret">' in page(scoped)  # typing keeps to the room
    room_page = page(alice.get("/room/secret/"))
    assert '<form class="search-box search-box-room" role="search" method="get" action="/search/">' in room_page
    assert '<input type="hidden" name="room" value="secret">' in room_page
    rooms = page(alice.get("/"))
    assert '<form class="search-box" role="search" method="get" action="/search/">' in rooms
    assert 'name="room"' not in rooms


def test_search_needs_a_login(client):
    response = client.get("/search/?q=x")
    assert response.status_code == 302 and "/login/" in response.headers["Location"]
