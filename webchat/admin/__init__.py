"""Admins: the accounts page, invite links, the `flask admin` commands, and the mark
on deactivated people's names."""

from flask import Flask

from . import cli, marks
from .views import bp


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.cli.add_command(cli.admin)
    app.jinja_env.globals["deactivated_author_style"] = marks.deactivated_author_style
    marks.init_app(app)
