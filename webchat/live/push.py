"""Render a published event for one view: the only place pushed fragments are made.

The hub calls ``Renderer`` once per (event, view present in the room) and writes the
same encoded bytes to every socket of that view: R readers in V views cost V
renders and R writes. Every kind of push — messages, changes to them, presence,
typing — comes here.
"""

from __future__ import annotations

import json
from contextlib import nullcontext

from flask import Flask, has_app_context
from flask_babel import gettext as _

from .. import i18n
from ..fragments import FragmentCache
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
        self._kept = FragmentCache(512)

    def __call__(self, event: dict, view: i18n.View) -> str:
        if event["kind"] in (events.MESSAGE, events.CHANGE):  # each one new
            return self._fresh(event, view)
        # Presence, typing, revocations repeat the same few states: kept per view.
        key = ("push", view, json.dumps(event, sort_keys=True))
        found = self._kept.get(key)
        if found is None:
            found = self._fresh(event, view)
            self._kept.put(key, found)
        return found

    def _fresh(self, event: dict, view: i18n.View) -> str:
        # Delivered from a Redis subscriber there is no app context: make one. Inside a
        # request (the in-process broker), force_locale switches the language and puts the
        # request's own back afterwards.
        scope = nullcontext() if has_app_context() else self.app.app_context()
        with scope, i18n.language(view.language):
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
        # signed-in user (a query per view) for fragments that name no reader. The
        # message macros come in the context: a template's own {% from %} import costs
        # more than the rendering (Jinja recomputes the importing context's globals).
        env = self.app.jinja_env
        return env.get_template(name).render(macros=env.get_template("rooms/_message.html").module, **context)
