"""What the benchmarks share: the server under test, signing in, CPU accounting, formatting.

The scripts run as ``python bench/<name>.py`` from the repository root and import this as
``bench.common`` (each puts the root on ``sys.path`` and takes ``bench/`` off it, where
``bench/http.py`` would shadow the standard library's ``http``).

``Server`` starts webchat the way production runs it: ``gunicorn -c gunicorn.conf.py
wsgi:app`` (gevent worker, ``APP_ENV=production``, a random ``SECRET_KEY``, the per-user
rate limiter out of reach), pinned with ``taskset``, on a fresh database: SQLite in a
temporary directory, or a new database created on the PostgreSQL server of
``--database-url`` and dropped afterwards. Every loop here is bounded in count and time;
all traffic is to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
# Every request of a bench user, signing in and under load, names the same browser, as a
# real browser does (webchat used to rewrite the cookie when it changed: auth/__init__.py).
USER_AGENT = "webchat-bench"
CSRF_RE = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')
AFTER_RE = re.compile(r"/ws/chat/[^\"?]*\?after=(\d+)")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- the server under test ----------------------------------------------------------


def plain_postgres_url(url: str, dbname: str | None = None) -> str:
    """``postgresql://...`` as psycopg takes it (SQLAlchemy's driver suffix dropped), optionally another database."""
    for prefix in ("postgresql+psycopg://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
    if dbname is not None:
        url = urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path="/" + dbname))
    return url


def is_postgres(url: str | None) -> bool:
    return bool(url) and url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://"))


