"""Languages: English and 简体中文, chosen per reader.

The signed-in user's setting wins; otherwise the browser's Accept-Language (any
``zh`` variant reads 简体中文); otherwise English. A *view* is what a reader sees
beyond the data itself — (language, time zone) — and pushed fragments are rendered
once per view (``webchat/live/views`` of a room), never once per reader.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import NamedTuple

from babel import Locale
from flask import Flask, g, has_request_context, request
from flask_babel import Babel, force_locale, get_locale, get_translations
from flask_login import current_user

from config import BASE_DIR

DEFAULT = "en"
# Codes as Babel spells them (the catalogue folders' names), with their own names.
LANGUAGES = {"en": "English", "zh_Hans": "简体中文"}
HTML_LANG = {"en": "en", "zh_Hans": "zh-Hans"}

babel = Babel()


class View(NamedTuple):
    """What a pushed fragment depends on besides the data: sockets of one view share
    one rendering (webchat/live/push.py)."""

    language: str
    time_zone: str


def language_from_header() -> str:
    """Accept-Language, primary tags only: zh, zh-CN, zh-TW, zh-Hans... all read zh_Hans."""
    if not has_request_context():
        return DEFAULT
    for value, _quality in request.accept_languages:  # already sorted by quality
        primary = value.split("-")[0].split("_")[0].lower()
        if primary == "zh":
            return "zh_Hans"
        if primary == "en":
            return "en"
    return DEFAULT


def reader_language() -> str:
    setting = getattr(current_user, "language", None) if current_user else None
    return setting if setting in LANGUAGES else language_from_header()


def current_language() -> str:
    locale = get_locale()
    return "zh_Hans" if locale is not None and locale.language == "zh" else DEFAULT


def html_lang() -> str:
    return HTML_LANG[current_language()]


_LOCALES = {code: Locale.parse(code) for code in LANGUAGES}  # parsed once: pushes switch often


@contextmanager
def language(code: str):
    """Render in ``code`` for a while (a pushed fragment for one view)."""
    with force_locale(_LOCALES.get(code, _LOCALES[DEFAULT])):
        yield


_CATALOGUES: dict[Locale, object] = {}


def catalogue():
    """The catalogue of the language being rendered (the reader's, or a push's view).

    Flask-Babel's template callables find it through about nine lookups of flask.g per
    text, a sixth of a room page's time for its twenty texts; this reads the locale
    with one and keeps each language's catalogue (loaded once per process either way)."""
    # Flask-Babel 4.0 (pinned) keeps the locale it chose, or the one forced for a push's
    # view, on g._flask_babel; get_locale() finds it there too, three lookups of g later.
    locale = getattr(g.get("_flask_babel"), "babel_locale", None) or get_locale()
    found = _CATALOGUES.get(locale)
    if found is None:
        found = _CATALOGUES[locale] = get_translations()
    return found


def init_app(app: Flask) -> None:
    babel.init_app(
        app,
        locale_selector=reader_language,
        default_translation_directories=str(BASE_DIR / "webchat" / "translations"),
    )
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: catalogue().ugettext(s),
        ngettext=lambda s, p, n: catalogue().ungettext(s, p, n),
        pgettext=lambda c, s: catalogue().upgettext(c, s),
        npgettext=lambda c, s, p, n: catalogue().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.globals.update(html_lang=html_lang, LANGUAGES=LANGUAGES)
