"""Translations: catalogues that are complete and match the code, and Chinese pages
with no English left in them (English stays English)."""

from __future__ import annotations

import io
import re
import zoneinfo
from html.parser import HTMLParser
from types import SimpleNamespace

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from flask import abort, render_template
from sqlalchemy.exc import OperationalError

from webchat.i18n import View
from webchat.live import events, frames
from webchat.live import views as live_views
from webchat.live.broker import Person
from webchat.live.push import Renderer
from webchat.models import Quote, utcnow
from webchat.rooms.changes import reaction_summary

from .conftest import ROOT, articles, csrf_token, post_form, signup

TRANSLATIONS = ROOT / "webchat" / "translations"
LANGUAGES = ("en", "zh_Hans")


def po_path(lang: str):
    return TRANSLATIONS / lang / "LC_MESSAGES" / "messages.po"


def read_catalog(path, lang: str | None = None):
    with open(path, "rb") as f:
        return read_po(f, locale=lang)


def entries(catalog) -> list:
    return [m for m in catalog if m.id]  # the header has no id


# --- the catalogues ---------------------------------------------------------------------


def test_catalogues_have_no_untranslated_fuzzy_or_broken_entries():
    problems = []
    for lang in LANGUAGES:
        catalog = read_catalog(po_path(lang), lang)
        for m in entries(catalog):
            strings = m.string if isinstance(m.string, tuple) else (m.string,)
            if not all(strings):
                problems.append(f"{lang}: untranslated: {m.id!r}")
            if m.fuzzy:
                problems.append(f"{lang}: fuzzy (review it, then drop the flag): {m.id!r}")
        # Babel's checkers: the same %(placeholders)s as the msgid, the right number of plurals.
        for m, errors in catalog.check():
            problems += [f"{lang}: {m.id!r}: {error}" for error in errors]
    assert not problems, "\n".join(problems)


def test_the_english_catalogue_says_each_text_as_written():
    catalog = read_catalog(po_path("en"), "en")
    wrong = [m.id for m in entries(catalog) if m.string != m.id]
    assert not wrong, "en msgstr must equal msgid (bin/translations sets them): " + repr(wrong)


def extracted() -> set:
    """Every msgid the extractor finds, run as bin/translations runs it."""
    script = (ROOT / "bin" / "translations").read_text()
    extra = re.findall(r"-k (\w+)", script)
    assert extra, "bin/translations names its extra keywords with -k"
    keywords = {**DEFAULT_KEYWORDS, **{k: None for k in extra}}
    with open(ROOT / "babel.cfg") as f:
        method_map, options_map = parse_mapping_cfg(f)
    return {message for _f, _l, message, _c, _ctx in extract_from_dir(ROOT, method_map, options_map, keywords)}


def test_catalogues_hold_exactly_the_texts_in_the_code():
    found = extracted()
    assert len(found) > 100  # the extractor did read the code and the templates
    catalogs = {"messages.pot": read_catalog(TRANSLATIONS / "messages.pot")}
    catalogs.update({lang: read_catalog(po_path(lang), lang) for lang in LANGUAGES})
    problems = []
    for name, catalog in catalogs.items():
        ids = {m.id for m in entries(catalog)}
        problems += [f"{name}: missing {msgid!r}" for msgid in sorted(found - ids, key=str)]
        problems += [f"{name}: no longer in the code {msgid!r}" for msgid in sorted(ids - found, key=str)]
        problems += [f"{name}: obsolete entry {msgid!r}" for msgid in catalog.obsolete]
    assert not problems, "run bin/translations and translate what is new:\n" + "\n".join(problems)


def test_checked_in_mo_files_are_compiled_from_the_current_po_files():
    for lang in LANGUAGES:
        compiled = io.BytesIO()
        write_mo(compiled, read_catalog(po_path(lang), lang))
        compiled.seek(0)
        with open(po_path(lang).with_suffix(".mo"), "rb") as f:
            checked_in = Translations(f)
        assert Translations(compiled)._catalog == checked_in._catalog, f"{lang}: run bin/translations"


# --- no English left on a Chinese page ---------------------------------------------------

