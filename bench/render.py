#!/usr/bin/env python
"""Template profile: what a 50-message history slice costs to render, in-process.

No server and no sockets: the app is built with ``create_app(TestingConfig(), ...)`` on a
fresh SQLite database in a temporary directory (migrated with ``flask_migrate.upgrade``).
Two users sign up through the Flask test client (CSRF tokens, as a browser) and save
their settings through ``/settings/``: one reads English in UTC, one 简体中文 in
Asia/Shanghai. One creates a room, the other joins it, and 50 messages are stored
directly (two hours apart, so the slice spans several days: Today, Yesterday, weekdays;
authors alternate in runs, so grouping varies; every tenth has a link).

Measured, each over ``--iterations`` calls after a few unmeasured ones, split into
``--rounds`` rounds that each go through every measurement once (a burst of other load
on a shared machine then touches all rows a little rather than one row a lot):

* the slice query, ``history.history(room)``;
* the uncached render of the slice, ``render_template("rooms/_older.html", ...)``, in each
  view (inside a test request context with that user logged in);
* the cached slice lookup, ``history.rendered_slice(room, reader_view())``;
* the whole room page through the test client, with the slice kept and with the fragment
  cache emptied before each request;
* one pushed message rendered for one view (``live/_push_message.html`` through the hub's
  renderer), the unit of the fan-out's per-view cost;

then a cProfile of the uncached render: the top functions by cumulative time.

The collector is set as gunicorn.conf.py sets it in each worker (``gc.freeze()`` after
start-up, threshold 10000/20/20). Times are wall time per call (median, mean, and the
mean of the fastest round) and this process's CPU time per call; on a busy machine trust
the best round and the CPU column more.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import _syspath  # noqa: F401 - first: puts the repository root on sys.path, takes bench/ off

from bench.common import CSRF_RE, ROOT, git_commit, log, pin_self, publish, remove_tmp

ROOM = "bench-render"
PASSWORD = "bench-render-password"  # noqa: S105 - a throwaway user in a temporary database
# (language, time zone, Accept-Language of the browser), for each reader.
VIEWS = {
    "en": ("en", "UTC", "en-GB,en;q=0.9"),
    "zh_Hans": ("zh_Hans", "Asia/Shanghai", "zh-CN,zh;q=0.9"),
}
ARTICLE = '<article id="m-'


@dataclass
class Row:
    """One measurement: ``call(state)`` timed inside ``setup()``, a context manager whose value
    is the ``state``; run in rounds, interleaved with the other rows (``run_rows``)."""

    what: str
    view: str
    calls: int
    setup: Callable[[], AbstractContextManager]
    call: Callable[[Any], object]
    note: str = ""
    wall_ms: list[float] = field(default_factory=list)
    round_ms: list[float] = field(default_factory=list)  # mean wall time per call of each round
    cpu_s: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.wall_ms)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.wall_ms)

    @property
    def best(self) -> float:
        return min(self.round_ms)

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000.0 / len(self.wall_ms)


def run_rows(rows: list[Row], rounds: int, warmup: int = 5) -> None:
    """Every row's calls in ``rounds`` rounds, each round going through all rows once: a burst
    of other load on a shared machine then touches every row a little, not one row a lot."""
    for row in rows:
        with row.setup() as state:
            for _ in range(warmup):
                row.call(state)
    perf, cpu = time.perf_counter, time.process_time
    for r in range(rounds):
        for row in rows:
            n = row.calls // rounds + (1 if r < row.calls % rounds else 0)
            if not n:
                continue
            wall: list[float] = []
            with row.setup() as state:
                cpu0 = cpu()
                for _ in range(n):
                    t0 = perf()
                    row.call(state)
                    wall.append((perf() - t0) * 1000.0)
                row.cpu_s += cpu() - cpu0
            row.wall_ms += wall
            row.round_ms.append(statistics.fmean(wall))
    for row in rows:
        log(f"{row.what} [{row.view}]: median {row.median:.3f}, best round {row.best:.3f}, CPU {row.cpu_ms:.3f} ms")


# --- the app and its data ---------------------------------------------------------------


def build_app(tmp: Path):
    """The app on a fresh, migrated SQLite database (as tests/conftest.py builds it)."""
    os.environ["WEBCHAT_INSTANCE_DIR"] = str(tmp / "instance")  # read when config is first imported
    from flask_migrate import upgrade

    from config import TestingConfig
    from webchat import create_app

    app = create_app(
        TestingConfig(), SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp / 'render.sqlite3'}", RATE_LIMIT_COUNT=10**9
    )
    with app.app_context():
        upgrade()
    return app


def csrf(page: str) -> str:
    match = CSRF_RE.search(page)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1)


def post(client, path: str, fields: dict, expect: int = 303) -> None:
    """GET the form for its CSRF token, POST it, as a browser would."""
    token = csrf(client.get(path).get_data(as_text=True))
    response = client.post(path, data={**fields, "csrf_token": token})
    if response.status_code != expect:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.get_data(as_text=True)[-400:]}")


def reader(app, key: str):
    """A test client signed up as ``bench-<key>``, with the view's language and zone saved."""
    language, tz, accept = VIEWS[key]
    client = app.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept
    post(client, "/signup/", {"username": f"bench-{key}", "password": PASSWORD, "confirm": PASSWORD})
    post(client, "/settings/", {"language": language, "time_zone": tz})
    return client


