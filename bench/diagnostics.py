"""Diagnostics for the fan-out bench: py-spy profiles, the worker's GC pauses, tracemalloc.

``TracedServer`` is the shared ``Server`` plus, for ``--trace-memory``, ``--gc-stats`` and
``--server-gc``, a wrapper config that execs the project's gunicorn.conf.py and adds a
``post_worker_init`` hook answering the bench's requests for snapshots.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import time
from pathlib import Path

from bench.common import ROOT, Server

# --trace-memory / --gc-stats / --server-gc only: the project's gunicorn.conf.py plus a
# worker hook that answers the bench's requests (files in BENCH_TRACE_DIR): a tracemalloc
# snapshot, or the log of the garbage collector's pauses (gc.callbacks); and, to try
# collector settings without editing the app, gc.freeze() / gc.set_threshold().
TRACE_CONF = """
import os as _os

_path = _os.path.join(_os.environ["BENCH_ROOT"], "gunicorn.conf.py")
with open(_path) as _f:
    exec(compile(_f.read(), _path, "exec"))


def post_worker_init(worker):
    import collections
    import gc
    import json
    import time
    import tracemalloc

    import gevent

    if _os.environ.get("BENCH_TRACE_MEMORY"):
        tracemalloc.start(int(_os.environ.get("BENCH_TRACE_FRAMES", "8")))
    if _os.environ.get("BENCH_GC_FREEZE"):
        gc.collect()
        gc.freeze()  # the app and its imports: never traversed again by the collector
    if _os.environ.get("BENCH_GC_THRESHOLD"):
        gc.set_threshold(*(int(x) for x in _os.environ["BENCH_GC_THRESHOLD"].split(",")))
    pauses = collections.deque(maxlen=200000)
    if _os.environ.get("BENCH_GC_STATS"):
        started = {}

        def on_gc(phase, info):
            now = time.monotonic()
            if phase == "start":
                started["t"] = now
            else:
                t0 = started.get("t", now)
                pauses.append((t0, info["generation"], now - t0, info.get("collected", 0)))

        gc.callbacks.append(on_gc)
    folder = _os.environ["BENCH_TRACE_DIR"]
    suffix = f".{_os.getpid()}.request"

    def serve():
        for _ in range(200000):
            gevent.sleep(0.1)
            for name in _os.listdir(folder):
                if not name.endswith(suffix):
                    continue
                tag = name[: -len(".request")]
                _os.unlink(_os.path.join(folder, name))
                if tag.startswith("gc."):
                    with open(_os.path.join(folder, tag + ".snap"), "w") as f:
                        json.dump(list(pauses), f)
                else:
                    gc.collect()
                    tracemalloc.take_snapshot().dump(_os.path.join(folder, tag + ".snap"))
                open(_os.path.join(folder, tag + ".done"), "w").close()

    gevent.spawn(serve)
"""


class TracedServer(Server):
    """The shared Server; with any diagnostic on, gunicorn runs the wrapper config above."""

    def __init__(
        self, tmp: Path, *, trace_memory: bool = False, gc_stats: bool = False, server_gc: str | None = None, **kw
    ) -> None:
        super().__init__(tmp, **kw)
        if trace_memory or gc_stats or server_gc:
            self.trace_dir = tmp / "trace"
            self.trace_dir.mkdir()
            conf = tmp / "gunicorn.trace.conf.py"
            conf.write_text(TRACE_CONF)
            self.conf = str(conf)
            self.env.update(BENCH_ROOT=str(self.root), BENCH_TRACE_DIR=str(self.trace_dir))
            if trace_memory:
                self.env["BENCH_TRACE_MEMORY"] = "1"
            if gc_stats:
                self.env["BENCH_GC_STATS"] = "1"
            for item in (server_gc or "").split(";"):
                if item.strip() == "freeze":
                    self.env["BENCH_GC_FREEZE"] = "1"
                elif item.strip().startswith("threshold="):
                    self.env["BENCH_GC_THRESHOLD"] = item.strip().removeprefix("threshold=")

    def snapshots(self, tag: str, timeout: float = 120.0) -> list[Path]:
        """Ask every worker for a tracemalloc snapshot (--trace-memory); their paths."""
        pids = self.workers()
        for pid in pids:
            (self.trace_dir / f"{tag}.{pid}.request").touch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all((self.trace_dir / f"{tag}.{pid}.done").exists() for pid in pids):
                return [self.trace_dir / f"{tag}.{pid}.snap" for pid in pids]
            time.sleep(0.2)
        raise RuntimeError(f"no tracemalloc snapshot {tag!r} within {timeout:g} s")

    def gc_pauses(self, since: float, until: float) -> list[tuple[float, int, float, int]]:
        """The workers' garbage-collector pauses that started in [since, until] (--gc-stats)."""
        self.gc_requests = getattr(self, "gc_requests", 0) + 1
        pauses = []
        for path in self.snapshots(f"gc.{self.gc_requests}", timeout=30):
            pauses += [tuple(p) for p in json.loads(path.read_text()) if since <= p[0] <= until]
            path.unlink()
        return pauses