# Words a Chinese page may show, each for a reason:
ALLOWED = {
    "webchat",  # the product's name
    "UTC",  # the time zone's name, as Chinese software writes it too
    "English",  # the language select names each language in itself
    "JavaScript",  # a proper name ("实时更新需要 JavaScript")
    "KB",  # a unit's symbol ("上限 32 KB")
}
WORD = re.compile(r"[A-Za-z]{2,}")
# IANA zone identifiers ("Asia/Shanghai"), as the time-zone select and times' titles show them.
ZONE = re.compile(r"\b[A-Z][A-Za-z]+(?:/[A-Za-z0-9_+-]+)+")
ZONES = zoneinfo.available_timezones()
SHOWN_ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")


class ShownText(HTMLParser):
    """What a reader sees or hears: text outside <script>/<style>, labelling
    attributes and button values. A time-zone option's text is its IANA name."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self.hidden = 0
        self.option: str | None = None

    def handle_starttag(self, tag, attrs) -> None:
        attrs = {k: v or "" for k, v in attrs}
        if tag in ("script", "style"):
            self.hidden += 1
        self.texts += [attrs[name] for name in SHOWN_ATTRIBUTES if attrs.get(name)]
        if tag in ("input", "button") and attrs.get("type") in ("submit", "button", "reset"):
            self.texts.append(attrs.get("value", ""))
        if tag == "option":
            self.option = attrs.get("value", "")

    def handle_endtag(self, tag) -> None:
        if tag in ("script", "style"):
            self.hidden -= 1
        if tag == "option":
            self.option = None

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.option in ZONES and data.strip() == self.option.replace("_", " "):
            return  # "Asia/Ho Chi Minh": an identifier, not a sentence of ours
        self.texts.append(data)


def english_words(html: str) -> list[str]:
    parser = ShownText()
    parser.feed(html)
    texts = [ZONE.sub(lambda m: "" if m.group(0) in ZONES else m.group(0), text) for text in parser.texts]
    return [w for text in texts for w in WORD.findall(text) if w not in ALLOWED]


class Pages:
    """Collects pages and the English words each shows."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.problems: list[str] = []

    def check(self, what: str, response, status: int = 200) -> str:
        html = response.get_data(as_text=True)
        assert response.status_code == status, f"{what}: {response.status_code}\n{html[:2000]}"
        self.add(what, html)
        assert '<html lang="zh-Hans">' in html or not html.startswith("<!doctype"), what
        return html

    def add(self, what: str, html: str) -> None:
        self.seen.append(what)
        words = english_words(html)
        if words:
            self.problems.append(f"{what}: {sorted(set(words))}")

    def assert_chinese(self) -> None:
        assert not self.problems, "English on Chinese pages:\n" + "\n".join(self.problems)


def message_ids(html: str) -> list[int]:
    return sorted(articles(html))


def error_routes(app) -> None:
    """Routes that end in each error page (before the app's first request)."""
    app.add_url_rule("/abort-test/<int:code>/", "abort_test", lambda code: abort(code))

    def database_down():
        raise OperationalError("SELECT 1", {}, Exception("database down"))

    app.add_url_rule("/database-down-test/", "database_down_test", database_down)
    app.config["PROPAGATE_EXCEPTIONS"] = False  # as in production: handled, not raised into the test


def visit_account_pages(pages: Pages, client) -> None:
    """The pages of a visitor, each form also with its errors."""
    pages.check("login (after a redirect, with a flash)", client.get("/", follow_redirects=True))
    pages.check("signup", client.get("/signup/"))
    pages.check("signup, empty", post_form(client, "/signup/", {}), 400)
    bad = {"username": "张/", "password": "1234", "confirm": "12345"}
    pages.check("signup, invalid", post_form(client, "/signup/", bad), 400)
    pages.check("login, empty", post_form(client, "/login/", {}), 400)
    wrong = {"username": "没有这个人", "password": "12345678"}
    pages.check("login, wrong password", post_form(client, "/login/", wrong), 400)
    pages.check("404", client.get("/no/such/page/"), 404)
    pages.check("405", client.delete("/login/"), 405)
    pages.check("400 CSRF", client.post("/login/", data={"username": "张三丰"}), 400)