def add_messages(app, count: int) -> None:
    """``count`` messages straight into the database, two hours apart up to now, by both users
    in alternating runs of one to three; every tenth has a link."""
    from sqlalchemy import select

    from webchat.extensions import db
    from webchat.models import Message, Room, User, utcnow

    with app.app_context():
        room = db.session.execute(select(Room).filter_by(name=ROOM)).scalar_one()
        users = list(db.session.execute(select(User).order_by(User.id)).scalars())
        start = utcnow() - timedelta(hours=2 * (count - 1))
        rows, author = [], 0
        for i in range(count):
            if i % 3 == 0 or i % 7 == 0:
                author = 1 - author
            body = f"message {i}: the quick brown fox jumps over the lazy dog"
            if i % 10 == 0:
                body += f" https://example.com/bench/{i}"
            rows.append(
                Message(
                    room_id=room.id, author_id=users[author].id, body=body, created_at=start + timedelta(hours=2 * i)
                )
            )
        db.session.add_all(rows)
        db.session.flush()
        room.last_message_id = rows[-1].id
        room.last_activity_at = rows[-1].created_at
        db.session.commit()


# --- the measurements -----------------------------------------------------------------


def check_slice(html: str, key: str, size: int) -> str:
    """The slice must show ``size`` messages in the view's language and zone; a short note."""
    found = html.count(ARTICLE)
    if found < size:
        raise RuntimeError(f"the {key} slice shows {found} messages, not {size}")
    tz = VIEWS[key][1]
    chinese = bool(re.search(r"[\u4e00-\u9fff]", html))
    if chinese != (key == "zh_Hans") or f' {tz}"' not in html:
        raise RuntimeError(f"the {key} slice is not rendered for {VIEWS[key][:2]}")
    return f"{found} messages, {len(html.encode()) / 1024:.1f} KB"


@contextmanager
def in_view(app, key: str, prime: bool = False) -> Iterator[SimpleNamespace]:
    """A request context of the view's reader, logged in (as a request of theirs would be), with
    the room and its newest page loaded; ``prime``: the slice kept in the fragment cache too."""
    from flask_login import login_user
    from sqlalchemy import select

    from webchat.extensions import db
    from webchat.models import Room, User
    from webchat.rooms import history
    from webchat.timefmt import reader_view

    with app.test_request_context(f"/room/{ROOM}/", headers={"Accept-Language": VIEWS[key][2]}):
        login_user(db.session.execute(select(User).filter_by(username=f"bench-{key}")).scalar_one())
        room = db.session.execute(select(Room).filter_by(name=ROOM)).scalar_one()
        if prime:
            history.rendered_slice(room, reader_view())
        yield SimpleNamespace(room=room, page=history.history(room))


def render_slice(state: SimpleNamespace) -> str:
    from flask import render_template

    return render_template("rooms/_older.html", room=state.room, page=state.page)