def gc_summary(pauses: list[tuple[float, int, float, int]]) -> str:
    parts = []
    for gen in (0, 1, 2):
        durations = sorted(p[2] * 1000.0 for p in pauses if p[1] == gen)
        if durations:
            parts.append(f"gen{gen} x{len(durations)} (max {durations[-1]:.1f} ms, total {sum(durations):.0f} ms)")
    return "GC pauses: " + (", ".join(parts) if parts else "none")


# --- profiling (py-spy) ---------------------------------------------------------------


class Profiler:
    """py-spy record --format raw on the worker(s) for one phase; summarised as text."""

    def __init__(self, exe: str, out_dir: Path) -> None:
        self.exe = exe
        self.out_dir = out_dir
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, pids: list[int], seconds: float, rate: int = 250) -> None:
        for pid in pids:
            out = self.out_dir / f"py-spy-{pid}.txt"
            cmd = [
                self.exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(max(1, round(seconds))),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ]
            self.procs.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out))
        time.sleep(0.5)

    def finish(self, top: int = 25) -> str:
        lines = []
        for proc, out in self.procs:
            try:
                _, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            if not out.exists():
                lines.append(f"py-spy produced nothing: {err.decode(errors='replace')[-500:]}")
                continue
            lines.append(summarise_raw(out.read_text(), top, out))
        return "\n".join(lines)


# Where a busy sample goes: the first category (in this order) with a frame in its stack.
CATEGORIES = [
    ("do_commit", "database COMMIT (SQLite: fsync of the WAL; blocks the whole worker)"),
    ("sqlalchemy/", "SQLAlchemy: queries, ORM flush, session"),
    ("jinja2/", "Jinja rendering"),
    ("render_template", "Jinja rendering"),
    # py-spy's stacks are approximate under greenlets (a switched greenlet's frames can be
    # spliced onto another's), so the write path is recognised by its leaf frames too.
    ("SocketMixin.send", "write: Connection._flush -> sock.sendall (gevent + the send syscall)"),
    ("__send_chunk", "write: Connection._flush -> sock.sendall (gevent + the send syscall)"),
    ("sendall", "write: Connection._flush -> sock.sendall (gevent + the send syscall)"),
    ("Timeout", "timers: gevent.Timeout per _flush and per Event.wait(timeout)"),
    ("Connection._flush", "write: Connection._flush (join, skip ids)"),
    ("Hub.deliver", "fan-out: Hub.deliver -> Connection.push (deque append + Event.set per socket)"),
    ("Connection.push", "fan-out: Hub.deliver -> Connection.push (deque append + Event.set per socket)"),
    ("redis", "Redis client"),
    ("Connection._read", "read: client frames (Connection._read, simple-websocket, wsproto)"),
    ("simple_websocket", "read: client frames (Connection._read, simple-websocket, wsproto)"),
    ("wsproto", "read: client frames (Connection._read, simple-websocket, wsproto)"),
    ("Connection.run", "wake-up: Connection.run (Event.wait with timeout + greenlet switch, clear, loop)"),
    ("Hub.run", "gevent hub loop (libev dispatch, callbacks, switches)"),
    ("gevent/", "gevent other"),
    ("werkzeug", "Flask / werkzeug request handling"),
    ("flask", "Flask / werkzeug request handling"),
]