def visit_member_pages(pages: Pages, app, client, room: str, other) -> None:
    """Every page of a signed-in member, in a room with system and user messages,
    unread ones, older history and every kind of form error."""
    url = f"/room/{room}/"
    pages.check("room list", client.get("/"))
    pages.check("create", client.get("/create/"))
    for name in ("", "1/2", "1" * 51, "！！！", room):
        pages.check(f"create {name!r}", post_form(client, "/create/", {"name": name}), 400)

    pages.check("room", client.get(url))
    assert post_form(client, url, {"message": "早上好"}).status_code == 303
    for body in ("", "1" * 4001):
        pages.check(f"send {len(body)} characters", post_form(client, url, {"message": body}), 400)
    app.config["RATE_LIMIT_COUNT"] = 1  # one message sent already
    pages.check("send too fast", post_form(client, url, {"message": "二"}), 400)
    app.config["RATE_LIMIT_COUNT"] = 1000

    assert post_form(other, url, {"message": "有人吗？"}).status_code == 303
    page = pages.check("room list with unread messages", client.get("/"))
    assert 'class="unread"' in page

    app.config["PAGE_SIZE"] = 2
    page = pages.check("room, paged", client.get(url))
    ids = message_ids(page)
    fragment = client.get(f"{url}?before={ids[0]}", headers={"HX-Request": "true"})
    assert 'id="older" class="older"' in pages.check("older messages (fragment)", fragment)
    start = client.get(f"{url}?before={ids[0] - 2}", headers={"HX-Request": "true"})
    assert 'class="room-start"' in pages.check("the start of the room (fragment)", start)
    assert "history-nav" in pages.check("history page", client.get(f"{url}?before={ids[0]}"))
    pages.check("permalink", client.get(f"{url}?around={ids[0]}"))
    pages.check("404 permalink", client.get(f"{url}?around=999999999"), 404)
    app.config["PAGE_SIZE"] = 50
    visit_search_pages(pages, app, client, room, ids)  # before the message pages edit and delete
    visit_message_pages(pages, client, url)

    pages.check("settings", client.get("/settings/"))
    pages.check("mentions, none yet", client.get("/mentions/"))
    bad = {"language": "xx", "time_zone": "Mars/Olympus_Mons"}
    pages.check("settings, invalid", post_form(client, "/settings/", bad), 400)

    pages.check("404 room", client.get("/room/没有这个房间/"), 404)
    pages.check("400 bad history id", client.get(f"{url}?before=abc"), 400)
    pages.check("400 CSRF", client.post("/create/", data={"name": "三"}), 400)
    pages.check("405", client.delete(url), 405)
    for code in (403, 413, 418, 429, 500, 503):
        pages.check(f"{code}", client.get(f"/abort-test/{code}/"), code)
    pages.check("503 database down", client.get("/database-down-test/"), 503)


