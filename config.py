"""Configuration from environment variables.

APP_ENV picks the profile: ``development`` (default for ``flask run`` and the quick
start), ``production`` (the Procfile's default) or ``testing``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("WEBCHAT_INSTANCE_DIR", BASE_DIR / "instance"))


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def _database_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        return f"sqlite:///{INSTANCE_DIR / 'webchat.sqlite3'}"
    # Heroku-style URLs say postgres://; SQLAlchemy wants an explicit driver.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


# SQLite's WAL mode with synchronous=NORMAL: a commit is written to the WAL but not
# fsync'ed each time. The database can never be corrupted, and an app crash loses
# nothing; an OS crash or power cut can lose the last commits before it (messages
# sent in the last moment). FULL fsyncs every commit: durable through a power cut,
# several times fewer posts per second. PostgreSQL is not affected (its own settings).
SQLITE_SYNCHRONOUS = os.environ.get("SQLITE_SYNCHRONOUS", "NORMAL").upper()
if SQLITE_SYNCHRONOUS not in ("OFF", "NORMAL", "FULL", "EXTRA"):
    raise RuntimeError(f"SQLITE_SYNCHRONOUS must be NORMAL or FULL, not {SQLITE_SYNCHRONOUS!r}")


# Seconds between WAL checkpoints, run by a native thread of each process instead of
# inside whichever request's commit fills the WAL (webchat/checkpoints.py); 0: SQLite's
# own (every 1,000 pages, by that commit).
SQLITE_CHECKPOINT_SECONDS = _env_float("SQLITE_CHECKPOINT_SECONDS", 1.0)


def _engine_options(url: str) -> dict:
    options: dict = {}
    if url.startswith("postgresql"):
        # A restarted server costs no failed request. Not for SQLite: a file has no
        # server to lose, and the ping was one more statement on every request.
        options["pool_pre_ping"] = True
        # Per worker process; psycopg waits cooperatively under gevent, and sockets hold
        # no connection while idle, so only requests in flight use one. A greenlet that
        # finds the pool exhausted fails after DB_POOL_TIMEOUT instead of hanging for 30 s.
        options.update(
            pool_size=_env_int("DB_POOL_SIZE", 5),
            max_overflow=_env_int("DB_MAX_OVERFLOW", 10),
            pool_timeout=_env_float("DB_POOL_TIMEOUT", 10.0),
            pool_recycle=1800,  # outlive idle-connection reapers (PgBouncer, cloud proxies)
        )
    return options


def _dev_secret_key() -> str:
    """A key generated once and kept under instance/, so logins survive restarts."""
    path = INSTANCE_DIR / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        path.write_text(key)
        path.chmod(0o600)
        return key


class Config:
    APP_ENV = "development"
    SQLALCHEMY_DATABASE_URI = _database_url()
    SQLALCHEMY_ENGINE_OPTIONS = _engine_options(SQLALCHEMY_DATABASE_URI)
    REDIS_URL = os.environ.get("REDIS_URL") or None
    REDIS_KEY_PREFIX = os.environ.get("REDIS_KEY_PREFIX", "webchat:")
    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # The cookie is sent again when the session's row is touched (at most once a day,
    # webchat/auth/sessions.py), not with every answer: re-signing it cost every page
    # about a tenth of its time, and its expiry still follows the session's.
    SESSION_REFRESH_EACH_REQUEST = False
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"

    # Origins allowed to open the WebSocket, besides the page's own host.
    ALLOWED_ORIGINS = [o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "").split(",") if o.strip()]
    # Number of reverse proxies in front of the app whose X-Forwarded-* we trust.
    PROXY_COUNT = _env_int("PROXY_COUNT", 0)

    PAGE_SIZE = _env_int("PAGE_SIZE", 50)
    # Rendered fragments kept per process (webchat/fragments.py): history slices of
    # ~30 KB and room-list entries of ~0.5 KB.
    FRAGMENT_CACHE_SIZE = _env_int("FRAGMENT_CACHE_SIZE", 1000)
    MESSAGE_MAX_CHARS = 4000
    RATE_LIMIT_COUNT = _env_int("RATE_LIMIT_COUNT", 10)
    RATE_LIMIT_WINDOW = _env_float("RATE_LIMIT_WINDOW", 10.0)

    # Live rooms: heartbeat frames keep the status "live", refresh presence and find
    # half-dead sockets; the page shows "reconnecting" after STALE_AFTER without one.
    HEARTBEAT_SECONDS = _env_float("HEARTBEAT_SECONDS", 10.0)
    PRESENCE_TTL_SECONDS = _env_float("PRESENCE_TTL_SECONDS", 35.0)
    TYPING_TTL_SECONDS = _env_float("TYPING_TTL_SECONDS", 5.0)
    WS_QUEUE_FRAMES = _env_int("WS_QUEUE_FRAMES", 1000)
    WS_MAX_FRAME_BYTES = _env_int("WS_MAX_FRAME_BYTES", 32 * 1024)
    WS_REPLAY_LIMIT = _env_int("WS_REPLAY_LIMIT", 500)
    SOCK_SERVER_OPTIONS = {"max_message_size": 1024 * 1024}
    # Accounts. SIGNUP: "open" (anyone), "invite" (only with an admin's invite link)
    # or "closed" (nobody, invite links included).
    SIGNUP = os.environ.get("SIGNUP", "open").strip().lower()
    # A session ends after this many days without a request (and on logout).
    SESSION_DAYS = _env_int("SESSION_DAYS", 30)
    # Failed logins per account and per client address within LOGIN_FAILURE_WINDOW
    # seconds before further attempts are refused (HTTP 429) without checking a password.
    LOGIN_MAX_FAILURES = _env_int("LOGIN_MAX_FAILURES", 10)
    LOGIN_FAILURE_WINDOW = 15 * 60
    SIGNUP_MAX_PER_HOUR = _env_int("SIGNUP_MAX_PER_HOUR", 20)

    # Diagnostics: append the SQL statements of every request and socket unit to this
    # file as JSON lines (webchat/querylog.py). Off unless set.
    QUERY_LOG = os.environ.get("QUERY_LOG") or None

    def __init__(self) -> None:
        self.SECRET_KEY = os.environ.get("SECRET_KEY") or self.default_secret_key()

    def default_secret_key(self) -> str:
        return _dev_secret_key()


class DevelopmentConfig(Config):
    APP_ENV = "development"


class TestingConfig(Config):
    APP_ENV = "testing"
    TESTING = True

    def default_secret_key(self) -> str:
        return "testing-secret-key"


class ProductionConfig(Config):
    APP_ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"

    def default_secret_key(self) -> str:
        raise RuntimeError(
            "SECRET_KEY is not set. Production refuses to start without it: "
            'set it to a long random value, e.g. python -c "import secrets; print(secrets.token_hex(32))"'
        )


PROFILES = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config(env: str | None = None) -> Config:
    name = env or os.environ.get("APP_ENV", "development")
    try:
        return PROFILES[name]()
    except KeyError:
        raise RuntimeError(f"APP_ENV must be one of {sorted(PROFILES)}, not {name!r}") from None
