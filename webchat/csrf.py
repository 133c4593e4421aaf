"""CSRF protection: Flask-WTF's, with each token signed and checked once per process.

A page's forms all carry the same signed token, and a busy writer sends it with every
message. Flask-WTF builds a serializer and checks the token's HMAC on every POST,
which cost a post about a twentieth of its time; here a token that passed that check
is remembered (by its exact text, with the session value it signs). A remembered token
still has to match this request's session, and the referrer rule still applies; any
other token (a forged one, one changed by a byte) goes through Flask-WTF's own check.
Pages get the same signed token for the same session token, signed once: signing it
again for every page cost a room page about a twentieth of its time.
Only while tokens never expire (WTF_CSRF_TIME_LIMIT = None, config.py): an expiring
token must be checked for its age each time, and signed anew.
"""

from __future__ import annotations

import hmac

from flask import Flask, current_app, g, request, session
from flask_wtf.csrf import CSRFProtect, generate_csrf, same_origin

from .memo import Kept


class VerifiedOnceCSRF(CSRFProtect):
    def __init__(self, app=None, size: int = 4096) -> None:
        self._verified = Kept(size)
        self._signed = Kept(size)
        super().__init__(app)

    def init_app(self, app: Flask) -> None:
        super().init_app(app)
        # Templates call csrf_token(): this one (registered after Flask-WTF's, so it wins).
        app.jinja_env.globals["csrf_token"] = self.generate
        app.context_processor(lambda: {"csrf_token": self.generate})

    def generate(self) -> str:
        """The signed token of this session's CSRF token (Flask-WTF's generate_csrf)."""
        config = current_app.config
        raw = session.get(config["WTF_CSRF_FIELD_NAME"])
        if config["WTF_CSRF_TIME_LIMIT"] is not None or not isinstance(raw, str):
            return generate_csrf()  # a session without one gets one here
        key = (current_app.secret_key, raw)
        token = self._signed.get(key)
        if token is None:
            token = generate_csrf()
            self._signed.keep(key, token)
            self._verified.keep((current_app.secret_key, token), raw)
        return token

    def protect(self, apply_exemptions: bool = False) -> None:
        config = current_app.config
        if apply_exemptions and (not request.endpoint or self._is_exempt()):
            return
        if request.method not in config["WTF_CSRF_METHODS"]:
            return
        token = self._get_csrf_token()
        key = (current_app.secret_key, token)
        signed = self._verified.get(key) if token else None
        mine = session.get(config["WTF_CSRF_FIELD_NAME"])
        if signed is None or not isinstance(mine, str) or not hmac.compare_digest(mine, signed):
            super().protect()  # raises CSRFError unless the token is good
            if config["WTF_CSRF_TIME_LIMIT"] is None:
                self._verified.keep(key, session[config["WTF_CSRF_FIELD_NAME"]])
            return
        # Flask-WTF's referrer rule, as its protect() applies it after the token check.
        if request.is_secure and config["WTF_CSRF_SSL_STRICT"]:
            if not request.referrer:
                self._error_response("The referrer header is missing.")
            if not same_origin(request.referrer, f"https://{request.host}/"):
                self._error_response("The referrer does not match the host.")
        g.csrf_valid = True
