"""Flask extensions, created unbound and initialised in create_app()."""

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sock import Sock
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine

from config import SQLITE_CHECKPOINT_SECONDS, SQLITE_SYNCHRONOUS

from . import checkpoints
from .csrf import VerifiedOnceCSRF
from .grams import SQL_FUNCTION, grams

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# expire_on_commit=False: a commit must not make every loaded row (the page's
# messages, the signed-in user) reload one statement at a time on its next use.
# Sessions are short (one request, one socket frame), so rows cannot go stale.
db = SQLAlchemy(metadata=MetaData(naming_convention=NAMING), session_options={"expire_on_commit": False})
migrate = Migrate()
login_manager = LoginManager()
csrf = VerifiedOnceCSRF()
sock = Sock()


def render_as_visitor() -> None:
    """Loading the user failed (the database is down, say): let templates render as a
    visitor instead of failing again on ``current_user`` while reporting the error."""
    login_manager._update_request_context_with_user()


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets readers run beside the writer; SQLite leaves foreign keys off by default;
    synchronous: see config.SQLITE_SYNCHRONOUS (what a power cut may lose). The search
    index's triggers call ``webchat_grams`` (webchat/grams.py) on every write of a message,
    so every connection needs it. Checkpoints: webchat/checkpoints.py."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        dbapi_connection.create_function(SQL_FUNCTION, 1, grams, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()
        checkpoints.configure(dbapi_connection, SQLITE_CHECKPOINT_SECONDS)