class Server:
    """``gunicorn -c gunicorn.conf.py <app>`` on a fresh database, pinned to ``server_cpus``.

    ``database_url``: None for SQLite in ``tmp``, or a PostgreSQL server's admin URL, on
    which ``prepare()`` creates a database of its own and ``stop()`` drops it.
    ``app_root``: the checkout the server (and its migration) runs from, with its own
    gunicorn.conf.py, wsgi.py and migrations; this bench's checkout by default. Another
    checkout of an older commit is measured by the current bench code.
    """

    def __init__(
        self,
        tmp: Path,
        *,
        app: str = "wsgi:app",
        app_env: str = "production",
        workers: int = 1,
        redis: str | None = None,
        server_cpus: str = "0",
        database_url: str | None = None,
        ready_path: str = "/login/",
        app_root: Path | None = None,
    ) -> None:
        if database_url and not is_postgres(database_url):
            raise ValueError(f"--database-url must be a PostgreSQL URL (postgresql://...), not {database_url!r}")
        self.tmp = tmp
        self.app = app
        self.root = Path(app_root).resolve() if app_root else ROOT
        self.workers_wanted = workers
        self.redis = redis
        self.server_cpus = server_cpus
        self.ready_path = ready_path
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp / f"server-{self.port}.log"
        self.redis_prefix = f"webchat-bench-{os.getpid()}-{secrets.token_hex(3)}:"
        self.admin_url = plain_postgres_url(database_url) if database_url else None
        self.db_name: str | None = None
        self.db_created = False
        self.sqlite_path = tmp / "bench.sqlite3"
        if self.admin_url:
            self.db_name = f"webchat_bench_{os.getpid()}_{secrets.token_hex(3)}"
            db_url = plain_postgres_url(self.admin_url, self.db_name)
        else:
            db_url = f"sqlite:///{self.sqlite_path}"
        self.env = {
            **os.environ,
            "APP_ENV": app_env,
            "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": db_url,
            "WEBCHAT_INSTANCE_DIR": str(tmp / "instance"),
            "BIND": f"{HOST}:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "RATE_LIMIT_COUNT": "1000000000",
            "SIGNUP_MAX_PER_HOUR": "1000000000",
            "LOG_LEVEL": "warning",
            "FLASK_APP": "wsgi",
        }
        self.env.pop("REDIS_URL", None)
        self.env.pop("ACCESS_LOG", None)
        if redis:
            self.env["REDIS_URL"] = redis
            self.env["REDIS_KEY_PREFIX"] = self.redis_prefix
        self.conf = "gunicorn.conf.py"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def database(self) -> str:
        """What the report says about the database (no password)."""
        if not self.admin_url:
            return "SQLite"
        parts = urllib.parse.urlsplit(self.admin_url)
        return f"PostgreSQL {parts.hostname}:{parts.port or 5432}/{self.db_name}"

    def prepare(self) -> None:
        """Create the database (PostgreSQL) and migrate it with ``flask --app wsgi db upgrade``."""
        if self.admin_url:
            import psycopg

            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'CREATE DATABASE "{self.db_name}"')
            self.db_created = True
        env = {k: v for k, v in self.env.items() if k != "REDIS_URL"}
        cmd = [sys.executable, "-m", "flask", "--app", "wsgi", "db", "upgrade"]
        out = subprocess.run(cmd, cwd=self.root, env=env, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"migration failed:\n{out.stdout}\n{out.stderr}")

    def scalar(self, sql: str) -> object:
        """One value from the bench's database, read directly (not through the app)."""
        if self.admin_url:
            import psycopg

            with psycopg.connect(plain_postgres_url(self.admin_url, self.db_name), connect_timeout=10) as conn:
                return conn.execute(sql).fetchone()[0]
        conn = sqlite3.connect(self.sqlite_path, timeout=30)
        try:
            return conn.execute(sql).fetchone()[0]
        finally:
            conn.close()

    def command(self) -> list[str]:
        gunicorn = [sys.executable, "-m", "gunicorn", "-c", self.conf, self.app]
        return taskset(self.server_cpus, gunicorn)

    def start(self, timeout: float = 30.0) -> None:
        self.log_file = open(self.log_path, "ab")  # closed in stop()
        self.proc = subprocess.Popen(
            self.command(),
            cwd=self.root,
            env=self.env,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited (code {self.proc.returncode}):\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=1)
                conn.request("GET", self.ready_path)
                conn.getresponse().read()
                conn.close()
                if len(self.workers()) >= self.workers_wanted:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, n: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def workers(self) -> list[int]:
        if self.proc is None:
            return []
        try:
            text = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return []
        return [int(p) for p in text.split()]

    def per_worker(self) -> dict[int, tuple[int, int]]:
        """pid -> (RSS in KB, open file descriptors) for each worker."""
        out = {}
        for pid in self.workers():
            try:
                out[pid] = (rss_kb(pid), len(os.listdir(f"/proc/{pid}/fd")))
            except (OSError, StopIteration):
                pass
        return out

    def rss_kb(self) -> int:
        total = 0
        for pid in self.workers():
            try:
                total += rss_kb(pid)
            except (OSError, StopIteration):
                pass
        return total

    def cpu_seconds(self) -> float:
        """User + system CPU time of the worker(s) so far."""
        return sum(process_cpu_seconds(pid) for pid in self.workers())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            self.log_file.close()
        if self.redis:
            self.forget_redis_keys()
        if self.db_created:
            self.drop_database()

    def drop_database(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            self.db_created = False
        except psycopg.Error as exc:
            log(f"could not drop the bench database {self.db_name}: {exc}")

    def forget_redis_keys(self) -> None:
        """Delete this run's own keys (its unique prefix) from Redis, bounded."""
        try:
            import redis
        except ImportError:
            return
        try:
            client = redis.Redis.from_url(self.redis, socket_timeout=2)
            keys = list(client.scan_iter(match=self.redis_prefix + "*", count=500))[:100000]
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.close()
        except redis.RedisError as exc:
            log(f"could not clean Redis keys {self.redis_prefix}*: {exc}")


def rss_kb(pid: int) -> int:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("VmRSS:"))


def process_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    except (OSError, IndexError, ValueError):
        return 0.0


# --- HTTP: a user with cookies and CSRF -----------------------------------------------


