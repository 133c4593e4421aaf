"""webchat: a server-rendered, htmx-enhanced group chat on Flask."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from config import BASE_DIR, INSTANCE_DIR, Config, load_config

from .extensions import csrf, db, login_manager, migrate, sock


def create_app(config: Config | None = None, **overrides) -> Flask:
    """Build the app. ``overrides`` win over the config object (tests use them)."""
    config = config or load_config()
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
    )
    app.config.from_object(config)
    app.config["SECRET_KEY"] = config.SECRET_KEY
    app.config.update(overrides)
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)

    if app.config["PROXY_COUNT"]:
        n = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)

    db.init_app(app)
    migrate.init_app(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    sock.init_app(app)

    from . import admin, auth, errors, fragments, i18n, live, querylog, rooms, search, security, templating

    i18n.init_app(app)
    fragments.init_app(app)
    templating.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    admin.init_app(app)
    rooms.init_app(app)
    search.init_app(app)
    live.init_app(app)
    querylog.init_app(app)
    return app
