"""Accounts: sign up (open, by invitation, or closed), log in, log out, sessions that end."""

from datetime import timedelta

from flask import Flask, request
from flask_babel import lazy_gettext
from flask_login import current_user

from ..extensions import login_manager
from . import sessions
from .cookie import VerifiedOnceSessions
from .views import SIGNUP_MODES, bp

login_manager.user_loader(sessions.load_user)

PUBLIC = frozenset({"auth.login", "auth.signup", "auth.join", "static", None})


def init_app(app: Flask) -> None:
    if app.config["SIGNUP"] not in SIGNUP_MODES:
        raise RuntimeError(f"SIGNUP must be one of {', '.join(SIGNUP_MODES)}, not {app.config['SIGNUP']!r}")
    app.permanent_session_lifetime = timedelta(days=app.config["SESSION_DAYS"])
    app.session_interface = VerifiedOnceSessions()
    # Flask-Login's "session protection" only marks a permanent session not fresh when
    # the client's address or browser changes, and nothing here asks for a fresh login:
    # a session ends when its row goes (auth/sessions.py). Off, it no longer hashes the
    # address and User-Agent on every request, nor rewrites the cookie when they change.
    login_manager.session_protection = None
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please log in to continue.")
    login_manager.localize_callback = str  # flash the text in this request's language, not a lazy object
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)

    # Every page but the account pages and static files requires a login.
    @app.before_request
    def _require_login():
        if request.endpoint in PUBLIC:
            return None
        if request.endpoint in ("live.room_socket", "live.list_socket"):
            return None  # the socket closes itself with 1008 (a redirect means nothing to it)
        if current_user.is_authenticated:
            return None
        return login_manager.unauthorized()
