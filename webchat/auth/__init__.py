"""Accounts: sign up, log in, log out."""

from flask import Flask
from flask_babel import lazy_gettext

from ..extensions import db, login_manager
from ..models import User
from .views import bp


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id)) if user_id.isdigit() else None


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Please log in to continue.")
    login_manager.localize_callback = str  # flash the text in this request's language, not a lazy object
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)

    # Every page but the account pages and static files requires a login.
    @app.before_request
    def _require_login():
        from flask import request
        from flask_login import current_user

        public = {"auth.login", "auth.signup", "static", None}
        if request.endpoint in public:
            return None
        if request.endpoint in ("live.room_socket", "live.list_socket"):
            return None  # the socket closes itself with 1008 (a redirect means nothing to it)
        if current_user.is_authenticated:
            return None
        return login_manager.unauthorized()