def visit_message_pages(pages: Pages, client, url: str) -> None:
    """Replying, editing, reacting, deleting: every page and fragment, errors included."""
    said = articles(client.get(url).get_data(as_text=True))
    mine = max(i for i, html in said.items() if "早上好" in html)
    theirs = max(i for i, html in said.items() if "有人吗" in html)
    hx = {"HX-Request": "true"}
    token = csrf_token(client.get(url).get_data(as_text=True))
    pages.check("room, replying", client.get(f"{url}?reply_to={theirs}"))
    pages.check("composer, replying (fragment)", client.get(f"{url}composer?reply_to={theirs}", headers=hx))
    pages.check("reply to nothing", post_form(client, url, {"message": "好", "reply_to": "999999"}), 400)
    assert post_form(client, url, {"message": "在的", "reply_to": str(theirs)}).status_code == 303
    pages.check("edit page", client.get(f"{url}messages/{mine}/edit"))
    pages.check("edit, empty", post_form(client, f"{url}messages/{mine}/edit", {"message": ""}), 400)
    pages.check("edit inline (fragment)", client.get(f"{url}messages/{mine}/edit", headers=hx))
    empty = client.post(f"{url}messages/{mine}/edit", data={"message": " ", "csrf_token": token}, headers=hx)
    pages.check("edit inline, empty (fragment)", empty, 422)
    edited = client.post(f"{url}messages/{mine}/edit", data={"message": "早上好！", "csrf_token": token}, headers=hx)
    pages.check("edited (fragment)", edited)
    pages.check("edit someone else's", client.get(f"{url}messages/{theirs}/edit"), 403)
    pages.check("reaction page", client.get(f"{url}messages/{theirs}/reactions?emoji=👍"))
    pages.check("menu page", client.get(f"{url}messages/{mine}/menu"))
    pages.check("menu (fragment)", client.get(f"{url}messages/{theirs}/menu", headers=hx))
    pages.check("reaction, not on offer", client.get(f"{url}messages/{theirs}/reactions?emoji=x"), 400)
    reacted = client.post(f"{url}messages/{theirs}/reactions", data={"emoji": "🎉", "csrf_token": token}, headers=hx)
    pages.check("reacted (fragment)", reacted)
    pages.check("delete page", client.get(f"{url}messages/{mine}/delete"))
    pages.check("room: edited, a reply, reactions", client.get(url))
    reply = max(articles(client.get(url).get_data(as_text=True)))
    assert post_form(client, f"{url}messages/{reply}/delete", {}, get_url=url).status_code == 303
    assert "消息已删除" in pages.check("room list, the last message deleted", client.get("/"))
    assert post_form(client, f"{url}messages/{mine}/delete", {}, get_url=url).status_code == 303
    pages.check("room: a reply to a deleted message", client.get(url))
    pages.check("404 deleted message", client.get(f"{url}messages/{mine}/edit"), 404)


def visit_search_pages(pages: Pages, app, client, room: str, ids: list[int]) -> None:
    """The search page in every state, and its htmx fragment."""
    search = "/search/"
    pages.check("search, nothing asked", client.get(search))
    found = pages.check("search, found", client.get(search, query_string={"q": "早上"}))
    assert "<mark>早上</mark>" in found
    pages.check("search, one character", client.get(search, query_string={"q": "人"}))
    pages.check("search, nothing found", client.get(search, query_string={"q": "没有这句话"}))
    pages.check("search, in one room", client.get(search, query_string={"q": "早上", "room": room}))
    from webchat.search import query

    size = query.PAGE_SIZE
    query.PAGE_SIZE = 1  # a page of one result: "older" and "newest" links
    try:
        paged = pages.check("search, paged", client.get(search, query_string={"q": "好"}))
        older = re.search(r'href="(/search/[^"]*before=[^"]*)"', paged).group(1).replace("&amp;", "&")
        pages.check("search, older results", client.get(older))
    finally:
        query.PAGE_SIZE = size
    before = {"q": "早上", "before": ids[0]}
    pages.check("search, no older results", client.get(search, query_string=before))
    pages.check("search, too long", client.get(search, query_string={"q": "长" * 101}), 400)
    hx = {"HX-Request": "true"}
    pages.check("search results (fragment)", client.get(search, query_string={"q": "早上"}, headers=hx))
    pages.check("search, too long (fragment)", client.get(search, query_string={"q": "长" * 101}, headers=hx), 400)


def browser(app, accept_language: str):
    """A test client whose every request says Accept-Language."""
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept_language
    return client


@pytest.fixture
def chinese_visitor(app):
    return browser(app, "zh-CN,zh;q=0.9,en;q=0.8")


def test_a_browser_asking_for_chinese_gets_no_english_word(app, chinese_visitor):
    error_routes(app)
    pages = Pages()
    visit_account_pages(pages, chinese_visitor)
    signup(chinese_visitor, "张小明", "12345678")
    pages.check("room list, empty, with the welcome", chinese_visitor.get("/"))
    other = app.test_client()
    signup(other, "王大锤", "12345678")
    assert post_form(other, "/create/", {"name": "闲聊室"}).status_code == 303
    assert post_form(other, "/room/闲聊室/", {"message": "大家好 123"}).status_code == 303
    visit_member_pages(pages, app, chinese_visitor, "闲聊室", other)
    pages.check("logged out", post_form(chinese_visitor, "/logout/", {}, follow=True, get_url="/"))
    assert len(pages.seen) >= 30  # the whole tour ran
    pages.assert_chinese()


