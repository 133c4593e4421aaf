"""Login and sign-up throttles, counted in the broker so every worker and host agrees.

A login is refused (HTTP 429) once LOGIN_MAX_FAILURES attempts failed within
LOGIN_FAILURE_WINDOW for the account typed or for the client's address, before any
password is hashed: a guesser gets no answer and costs no CPU. Failures for names
nobody has count the same, so a refusal tells nothing about which names exist.
Sign-ups are counted per address per hour. ``request.remote_addr`` is the client's
address (ProxyFix sets it from X-Forwarded-For when PROXY_COUNT says to trust it).
"""

from __future__ import annotations

import math

from flask import current_app, request
from flask_babel import ngettext

from ..errors import render_error
from ..live import broker

SIGNUP_WINDOW = 3600.0


def _address() -> str:
    return request.remote_addr or "unknown"


def _login_keys(account_key: str) -> tuple[str, str]:
    return f"login:user:{account_key}", f"login:addr:{_address()}"


def login_wait(account_key: str) -> float:
    """Seconds before this account, from this address, may try again (0: now)."""
    cfg = current_app.config
    b = broker.get()
    return max(
        b.retry_after(key, cfg["LOGIN_MAX_FAILURES"], cfg["LOGIN_FAILURE_WINDOW"]) for key in _login_keys(account_key)
    )


def login_failed(account_key: str) -> None:
    b = broker.get()
    for key in _login_keys(account_key):
        b.hit(key, current_app.config["LOGIN_FAILURE_WINDOW"])


def login_succeeded(account_key: str) -> None:
    """The owner got in: the account's failures are forgotten (the address's stay)."""
    broker.get().forget(_login_keys(account_key)[0])


def signup_wait() -> float:
    return broker.get().retry_after(
        f"signup:addr:{_address()}", current_app.config["SIGNUP_MAX_PER_HOUR"], SIGNUP_WINDOW
    )


def signed_up() -> None:
    broker.get().hit(f"signup:addr:{_address()}", SIGNUP_WINDOW)


def too_many(wait: float):
    """The 429 page: when to try again, in whole minutes (rounded up), and Retry-After."""
    minutes = max(1, math.ceil(wait / 60))
    text = ngettext(
        "Too many attempts. Try again in %(num)d minute.", "Too many attempts. Try again in %(num)d minutes.", minutes
    )
    body, code = render_error(429, text)
    return body, code, {"Retry-After": str(math.ceil(wait))}
