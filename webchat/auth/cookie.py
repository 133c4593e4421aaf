"""The session cookie: Flask's signed cookie, its signature checked once per process.

A signed-in browser sends the same cookie with every request until the session
changes. Checking its HMAC and decoding its JSON again each time cost a post about a
twentieth of its time, so the decoded contents of each cookie that passed the check
are kept, keyed by the cookie's exact text. A cookie never seen here (a forged one,
or one changed by a single byte) is a different key and is checked in full; a kept one
is still refused once older than the session's lifetime, as itsdangerous would.
"""

from __future__ import annotations

import time

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..memo import Kept

# Only flat values are shared between requests: a list (Flask's flashed messages) is
# changed in place by whoever holds the session, so such cookies are never kept.
_SHAREABLE = (str, int, float, bool, type(None))


class VerifiedOnceSessions(SecureCookieSessionInterface):
    def __init__(self, size: int = 4096) -> None:
        self._verified = Kept(size)
        self._serializers: dict[tuple, URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        # Built once per key set (Flask builds one per request and per saved cookie).
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        if keys not in self._serializers:
            self._serializers[keys] = super().get_signing_serializer(app)
        return self._serializers[keys]

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        value = request.cookies.get(self.get_cookie_name(app))
        if not value:
            return super().open_session(app, request)
        key = (app.secret_key, value)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        kept = self._verified.get(key)
        if kept is not None and 0 <= int(time.time()) - kept[1] <= max_age:
            return self.session_class(kept[0])
        serializer = self.get_signing_serializer(app)
        if serializer is None:
            return None
        try:
            data, signed_at = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:  # expired ones too (SignatureExpired is one)
            self._verified.pop(key, None)
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(v, _SHAREABLE) for v in data.values()):
            self._verified.keep(key, (dict(data), int(signed_at.timestamp())))
        return self.session_class(data)