def test_a_user_who_chose_chinese_gets_no_english_word_in_an_english_browser(app):
    error_routes(app)
    client = browser(app, "en-US,en;q=0.9")
    signup(client, "李小红", "12345678")
    assert "Rooms" in client.get("/").get_data(as_text=True)  # English until the setting says otherwise
    pages = Pages()
    saved = post_form(client, "/settings/", {"language": "zh_Hans", "time_zone": "Asia/Shanghai"}, follow=True)
    assert "设置已保存。" in pages.check("settings saved (said in the new language)", saved)
    pages.check("room list, empty", client.get("/"))
    assert post_form(client, "/create/", {"name": "工作群"}).status_code == 303
    other = app.test_client()
    signup(other, "赵六六", "12345678")
    assert other.get("/room/工作群/").status_code == 200  # joins: a system message
    assert post_form(other, "/room/工作群/", {"message": "大家好 123"}).status_code == 303
    visit_member_pages(pages, app, client, "工作群", other)
    assert len(pages.seen) >= 30  # the whole tour ran
    pages.assert_chinese()
    # Logged out, the browser's language is the reader's again.
    page = post_form(client, "/logout/", {}, follow=True, get_url="/").get_data(as_text=True)
    assert '<html lang="en">' in page and "You have logged out." in page


class FakeSocket:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.closed: tuple | None = None

    def send(self, data: str) -> None:
        self.sent.append(data)

    def close(self, reason: int, message: str) -> None:
        self.closed = (reason, message)


def test_live_fragments_and_socket_errors_are_chinese_too(app):
    pages = Pages()
    person = SimpleNamespace(user_id=1, username="张小明")
    headers = {"Accept-Language": "zh-CN", "Origin": "http://localhost"}
    with app.test_request_context("/ws/chat/闲聊室/", headers=headers):
        for state, reason in (("live", None), ("retry", "原因"), ("refused", "原因")):
            pages.add(f"status {state}", render_template("live/_status.html", state=state, reason=reason))
        pages.add("typing", render_template("live/_typing.html", typers=[(person, 3.0)]))
        pages.add("presence", render_template("live/_presence.html", people=[person]))
        html = render_template(
            "live/_replay.html", messages=[], anchor=None, truncated=True, room_name="闲聊室", tz="UTC"
        )
        pages.add("replay, truncated", html)
        # What the hub pushes to a Chinese view: rendered by the one renderer of every push.
        render, view = Renderer(app), View("zh_Hans", "Asia/Shanghai")
        joined = SimpleNamespace(
            id=9,
            author_id=1,
            author_name="张小明",
            body="",
            kind="system",
            event="joined",
            created_at=utcnow(),
            edited_at=None,
            quote=None,
            reactions=None,
            mentions=None,
        )
        said = SimpleNamespace(**{**vars(joined), "id": 10, "body": "你好", "kind": "user", "event": None})
        changed = SimpleNamespace(
            **{
                **vars(said),
                "id": 11,
                "edited_at": utcnow(),
                "quote": Quote.of(10, "张小明", "你好", False),
                "reactions": reaction_summary([("👍", 1, "张小明"), ("🎉", 2, "王大锤")]),
            }
        )
        for name, event in (
            ("pushed join", events.message_event(joined, None)),
            ("pushed message", events.message_event(said, joined)),
            ("pushed reply", events.message_event(changed, said)),
            ("pushed change", events.change_event(11, changed, quoted=True)),
            ("pushed deletion", events.change_event(10, None, quoted=True)),
            ("pushed presence", events.presence_event([Person(1, "张小明")])),
            ("pushed typing", events.typing_event([(Person(1, "张小明"), 3.0)])),
        ):
            pages.add(name, render(event, view))
        assert "今天" in render(events.message_event(joined, None), view)
        ws = FakeSocket()
        live_views._serve(ws, "闲聊室")  # not signed in
        pages.add("refused, logged out", ws.sent[0])
        assert ws.closed[0] == live_views.POLICY_VIOLATION and "登录" in ws.closed[1]
        for raw in (b"binary", "x" * 3000, "not json", "[]", "{}"):
            with pytest.raises(frames.BadFrame) as refused:
                frames.parse(raw, 2048)
            pages.add(f"bad frame {raw[:10]!r}", str(refused.value))
    with app.test_request_context("/ws/chat/闲聊室/", headers={**headers, "Origin": "https://elsewhere.example"}):
        ws = FakeSocket()
        live_views._serve(ws, "闲聊室")
        pages.add("refused, foreign origin", ws.sent[0])
    pages.assert_chinese()


