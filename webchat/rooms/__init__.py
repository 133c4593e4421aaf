"""Rooms: the list, creating one, a room's page and its history, and messages that change."""

from flask import Flask

from . import manage, mentioned, messages  # noqa: F401 - they register their routes on bp
from .changes import PALETTE, reaction_groups
from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.jinja_env.filters["reaction_groups"] = reaction_groups
    app.jinja_env.globals["REACTIONS"] = PALETTE