def slice_rows(app, key: str, n: int, size: int) -> list[Row]:
    """The query, the uncached render and the cached lookup of the slice, in one view."""
    from webchat.rooms import history
    from webchat.timefmt import reader_view

    view = "/".join(VIEWS[key][:2])
    with in_view(app, key) as state:
        note = check_slice(render_slice(state), key, size)
    return [
        Row("slice query (history.history)", view, n, lambda: in_view(app, key), lambda s: history.history(s.room)),
        Row("slice render, uncached (rooms/_older.html)", view, n, lambda: in_view(app, key), render_slice, note),
        Row(
            "slice lookup, cached (history.rendered_slice)",
            view,
            max(n, 2000),
            lambda: in_view(app, key, prime=True),
            lambda s: history.rendered_slice(s.room, reader_view()),
        ),
    ]


def profile_renders(app, key: str, n: int) -> cProfile.Profile:
    from flask import render_template

    with in_view(app, key) as state:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(n):
            render_template("rooms/_older.html", room=state.room, page=state.page)
        profiler.disable()
    return profiler


def page_rows(app, client, key: str, n: int, size: int) -> list[Row]:
    """The room page through the test client: slice kept, and fragment cache emptied each time."""
    from webchat import fragments

    view = "/".join(VIEWS[key][:2])
    path = f"/room/{ROOM}/"

    def get(_state: object = None) -> str:
        response = client.get(path)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")
        return response.get_data(as_text=True)

    @contextmanager
    def primed() -> Iterator[None]:
        get()  # keeps the slice (again, after a row that emptied the cache)
        yield

    def cold(_state: object) -> None:
        fragments.init_app(app)
        get()

    page = get()
    if page.count(ARTICLE) < size or 'id="log"' not in page:
        raise RuntimeError(f"the room page ({key}) does not show {size} messages")
    note = f"{len(page.encode()) / 1024:.1f} KB"
    return [
        Row("room page, slice kept (test client GET)", view, n, primed, get, note),
        Row("room page, fragment cache emptied first", view, n, nullcontext, cold, note),
    ]


def push_rows(app, n: int) -> list[Row]:
    """One pushed message rendered for one view, by the hub's renderer (live/push.py)."""
    from sqlalchemy import select

    from webchat.extensions import db
    from webchat.i18n import View
    from webchat.live import events
    from webchat.live.push import Renderer
    from webchat.models import Message

    with app.app_context():
        newest, previous = db.session.execute(select(Message).order_by(Message.id.desc()).limit(2)).scalars()
        event = events.message_event(newest, previous)
    render = Renderer(app)
    rows = []
    for key in VIEWS:
        view = View(*VIEWS[key][:2])
        html = render(event, view)
        if ARTICLE not in html or f' {view.time_zone}"' not in html:
            raise RuntimeError(f"the pushed message is not rendered for {view}")
        rows.append(
            Row(
                "pushed message, one view (live/_push_message.html)",
                "/".join(view),
                max(n, 1000),
                nullcontext,
                lambda _s, v=view: render(event, v),
                f"{len(html.encode())} B",
            )
        )
    return rows