class User:
    """Signs up and keeps its own cookies (``Set-Cookie`` in, ``Cookie`` out), even Secure ones."""

    def __init__(self, server: Server, name: str) -> None:
        self.server = server
        self.name = name
        self.cookies: dict[str, str] = {}

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, form: dict | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection(HOST, self.server.port, timeout=60)
        headers = {"User-Agent": USER_AGENT, **({"Cookie": self.cookie_header()} if self.cookies else {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read().decode(errors="replace")
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for key, morsel in jar.items():
                if morsel.value and morsel["expires"] not in ("Thu, 01 Jan 1970 00:00:00 GMT",):
                    self.cookies[key] = morsel.value
                else:
                    self.cookies.pop(key, None)
        conn.close()
        return resp.status, text

    def set_view(self, language: str, time_zone: str) -> None:
        """Save the language ("" = the browser's, "en", "zh_Hans") and time zone through
        ``/settings/``, as the form would; sockets opened afterwards get that view."""
        status, text = self.submit("/settings/", {"language": language, "time_zone": time_zone})
        if status != 303:
            raise RuntimeError(f"settings of {self.name} failed ({status}): {text[-500:]}")

    def csrf_token(self, path: str) -> str:
        status, page = self.request("GET", path)
        match = CSRF_RE.search(page)
        if not match:
            raise RuntimeError(f"no CSRF token on {path} ({status})")
        return match.group(1)

    def submit(self, path: str, fields: dict) -> tuple[int, str]:
        return self.request("POST", path, {**fields, "csrf_token": self.csrf_token(path)})

    def signup(self) -> User:
        password = "bench-" + secrets.token_hex(8)
        status, text = self.submit("/signup/", {"username": self.name, "password": password, "confirm": password})
        if status != 303:
            raise RuntimeError(f"signup of {self.name} failed ({status}): {text[-500:]}")
        return self

    def create_room(self, room: str) -> None:
        status, text = self.submit("/create/", {"name": room})
        if status != 303:
            raise RuntimeError(f"creating room {room} failed ({status}): {text[-500:]}")

    def enter(self, room: str) -> int:
        """GET the room page (which makes the user a member); the page's newest message id."""
        status, page = self.request("GET", room_path(room))
        if status != 200:
            raise RuntimeError(f"{self.name} could not enter {room} ({status}): {page[-500:]}")
        match = AFTER_RE.search(page)
        return int(match.group(1)) if match else 0


def room_path(room: str) -> str:
    return f"/room/{urllib.parse.quote(room)}/"


# --- CPUs: pinning and accounting -----------------------------------------------------


def cpu_set(cpus: str) -> set[int]:
    wanted: set[int] = set()
    for part in cpus.split(","):
        if part.strip():
            lo, _, hi = part.partition("-")
            wanted.update(range(int(lo), int(hi or lo) + 1))
    return wanted


def busy_seconds(cpus: set[int]) -> float:
    """Busy (non-idle, non-iowait) time of these CPUs from /proc/stat, in seconds."""
    total = 0
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            name, *values = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                ticks = [int(v) for v in values[:8]]
                total += sum(ticks) - ticks[3] - ticks[4]
    except OSError:
        return 0.0
    return total / CLK_TCK


def pin_self(cpus: str) -> None:
    if not cpus:
        return
    wanted = cpu_set(cpus)
    available = os.sched_getaffinity(0)
    if wanted & available:
        os.sched_setaffinity(0, wanted & available)


def taskset(cpus: str, cmd: list[str]) -> list[str]:
    """``cmd`` pinned to ``cpus`` when there is a CPU list and taskset."""
    if cpus and shutil.which("taskset"):
        return ["taskset", "-c", cpus, *cmd]
    return cmd


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))


@dataclass
class CpuShares:
    """CPU use over one measured window; shares are of one core (1.0 = 100 %)."""

    wall: float
    server_seconds: float  # worker CPU time spent in the window
    server: float  # worker CPU / wall
    client: float  # this process and its finished children (wrk) / wall
    other_server: float | None  # busy share of the server's cores not used by the worker(s)
    other_client: float | None  # same for the client's cores
    client_core: float | None  # busy share of the client's cores, everything included


class CpuMeter:
    """Worker, client and per-core CPU over a window: ``start()``, the load, ``stop()``.

    The client's CPU is this process plus the children it reaped in the window (a wrk run),
    from getrusage. 'Other load' is the rest of the busy time of the cores (other
    processes, loopback softirqs): when it is high, the run was disturbed.
    """

    def __init__(self, server: Server, server_cpus: str, client_cpus: str) -> None:
        self.server = server
        self.server_cores = cpu_set(server_cpus)
        self.client_cores = cpu_set(client_cpus)

    @staticmethod
    def _own_cpu() -> float:
        total = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            r = resource.getrusage(who)
            total += r.ru_utime + r.ru_stime
        return total

    def start(self) -> None:
        self.busy_s0, self.busy_c0 = busy_seconds(self.server_cores), busy_seconds(self.client_cores)
        self.own0, self.srv0, self.wall0 = self._own_cpu(), self.server.cpu_seconds(), time.monotonic()

    def stop(self) -> CpuShares:
        wall = max(1e-9, time.monotonic() - self.wall0)
        own, srv = self._own_cpu(), self.server.cpu_seconds()
        busy_s, busy_c = busy_seconds(self.server_cores), busy_seconds(self.client_cores)
        server = (srv - self.srv0) / wall
        client = (own - self.own0) / wall
        return CpuShares(
            wall=wall,
            server_seconds=srv - self.srv0,
            server=server,
            client=client,
            other_server=max(0.0, (busy_s - self.busy_s0) / wall - server) if self.server_cores else None,
            other_client=max(0.0, (busy_c - self.busy_c0) / wall - client) if self.client_cores else None,
            client_core=(busy_c - self.busy_c0) / wall / len(self.client_cores) if self.client_cores else None,
        )


# --- command line ------------------------------------------------------------------------


def add_database_option(p: argparse.ArgumentParser) -> None:
    """--database-url: SQLite by default, or a fresh database on a PostgreSQL server."""
    p.add_argument(
        "--database-url",
        metavar="URL",
        default=None,
        help="a PostgreSQL server's admin URL, e.g. postgresql://postgres@127.0.0.1:5432/postgres: the bench\n"
        "creates a fresh database there and drops it afterwards (default: SQLite in a temporary directory)",
    )


def add_server_options(p: argparse.ArgumentParser) -> None:
    """The options every bench shares: the database, the profile, the pinning."""
    add_database_option(p)
    p.add_argument("--app-env", default="production", choices=["production", "testing"], help="APP_ENV (production)")
    p.add_argument("--server-cpus", default="0", help="taskset CPU list for gunicorn (0); '' to not pin")
    p.add_argument("--client-cpus", default="1", help="CPU list for the load generator (1); '' to not pin")
    p.add_argument(
        "--app-root",
        metavar="DIR",
        type=Path,
        default=None,
        help="start the server (and migrate its database) from this checkout instead of the bench's own,\n"
        "e.g. an older commit: git worktree add /tmp/webchat-old 7483078; the bench code stays this one",
    )


def server_options(args: argparse.Namespace) -> dict:
    """``Server`` keyword arguments from the options of ``add_server_options``."""
    return {
        "app_env": args.app_env,
        "server_cpus": args.server_cpus,
        "database_url": args.database_url,
        "app_root": args.app_root,
    }


def check_server_options(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.database_url and not is_postgres(args.database_url):
        p.error("--database-url must be a PostgreSQL URL (postgresql://...)")
    app_root = getattr(args, "app_root", None)  # bench/search.py starts no server: it has no --app-root
    if app_root is not None:
        missing = [f for f in ("wsgi.py", "gunicorn.conf.py", "migrations") if not (app_root / f).exists()]
        if missing:
            p.error(f"--app-root {app_root} is not a webchat checkout (no {', '.join(missing)})")


# --- numbers and text -------------------------------------------------------------------


def percentile(sorted_values, q: float) -> float:
    if not sorted_values:
        return float("nan")
    idx = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[idx]


def pct(v: float | None) -> str:
    return "-" if v is None else f"{v:.0%}"


def fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summarise(errors: list[str], top: int = 5) -> list[str]:
    return [f"{e} (x{n})" if n > 1 else e for e, n in collections.Counter(errors).most_common(top)]


def git_commit(root: Path = ROOT) -> str:
    """The short commit of a checkout (the bench's own by default), with '+changes' when the tree is dirty."""
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (head or "?") + ("+changes" if dirty else "")


# --- the end of a run --------------------------------------------------------------------


def remove_tmp(tmp: Path, keep: bool) -> None:
    if keep:
        log(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


def publish(
    report: str, script: str, argv: list[str] | None, started: float, output: str | None, extra: str = ""
) -> None:
    """Print the report, the command that made it and its run time, then ``extra``; and write
    the same to ``output`` when given."""
    given = " ".join(sys.argv[1:] if argv is None else argv)
    report += f"\n\nCommand: `python bench/{script} {given}` ({time.monotonic() - started:.0f} s)" + extra
    print(report)
    if output:
        Path(output).write_text(report + "\n")
