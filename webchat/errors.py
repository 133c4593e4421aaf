"""Friendly error pages: never a stack trace, never a bare 500."""

from __future__ import annotations

from flask import Flask, g, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db, render_as_visitor

TEXTS = {
    400: ("Bad request", "The request could not be understood. Go back, reload the page and try again."),
    403: ("Forbidden", "You are not allowed to do that."),
    404: ("Not found", "There is nothing here. The room may have a different name."),
    405: ("Not allowed", "That action is not available here."),
    413: ("Too large", "That request was too large."),
    500: ("Something went wrong", "We could not finish that. Please try again in a moment."),
    503: ("Try again", "The service is busy or restarting. Please try again in a moment."),
}


def render_error(code: int, detail: str | None = None):
    title, text = TEXTS.get(code, (f"Error {code}", "Something went wrong."))
    return render_template("errors/error.html", code=code, title=title, text=detail or text), code


def _http_error(error: HTTPException):
    if error.code is None or error.code < 400:
        return error
    body, code = render_error(error.code)
    # Keep the headers the error carries (a 405's Allow, a 401's WWW-Authenticate...).
    headers = [(k, v) for k, v in error.get_headers() if k.lower() != "content-type"]
    return body, code, headers


def _csrf_error(error: CSRFError):
    return render_error(400, "Your form expired or was sent from another site. Reload the page and try again.")


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
        return render_error(503, "The database is not answering. Please try again in a moment.")
    return render_error(500)


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(InternalServerError, _server_error)