def profile_table(profile: cProfile.Profile, calls: int, top: int) -> str:
    """The top functions by cumulative time, per render, with short paths."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    total = sum(tt for _, _, tt, _, _ in stats.values())
    ranked = sorted(stats.items(), key=lambda item: item[1][3], reverse=True)[:top]
    lines = [
        "| cumulative ms/render | own ms/render | calls/render | function |",
        "|--:|--:|--:|---|",
    ]
    for (path, line, func), (_, ncalls, tt, ct, _) in ranked:
        lines.append(
            f"| {ct * 1000 / calls:.3f} | {tt * 1000 / calls:.3f} | {ncalls / calls:g} "
            f"| `{short_path(path)}:{line}({func})` |"
        )
    lines.append("")
    lines.append(f"(cProfile: {total * 1000 / calls:.2f} ms per render with the profiler's own overhead)")
    return "\n".join(lines)


def short_path(path: str) -> str:
    path = path.replace(str(ROOT) + "/", "")
    return re.sub(r"^.*?/site-packages/", "", path)


# --- report and command line ----------------------------------------------------------


def table(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        f"### Template rendering, in-process, a {args.messages}-message room (PAGE_SIZE slices), SQLite, "
        f"Python {sys.version.split()[0]}, commit {git_commit()}, {args.iterations} iterations in {args.rounds} rounds"
        + (f", pinned to CPU {args.cpus}" if args.cpus else ""),
        "",
        "| measurement | view | calls | median ms | mean ms | best round ms | CPU ms/call | calls/s (1 core, CPU) "
        "| note |",
        "|---|---|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.what} | {r.view} | {r.calls:,} | {r.median:.3f} | {r.mean:.3f} | {r.best:.3f} | {r.cpu_ms:.3f} "
            f"| {1000.0 / r.cpu_ms if r.cpu_ms else float('inf'):,.0f} | {r.note} |"
        )
    renders = {r.view: r for r in rows if r.what.startswith("slice render")}
    if len(renders) == 2:
        en, zh = (renders["/".join(VIEWS[k][:2])] for k in VIEWS)
        lines += [
            "",
            f"Uncached slice render, 简体中文/Asia/Shanghai vs English/UTC: {zh.cpu_ms:.2f} vs {en.cpu_ms:.2f} CPU ms "
            f"({zh.cpu_ms / en.cpu_ms:.2f}×); the cached lookup saves "
            f"{en.cpu_ms - next(r.cpu_ms for r in rows if r.what.startswith('slice lookup')):.2f} ms per page view.",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--iterations", type=int, default=200, help="calls per measurement (200; lookups: at least 2000)")
    p.add_argument("--rounds", type=int, default=5, help="rounds the calls are split into, all rows in each (5)")
    p.add_argument("--messages", type=int, default=50, help="messages in the room (50)")
    p.add_argument(
        "--profile-view",
        choices=[*VIEWS, "none"],
        default="zh_Hans",
        help="the view whose uncached render is profiled (zh_Hans)",
    )
    p.add_argument("--top", type=int, default=15, help="functions in the profile (15)")
    p.add_argument("--cpus", default="0", help="CPU list to pin this process to (0); '' to not pin")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (database)")
    p.add_argument("--output", default=None, help="also write the report to this file")
    args = p.parse_args(argv)
    if args.messages < 1 or args.rounds < 1 or args.iterations < args.rounds:
        p.error("--messages and --rounds must be at least 1, --iterations at least --rounds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    pin_self(args.cpus)
    tmp = Path(tempfile.mkdtemp(prefix="webchat-bench-render-"))
    app = None
    try:
        log(f"migrating a fresh SQLite database in {tmp}")
        app = build_app(tmp)
        clients = {key: reader(app, key) for key in VIEWS}
        en, zh = clients["en"], clients["zh_Hans"]
        post(en, "/create/", {"name": ROOM})
        zh.get(f"/room/{ROOM}/")  # joins the room
        add_messages(app, args.messages)
        size = min(args.messages, app.config["PAGE_SIZE"])
        gc.collect()
        gc.freeze()  # as gunicorn.conf.py's post_worker_init does in each worker
        gc.set_threshold(10_000, 20, 20)

        rows = [row for key in VIEWS for row in slice_rows(app, key, args.iterations, size)]
        rows += [row for key, client in clients.items() for row in page_rows(app, client, key, args.iterations, size)]
        rows += push_rows(app, args.iterations)
        log(f"measuring {len(rows)} rows in {args.rounds} rounds")
        run_rows(rows, args.rounds)
        profile = ""
        if args.profile_view != "none":
            log(f"profiling {args.iterations} uncached renders ({args.profile_view})")
            view = "/".join(VIEWS[args.profile_view][:2])
            title = f"cProfile: uncached slice render (rooms/_older.html), {view}, top {args.top} by cumulative time"
            found = profile_renders(app, args.profile_view, args.iterations)
            profile = f"#### {title}\n\n" + profile_table(found, args.iterations, args.top)
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 2
    finally:
        if app is not None:
            app.extensions["webchat.broker"].close()
        remove_tmp(tmp, args.keep)

    publish(table(rows, args) + ("\n\n" + profile if profile else ""), "render.py", argv, started, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
