"""Response headers: a strict CSP and the usual hardening headers.

Styles may come from our own files plus one nonce'd <style> per page (the reader's
own-bubble rule); scripts only from our own files: no inline script, no eval.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, g


def csp_nonce() -> str:
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


CSP = (
    "default-src 'self'; script-src 'self'; style-src {style_src}; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
HARDENING = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
WITHOUT_NONCE = (("Content-Security-Policy", CSP.format(style_src="'self'")), *HARDENING)


def _headers(response: Response) -> Response:
    """Each header unless the view set its own. One pass over the answer's headers:
    Werkzeug's setdefault scans them and raises an exception per missing header, which
    cost every answer about a twentieth of its time."""
    nonce = g.get("csp_nonce")
    wanted = WITHOUT_NONCE
    if nonce:
        wanted = (("Content-Security-Policy", CSP.format(style_src=f"'self' 'nonce-{nonce}'")), *HARDENING)
    present = {name.lower() for name, _ in response.headers}
    response.headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    return response


def init_app(app: Flask) -> None:
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
