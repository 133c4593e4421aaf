"""Friendly error pages: never a stack trace, never a bare 500."""

from __future__ import annotations

from flask import Flask, g, render_template
from flask_babel import gettext, lazy_gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db, render_as_visitor

# Lazy: each page is rendered in its reader's language.
TEXTS = {
    400: (
        lazy_gettext("Bad request"),
        lazy_gettext("The request could not be understood. Go back, reload the page and try again."),
    ),
    403: (lazy_gettext("Forbidden"), lazy_gettext("You are not allowed to do that.")),
    404: (lazy_gettext("Not found"), lazy_gettext("There is nothing here. The room may have a different name.")),
    405: (lazy_gettext("Not allowed"), lazy_gettext("That action is not available here.")),
    413: (lazy_gettext("Too large"), lazy_gettext("That request was too large.")),
    429: (
        lazy_gettext("Too many requests"),
        lazy_gettext("You are doing that too often. Wait a moment and try again."),
    ),
    500: (
        lazy_gettext("Something went wrong"),
        lazy_gettext("We could not finish that. Please try again in a moment."),
    ),
    503: (lazy_gettext("Try again"), lazy_gettext("The service is busy or restarting. Please try again in a moment.")),
}


def render_error(code: int, detail: str | None = None):
    title, text = TEXTS.get(code) or (gettext("Error %(code)d", code=code), TEXTS[500][1])
    return render_template("errors/error.html", code=code, title=title, text=detail or text), code


def _http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    body, code = render_error(error.code)
    # Keep the headers the error carries (a 405's Allow, a 401's WWW-Authenticate...).
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return body, code, headers


def _csrf_error(error: CSRFError):
    return render_error(400, gettext("Your form expired or was sent from another site. Reload the page and try again."))


def _server_error(error: Exception):
    db.session.rollback()
    if isinstance(error, HTTPException) and not isinstance(error, InternalServerError):
        return _http_error(error)
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    original = getattr(error, "original_exception", error)
    if "_login_user" not in g:
        render_as_visitor()  # else the page's header fails again, leaving a bare 500
    if isinstance(original, (OperationalError, PoolTimeout)):
        return render_error(503, gettext("The database is not answering. Please try again in a moment."))
    return render_error(500)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