def summarise_raw(text: str, top: int, path: Path) -> str:
    inclusive: collections.Counter = collections.Counter()
    own: collections.Counter = collections.Counter()
    category: collections.Counter = collections.Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f.strip() for f in stack.split(";") if f.strip()]
        frames = [re.sub(r'^process \d+:"[^"]*"$|^thread \([^)]*\)$', "", f) for f in frames]
        frames = [shorten(f) for f in frames if f]
        for f in {re.sub(r":\d+\)$", ")", f) for f in frames}:  # per function, any line
            inclusive[f] += n
        if frames:
            own[frames[-1]] += n
        joined = "\n".join(frames)
        category[next((label for key, label in CATEGORIES if key in joined), "other")] += n
    if not total:
        return f"{path}: no samples"
    out = [f"py-spy: {total} busy samples ({path})", "", "busy time by activity:"]
    out += [f"  {n / total:6.1%}  {label}" for label, n in category.most_common()]
    out += ["", "self time (function:line; gevent's compiled Event/Timeout code shows as its caller's line):"]
    out += [f"  {n / total:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "inclusive time per function (webchat, flask_sock, simple_websocket, gevent, SQLAlchemy, Jinja):"]
    keep = ("webchat/", "simple_websocket", "wsproto", "gevent/", "flask_sock", "sqlalchemy/orm/session", "jinja2/")
    shown = [(f, n) for f, n in inclusive.most_common() if any(k in f for k in keep)]
    out += [f"  {n / total:6.1%}  {f}" for f, n in shown[:top]]
    return "\n".join(out)


def shorten(frame: str) -> str:
    frame = frame.replace(str(ROOT) + "/", "")
    return re.sub(r"\(/[^()]*?/site-packages/", "(", frame)


def trace_report(before: list[Path], after: list[Path], sockets: int, top: int = 20) -> str:
    """What the worker(s) allocated per idle socket, by allocation site (tracemalloc)."""
    import tracemalloc

    ignore = [
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
    ]
    by_line: collections.Counter = collections.Counter()
    blocks: collections.Counter = collections.Counter()
    by_file: collections.Counter = collections.Counter()
    by_stack: collections.Counter = collections.Counter()
    total = 0
    for b, a in zip(before, after, strict=True):
        snap_b = tracemalloc.Snapshot.load(str(b)).filter_traces(ignore)
        snap_a = tracemalloc.Snapshot.load(str(a)).filter_traces(ignore)
        for stat in snap_a.compare_to(snap_b, "traceback"):
            frames = [f"{shorten_path(f.filename)}:{f.lineno}" for f in list(stat.traceback)[::-1][:5]]
            by_stack[" <- ".join(frames)] += stat.size_diff
        for stat in snap_a.compare_to(snap_b, "lineno"):
            frame = stat.traceback[0]
            key = f"{shorten_path(frame.filename)}:{frame.lineno}"
            by_line[key] += stat.size_diff
            blocks[key] += stat.count_diff
            by_file[shorten_path(frame.filename)] += stat.size_diff
            total += stat.size_diff
    out = [
        f"tracemalloc: {total / sockets / 1024:.1f} KB allocated per idle socket "
        "(Python allocations only: RSS also holds allocator slack and C memory outside PyMem)",
        "",
        "per idle socket, by allocation site (bytes, blocks):",
    ]
    out += [
        f"  {size / sockets:8.0f} B {blocks[key] / sockets:6.1f}  {key}"
        for key, size in by_line.most_common(top)
        if size > 0
    ]
    out += ["", "per idle socket, the largest allocation stacks (innermost first):"]
    out += [f"  {size / sockets:8.0f} B  {key}" for key, size in by_stack.most_common(top // 2) if size > 0]
    by_package: collections.Counter = collections.Counter()
    for key, size in by_file.items():
        by_package[key.split("/")[0] if "/" in key and not key.startswith("/") else "stdlib/other"] += size
    out += ["", "per idle socket, by package:"]
    out += [f"  {size / sockets:8.0f} B  {key}" for key, size in by_package.most_common(top // 2) if size > 0]
    out += ["", "per idle socket, by file:"]
    out += [f"  {size / sockets:8.0f} B  {key}" for key, size in by_file.most_common(top) if size > 0]
    return "\n".join(out)


def shorten_path(path: str) -> str:
    path = path.replace(str(ROOT) + "/", "")
    return re.sub(r"^.*?/site-packages/", "", path)
