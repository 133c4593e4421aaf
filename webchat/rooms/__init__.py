"""Rooms: the list, creating one, a room's page and its history."""

from flask import Flask

from . import manage  # noqa: F401 - registers its routes on bp
from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
