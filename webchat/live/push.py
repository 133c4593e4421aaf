"""Render a published event for one view: the only place pushed fragments are made.

The hub calls ``Renderer`` once per (event, view present in the room) and writes the
same encoded bytes to every socket of that view: R readers in V views cost V
renders and R writes. Every kind of push — messages, changes to them, presence,
typing — comes here.
"""

from __future__ import annotations

from flask import Flask
from flask_babel import gettext as _

from .. import i18n
from . import events
from .broker import Person


def revoke_reason(reason: str) -> str:
    texts = {
        events.REMOVED: lambda: _("You were removed from this room."),
        events.LEFT: lambda: _("You left this room."),
        events.DEACTIVATED: lambda: _("Your account has been deactivated."),
        events.LOGGED_OUT: lambda: _("You logged out. Log in again to continue."),
        events.ROOM_GONE: lambda: _("This room was deleted."),
    }
    return texts.get(reason, lambda: _("You no longer have access to this room."))()


class Renderer:
    def __init__(self, app: Flask) -> None:
        self.app = app

    def __call__(self, event: dict, view: i18n.View) -> str:
        # A fresh app context: the push may be delivered from a Redis subscriber, or
        # inside another reader's request whose language must not leak in.
        with self.app.app_context(), i18n.language(view.language):
            kind = event["kind"]
            if kind == events.MESSAGE:
                message, previous = events.read_message(event)
                return self._render("live/_push_message.html", m=message, prev=previous, tz=view.time_zone)
            if kind == events.CHANGE:
                mid, message, quote = events.read_change(event)
                return self._render("live/_push_change.html", mid=mid, m=message, quote=quote, tz=view.time_zone)
            if kind == events.PRESENCE:
                return self._render("live/_presence.html", people=[Person(*p) for p in event["people"]])
            if kind == events.REVOKE:
                return self._render("live/_status.html", state="refused", reason=revoke_reason(event["reason"]))
            if kind == events.TYPING:
                typers = [(Person(uid, name), left) for uid, name, left in event["typers"]]
                return self._render("live/_typing.html", typers=typers)
            raise ValueError(f"unknown event kind {kind!r}")

    def _render(self, name: str, **context) -> str:
        # Straight from the Jinja environment: Flask's context processors would load the
        # signed-in user (a query per view) for fragments that name no reader.
        return self.app.jinja_env.get_template(name).render(**context)
