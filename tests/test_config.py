"""Configuration: profiles from APP_ENV, the production guards, the database URL.

config.py reads the environment when it is imported, so the import-time values are
checked in a fresh interpreter with a controlled environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import config
from config import ProductionConfig, load_config
from webchat import create_app

from .conftest import ROOT

ENV_NAMES = ("APP_ENV", "SECRET_KEY", "DATABASE_URL", "WEBCHAT_INSTANCE_DIR", "REDIS_URL")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter in the project root with only the given app settings."""
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def database_uri(**env: str) -> str:
    result = run_python("import config, json; print(json.dumps(config.Config.SQLALCHEMY_DATABASE_URI))", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


# --- production refuses to start without a secret -----------------------------------


def test_production_app_refuses_to_start_without_secret_key(tmp_path):
    result = run_python("import wsgi", APP_ENV="production", WEBCHAT_INSTANCE_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "RuntimeError: SECRET_KEY is not set" in result.stderr
    assert not (tmp_path / "secret_key").exists(), "production must not invent a key of its own"


def test_production_app_starts_with_secret_key(tmp_path):
    code = "import wsgi; print(wsgi.app.config['SECRET_KEY'], wsgi.app.config['APP_ENV'])"
    result = run_python(code, APP_ENV="production", SECRET_KEY="s3cret-from-env", WEBCHAT_INSTANCE_DIR=str(tmp_path))  # noqa: S106
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["s3cret-from-env", "production"]


@pytest.mark.parametrize("value", [None, ""])
def test_production_config_raises_a_clear_error_without_secret_key(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("SECRET_KEY", value)
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        ProductionConfig()
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        load_config("production")
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app()


def test_unknown_app_env_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("APP_ENV", "staging")
    with pytest.raises(RuntimeError, match="APP_ENV must be one of"):
        load_config()


def test_app_env_picks_the_profile(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k")
    monkeypatch.setenv("APP_ENV", "production")
    assert isinstance(load_config(), ProductionConfig)
    monkeypatch.setenv("APP_ENV", "testing")
    assert isinstance(load_config(), config.TestingConfig)


# --- cookies --------------------------------------------------------------------------


def session_cookie_header(app) -> str:
    response = app.test_client().get("/login/")  # the form's CSRF token starts a session
    assert response.status_code == 200
    cookies = [v for v in response.headers.getlist("Set-Cookie") if v.startswith("session=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_production_session_cookie_is_secure_httponly_and_samesite_lax(monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k" * 64)
    app = create_app(ProductionConfig(), SQLALCHEMY_DATABASE_URI="sqlite://")
    assert app.config["SECRET_KEY"] == "k" * 64
    cookie = session_cookie_header(app)
    flags = [part.strip() for part in cookie.split(";")]
    assert "Secure" in flags
    assert "HttpOnly" in flags
    assert "SameSite=Lax" in flags
    # the remember-me cookie gets the same protection
    assert app.config["REMEMBER_COOKIE_SECURE"] is True
    assert app.config["REMEMBER_COOKIE_HTTPONLY"] is True
    assert app.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_development_cookie_works_over_plain_http():
    app = create_app(config.TestingConfig(), SQLALCHEMY_DATABASE_URI="sqlite://")
    flags = [part.strip() for part in session_cookie_header(app).split(";")]
    assert "Secure" not in flags  # else `flask run` on http://localhost could never log in
    assert "HttpOnly" in flags
    assert "SameSite=Lax" in flags


# --- the database URL -----------------------------------------------------------------


def test_database_url_defaults_to_sqlite_under_instance():
    expected = f"sqlite:///{ROOT / 'instance' / 'webchat.sqlite3'}"
    assert database_uri() == expected
    assert config.BASE_DIR == ROOT


def test_database_url_default_follows_the_instance_dir(tmp_path):
    assert database_uri(WEBCHAT_INSTANCE_DIR=str(tmp_path)) == f"sqlite:///{tmp_path / 'webchat.sqlite3'}"


def test_create_app_uses_the_configured_database(tmp_path):
    code = "import wsgi; print(wsgi.app.config['SQLALCHEMY_DATABASE_URI'])"
    result = run_python(code, SECRET_KEY="k", WEBCHAT_INSTANCE_DIR=str(tmp_path))  # noqa: S106
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"sqlite:///{tmp_path / 'webchat.sqlite3'}"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db.example:5432/chat", "postgresql+psycopg://u:p@db.example:5432/chat"),
        (
            "postgresql://u:p@db.example/chat?sslmode=require",
            "postgresql+psycopg://u:p@db.example/chat?sslmode=require",
        ),
        # explicit drivers and other databases are left alone
        ("postgresql+psycopg://u@h/chat", "postgresql+psycopg://u@h/chat"),
        ("sqlite:////var/lib/chat.sqlite3", "sqlite:////var/lib/chat.sqlite3"),
    ],
)
def test_database_url_from_environment(given, expected):
    assert database_uri(DATABASE_URL=given) == expected