# --- which language, and English stays English ------------------------------------------

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def html_lang(html: str) -> str:
    return re.search(r'<html lang="([^"]+)">', html).group(1)


def test_an_english_browser_gets_english(app):
    client = browser(app, "en-GB,en;q=0.9,zh;q=0.5")
    for url, words in (("/login/", "Log in"), ("/signup/", "Create your account"), ("/nowhere/", "Not found")):
        html = client.get(url).get_data(as_text=True)
        assert words in html and html_lang(html) == "en", url
        assert not CJK.search(html), url
    signup(client, "alice")
    for url in ("/", "/create/"):
        html = client.get(url).get_data(as_text=True)
        assert html_lang(html) == "en" and not CJK.search(html), url


def test_chinese_browser_gets_chinese_and_html_lang(chinese_visitor):
    html = chinese_visitor.get("/login/").get_data(as_text=True)
    assert html_lang(html) == "zh-Hans"
    assert "<h1>登录</h1>" in html and "Log in" not in html


def set_language(client, language: str) -> None:
    assert post_form(client, "/settings/", {"language": language, "time_zone": "UTC"}).status_code == 303


def test_the_users_setting_wins_over_the_browser(app, chinese_visitor):
    english_browser = browser(app, "en")
    signup(english_browser, "alice")
    set_language(english_browser, "zh_Hans")
    html = english_browser.get("/").get_data(as_text=True)
    assert html_lang(html) == "zh-Hans" and "<h1>聊天室</h1>" in html

    signup(chinese_visitor, "bob")
    assert html_lang(chinese_visitor.get("/").get_data(as_text=True)) == "zh-Hans"
    set_language(chinese_visitor, "en")
    html = chinese_visitor.get("/").get_data(as_text=True)
    assert html_lang(html) == "en" and "<h1>Rooms</h1>" in html

    set_language(chinese_visitor, "")  # back to following the browser
    assert html_lang(chinese_visitor.get("/").get_data(as_text=True)) == "zh-Hans"


def language_options(html: str) -> list[tuple[str, str]]:
    select = re.search(r'<select[^>]*name="language"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)</option>', select)


def test_settings_offer_each_language_in_its_own_name(app, chinese_visitor):
    english = app.test_client()
    signup(english, "alice")
    assert language_options(english.get("/settings/").get_data(as_text=True)) == [
        ("", "Same as the browser"),
        ("en", "English"),
        ("zh_Hans", "简体中文"),
    ]
    signup(chinese_visitor, "bob")
    assert language_options(chinese_visitor.get("/settings/").get_data(as_text=True)) == [
        ("", "跟随浏览器"),
        ("en", "English"),
        ("zh_Hans", "简体中文"),
    ]


def test_a_page_check_does_find_english():
    """The checker itself: text, attributes and button values count; scripts, styles,
    the allowed words and time-zone identifiers do not."""
    assert english_words('<p title="Hello">你好</p>') == ["Hello"]
    assert english_words('<input type="submit" value="Send"><input value="typed">') == ["Send"]
    assert english_words("<b>Rooms</b> · webchat <style>a { color: red }</style><script>x()</script>") == ["Rooms"]
    assert english_words('<option value="Asia/Ho_Chi_Minh">Asia/Ho Chi Minh</option>') == []
    assert english_words('<time title="10:00 Asia/Shanghai">10:00</time> Not/Azone') == ["Not", "Azone"]
    assert english_words('<option value="">Same as the browser</option>') == ["Same", "as", "the", "browser"]
