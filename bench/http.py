#!/usr/bin/env python
"""HTTP benchmark for webchat's pages, against the same server's ceiling.

Starts webchat as production runs it (``gunicorn -c gunicorn.conf.py wsgi:app``: one
gevent worker pinned to core 0, ``APP_ENV=production``, a fresh migrated database), signs
a user in, fills a room with 60 messages and creates 50 rooms, and measures from core 1,
in one invocation:

* the ceiling: a trivial Flask view (bench/ceiling.py) on the same gunicorn command line,
  environment and pinning;
* ``GET /room/<name>/``: the room page with its 50 newest messages;
* ``GET /room/<name>/?before=<id>`` with ``HX-Request: true``: a slice of 50 older messages;
* ``GET /``: the room list with 50 rooms;
* ``POST /room/<name>/``: the no-JavaScript post (``message`` + ``csrf_token``, answered
  303), with a write audit: every 303 must be a row in the message table (counted in the
  database directly, before and after).

Every answer is checked (status and body markers) and bad ones are counted. Each figure
is also given as a share of the same run's ceiling. The load comes from wrk when it is
installed (a Lua script keeps the cookies, checks the answers and prints percentiles),
otherwise from a bundled client: one thread, one epoll loop over N keep-alive sockets.
The client's own CPU is reported; a warning says when its core was nearly saturated.
Every loop is bounded in count and time; all traffic is to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import secrets
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import _syspath  # noqa: F401 - first: puts the repository root on sys.path, takes bench/ off

from bench.common import (
    HOST,
    USER_AGENT,
    CpuMeter,
    CpuShares,
    Server,
    User,
    add_server_options,
    check_server_options,
    cpu_set,
    fmt,
    git_commit,
    log,
    pct,
    percentile,
    pin_self,
    publish,
    remove_tmp,
    room_path,
    server_options,
    taskset,
)

ROOM = "bench-http"
ARTICLE = b'<article id="m-'
CLIENT_BUSY_WARN = 0.90  # the client's core busier than this: the client may be the limit


@dataclass
class Scenario:
    """One request, repeated on every connection, and what a good answer looks like."""

    key: str
    label: str
    path: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    status: int = 200
    markers: list[tuple[bytes, int]] = field(default_factory=list)  # (text, at least this many times)
    absent: list[bytes] = field(default_factory=list)  # texts a good answer must not contain
    target: float | None = None  # share of the ceiling's requests/s the issue asks for


@dataclass
class Load:
    """What one client run saw."""

    client: str
    answered: int = 0
    good: int = 0
    bad: int = 0
    reasons: collections.Counter = field(default_factory=collections.Counter)
    status_counts: collections.Counter = field(default_factory=collections.Counter)  # good answers only
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    seconds: float = 0.0


@dataclass
class Measure:
    scenario: Scenario
    load: Load
    cpu: CpuShares
    audit: str = ""
    audit_ok: bool = True
    ceiling_rps: float = 0.0  # the ceiling measured just before, in the same round
    shares: list[float] = field(default_factory=list)  # every round's share, when this is the median one
    rounds_ok: bool = True  # no round had a bad answer or a failed write audit

    @property
    def rps(self) -> float:
        return self.load.answered / max(1e-9, self.load.seconds)

    @property
    def share(self) -> float:
        return self.rps / self.ceiling_rps if self.ceiling_rps else 0.0


def median_round(rounds: list[Measure]) -> Measure:
    """The round with the median share of its own ceiling, carrying every round's share:
    on a machine whose speed drifts (a shared VM), a page compared with a ceiling measured
    a minute apart can be off by a fifth either way."""
    ranked = sorted(rounds, key=lambda m: m.share)
    median = ranked[(len(ranked) - 1) // 2]
    median.shares = [m.share for m in rounds]
    median.rounds_ok = all(m.load.bad == 0 and m.audit_ok for m in rounds)
    return median


# --- the bundled client -------------------------------------------------------------------

CONTENT_LENGTH_RE = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)")


def build_request(sc: Scenario, port: int) -> bytes:
    lines = [f"{sc.method} {sc.path} HTTP/1.1", f"Host: {HOST}:{port}", "Accept: */*"]
    lines += [f"{k}: {v}" for k, v in sc.headers.items()]
    if sc.body or sc.method == "POST":
        lines.append(f"Content-Length: {len(sc.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + sc.body


def parse_response(buf: bytearray) -> tuple[int, bytes, bool, int] | str | None:
    """(status, body, keep-alive, bytes used) for a complete response; None if incomplete;
    a string saying why when the response cannot be delimited."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    head = bytes(buf[:i]).lower()
    try:
        status = int(head[9:12])
    except ValueError:
        return f"bad status line {head[:40]!r}"
    keep = b"\r\nconnection: close" not in head and head.startswith(b"http/1.1")
    m = CONTENT_LENGTH_RE.search(head)
    if m:
        end = i + 4 + int(m.group(1))
        if len(buf) < end:
            return None
        return status, bytes(buf[i + 4 : end]), keep, end
    if b"\r\ntransfer-encoding:" in head and b"chunked" in head.split(b"\r\ntransfer-encoding:", 1)[1][:40]:
        done = dechunk(buf, i + 4)
        if done is None:
            return None
        return status, done[0], keep, done[1]
    if status in (204, 304) or 100 <= status < 200:
        return status, b"", keep, i + 4
    return "response without Content-Length or chunked encoding"


def dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """The body of a chunked message that starts at ``pos`` and where it ends; None if incomplete."""
    parts = []
    for _ in range(100000):
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        if size == 0:
            end = buf.find(b"\r\n\r\n", eol)  # no trailers expected: the last CRLF follows
            return (b"".join(parts), end + 4) if end >= 0 else None
        if len(buf) < eol + 2 + size + 2:
            return None
        parts.append(bytes(buf[eol + 2 : eol + 2 + size]))
        pos = eol + 2 + size + 2
    return None


def check(sc: Scenario, status: int, body: bytes) -> str | None:
    """None for a good answer, else why not."""
    if status != sc.status:
        return f"status {status}"
    for marker, least in sc.markers:
        n = body.count(marker)
        if n < least:
            return f"{marker.decode()!r} x{n} < {least}"
    for text in sc.absent:
        if text in body:
            return f"unexpected {text.decode()!r}"
    return None


class Conn:
    __slots__ = ("sock", "fd", "buf", "sent_at", "busy")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.buf = bytearray()
        self.sent_at = 0.0
        self.busy = False


def run_builtin(port: int, sc: Scenario, connections: int, seconds: float, timeout: float = 10.0) -> Load:
    """Keep ``connections`` keep-alive sockets busy for ``seconds``, then wait for the answers in flight."""
    request = build_request(sc, port)
    ep = select.epoll()
    conns: dict[int, Conn] = {}
    load = Load(client="builtin")
    lat = array("d")
    mono = time.monotonic
    reconnects = 0

    def send(c: Conn) -> None:
        c.buf.clear()
        c.sent_at = mono()
        c.busy = True
        try:
            sent = c.sock.send(request)
            if sent < len(request):  # rare: a full socket buffer
                c.sock.setblocking(True)
                c.sock.sendall(request[sent:])
                c.sock.setblocking(False)
        except OSError as exc:
            fail(c, f"send: {exc.__class__.__name__}")

    def connect() -> None:
        sock = socket.create_connection((HOST, port), timeout=5)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        c = Conn(sock)
        conns[c.fd] = c
        ep.register(c.fd, select.EPOLLIN)
        send(c)

    def close(c: Conn) -> None:
        if conns.pop(c.fd, None) is not None:
            ep.unregister(c.fd)
            c.sock.close()

    def fail(c: Conn, why: str) -> None:
        nonlocal reconnects
        if c.busy:
            load.bad += 1
            load.reasons[why] += 1
        close(c)
        if mono() < deadline and reconnects < 1000:
            reconnects += 1
            connect()

    t0 = mono()
    deadline = t0 + seconds
    hard = deadline + timeout
    last = t0
    for _ in range(connections):
        connect()
    while conns:
        now = mono()
        if now >= hard:
            break
        for fd, _ in ep.poll(min(0.05, hard - now), 1024):
            c = conns.get(fd)
            if c is None:
                continue
            try:
                data = c.sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                fail(c, "closed by the server")
                continue
            c.buf += data
            got = parse_response(c.buf)
            if got is None:
                continue
            if isinstance(got, str):
                fail(c, got)
                continue
            status, body, keep, used = got
            last = mono()
            c.busy = False
            lat.append(last - c.sent_at)
            load.answered += 1
            why = check(sc, status, body)
            if why is None:
                load.good += 1
                load.status_counts[status] += 1
            else:
                load.bad += 1
                load.reasons[why] += 1
            if used != len(c.buf):
                fail(c, "bytes after the response")
            elif last >= deadline:
                close(c)
            elif keep:
                send(c)
            else:
                close(c)
                connect()
    for c in list(conns.values()):
        fail(c, f"no answer within {timeout:g} s")
    ep.close()
    load.seconds = last - t0
    ms = sorted(x * 1000.0 for x in lat)
    if ms:
        load.p50_ms, load.p99_ms, load.max_ms = percentile(ms, 0.5), percentile(ms, 0.99), ms[-1]
    return load


# --- wrk ----------------------------------------------------------------------------------

WRK_LUA = """
-- generated by bench/http.py for one scenario
wrk.method = {method}
wrk.body = {body}
{headers}
local expect_status = {status}
local markers = {{ {markers} }}
local absent = {{ {absent} }}
local threads = {{}}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  good = 0
  bad = 0
  why = ""
end

local function count(body, text, least)
  local n, i = 0, 1
  while n < least do
    local s, e = string.find(body, text, i, true)
    if not s then break end
    n = n + 1
    i = e + 1
  end
  return n
end

function response(status, headers, body)
  if status ~= expect_status then
    bad = bad + 1
    if why == "" then why = "status " .. status end
    return
  end
  body = body or ""
  for _, m in ipairs(markers) do
    local n = count(body, m[1], m[2])
    if n < m[2] then
      bad = bad + 1
      if why == "" then why = "'" .. m[1] .. "' x" .. n .. " < " .. m[2] end
      return
    end
  end
  for _, text in ipairs(absent) do
    if string.find(body, text, 1, true) then
      bad = bad + 1
      if why == "" then why = "unexpected '" .. text .. "'" end
      return
    end
  end
  good = good + 1
end

function done(summary, latency, requests)
  local g, b, w = 0, 0, ""
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
    local tw = t:get("why")
    if w == "" and tw ~= nil then w = tw end
  end
  local e = summary.errors
  io.write(string.format("BENCH requests %d\\n", summary.requests))
  io.write(string.format("BENCH duration_us %d\\n", summary.duration))
  io.write(string.format("BENCH good %d\\n", g))
  io.write(string.format("BENCH bad %d\\n", b))
  io.write(string.format("BENCH errors_connect %d\\n", e.connect))
  io.write(string.format("BENCH errors_read %d\\n", e.read))
  io.write(string.format("BENCH errors_write %d\\n", e.write))
  io.write(string.format("BENCH errors_timeout %d\\n", e.timeout))
  io.write(string.format("BENCH p50_us %d\\n", latency:percentile(50.0)))
  io.write(string.format("BENCH p99_us %d\\n", latency:percentile(99.0)))
  io.write(string.format("BENCH max_us %d\\n", latency.max))
  io.write("BENCH why " .. w .. "\\n")
end
"""


def lua_str(text: str | bytes) -> str:
    if isinstance(text, bytes):
        text = text.decode()
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def wrk_script(sc: Scenario) -> str:
    return WRK_LUA.format(
        method=lua_str(sc.method),
        body=lua_str(sc.body) if sc.body else "nil",
        headers="\n".join(f"wrk.headers[{lua_str(k)}] = {lua_str(v)}" for k, v in sc.headers.items()),
        status=sc.status,
        markers=", ".join(f"{{{lua_str(m)}, {n}}}" for m, n in sc.markers),
        absent=", ".join(lua_str(a) for a in sc.absent),
    )


def run_wrk(
    port: int, sc: Scenario, connections: int, seconds: float, client_cpus: str, tmp: Path, timeout: float = 10.0
) -> Load:
    script = tmp / f"wrk-{sc.key}.lua"
    script.write_text(wrk_script(sc))
    threads = max(1, min(connections, len(cpu_set(client_cpus)) if client_cpus else os.cpu_count() or 1))
    secs = max(1, round(seconds))
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{secs}s", "--timeout", f"{timeout:g}s"]
    cmd += ["-s", str(script), f"http://{HOST}:{port}{sc.path}"]
    out = subprocess.run(taskset(client_cpus, cmd), capture_output=True, text=True, timeout=secs + timeout + 60)
    values: dict[str, str] = {}
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            key, _, value = line[6:].partition(" ")
            values[key] = value
    if out.returncode != 0 or "requests" not in values:
        raise RuntimeError(f"wrk failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    load = Load(client=f"wrk -t{threads}")
    load.answered = int(values["requests"])
    load.good = int(values["good"])
    load.bad = int(values["bad"])
    if values.get("why"):
        load.reasons[f"{values['why']} (first seen)"] += load.bad
    for kind in ("connect", "read", "write", "timeout"):
        n = int(values.get(f"errors_{kind}", "0"))
        if n:
            load.bad += n
            load.reasons[f"wrk {kind} errors"] += n
    load.status_counts[sc.status] = load.good
    load.seconds = int(values["duration_us"]) / 1e6
    load.p50_ms, load.p99_ms = int(values["p50_us"]) / 1000.0, int(values["p99_us"]) / 1000.0
    load.max_ms = int(values["max_us"]) / 1000.0
    return load


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "wrk"
    return (out.stdout or out.stderr).split(" [")[0].strip() or "wrk"


# --- measuring ------------------------------------------------------------------------------


class Runner:
    def __init__(self, args: argparse.Namespace, client: str, tmp: Path) -> None:
        self.args = args
        self.client = client
        self.tmp = tmp

    def load(self, server: Server, sc: Scenario, seconds: float) -> Load:
        if self.client == "wrk":
            return run_wrk(server.port, sc, self.args.connections, seconds, self.args.client_cpus, self.tmp)
        return run_builtin(server.port, sc, self.args.connections, seconds)

    def measure(self, server: Server, sc: Scenario, count_rows: bool = False) -> Measure:
        args = self.args
        if args.warmup > 0:
            self.load(server, sc, args.warmup)
        rows0 = settled_rows(server) if count_rows else 0  # the warm-up's last writes included
        log(f"{sc.label}: {args.connections} connections, {args.seconds:g} s, {self.client}")
        meter = CpuMeter(server, args.server_cpus, args.client_cpus)
        meter.start()
        load = self.load(server, sc, args.seconds)
        cpu = meter.stop()
        m = Measure(sc, load, cpu)
        if count_rows:
            m.audit, m.audit_ok = self.write_audit(server, rows0, load.status_counts[303])
        log(
            f"  {m.rps:,.0f} req/s, p50 {fmt(load.p50_ms)} ms, p99 {fmt(load.p99_ms)} ms, {load.bad} bad, "
            f"server CPU {cpu.server:.0%}, client CPU {cpu.client:.0%}"
            + (f"; bad: {dict(load.reasons.most_common(3))}" if load.bad else "")
        )
        return m

    def write_audit(self, server: Server, rows0: int, answered_303: int) -> tuple[str, bool]:
        """Rows stored during the run vs 303s answered: every 303 must be a row. With wrk,
        requests still in flight when it stops are stored but never counted (at most one per connection)."""
        stored = settled_rows(server) - rows0
        extra = stored - answered_303
        slack = self.args.connections if self.client == "wrk" else 0
        ok = 0 <= extra <= slack
        text = f"{answered_303:,} answered 303, {stored:,} rows stored"
        if extra > 0:
            text += f" ({extra} still in flight when the client stopped)"
        if extra < 0:
            text += f": {-extra} answered 303 WITHOUT a stored row"
        elif extra > slack:
            text += f": {extra - slack} more rows than the client can have left in flight"
        return text + (": ok" if ok else ": FAIL"), ok


def settled_rows(server: Server) -> int:
    """Rows in the message table once the writes still in flight have landed (bounded, ~5 s)."""
    rows = server.scalar("SELECT count(*) FROM message")
    for _ in range(25):
        time.sleep(0.2)
        now = server.scalar("SELECT count(*) FROM message")
        if now == rows:
            break
        rows = now
    return rows


# --- the data -------------------------------------------------------------------------------


def fill(server: Server, messages: int, rooms: int) -> tuple[User, int, str]:
    """Two users; ROOM with ``messages`` messages from both; rooms - 1 more rooms. The poster,
    the newest message id on the room page, and the poster's CSRF token."""
    tag = secrets.token_hex(2)
    alice = User(server, f"ha{tag}").signup()
    bob = User(server, f"hb{tag}").signup()
    alice.create_room(ROOM)
    tokens = {alice.name: alice.csrf_token(room_path(ROOM)), bob.name: bob.csrf_token(room_path(ROOM))}
    for i in range(messages):
        who = (alice, bob)[(i // 3) % 2]
        text = f"Message {i} from {who.name}: the quick brown fox jumps over the lazy dog"
        if i % 10 == 0:
            text += f" https://example.com/notes/{i}"
        status, page = who.request("POST", room_path(ROOM), {"message": text, "csrf_token": tokens[who.name]})
        if status != 303:
            raise RuntimeError(f"posting message {i} failed ({status}): {page[-300:]}")
    for i in range(rooms - 1):
        alice.create_room(f"{ROOM}-{i:02d}")
    status, page = alice.request("GET", room_path(ROOM))
    ids = [int(x) for x in re.findall(r'<article id="m-(\d+)"', page)]
    if status != 200 or not ids:
        raise RuntimeError(f"the room page shows no messages ({status})")
    return alice, max(ids), tokens[alice.name]


def scenarios(user: User, newest: int, token: str) -> list[Scenario]:
    cookie = {"Cookie": user.cookie_header(), "User-Agent": USER_AGENT}  # as the user signed in
    path = room_path(ROOM)
    post = urllib.parse.urlencode({"message": "A message posted without JavaScript", "csrf_token": token})
    return [
        Scenario(
            "room",
            "room page",
            path,
            headers=cookie,
            markers=[(b'id="log"', 1), (ARTICLE, 50)],
            target=0.10,
        ),
        Scenario(
            "older",
            "history fragment",
            f"{path}?before={newest}",
            headers={**cookie, "HX-Request": "true"},
            markers=[(ARTICLE, 50)],
            absent=[b'id="log"'],
            target=0.15,
        ),
        Scenario(
            "rooms",
            "room list",
            "/",
            headers=cookie,
            markers=[(b'class="room-list"', 1), (b'class="room-item"', 50)],
            target=0.10,
        ),
        Scenario(
            "post",
            "no-JS post",
            path,
            method="POST",
            headers={**cookie, "Content-Type": "application/x-www-form-urlencoded"},
            body=post.encode(),
            status=303,
            markers=[(path.encode(), 1)],
            target=0.15,
        ),
    ]


CEILING = Scenario("ceiling", "ceiling (trivial Flask view)", "/", markers=[(b"webchat-bench ceiling", 1)])


# --- report ---------------------------------------------------------------------------------


def table(results: list[Measure], ceiling: Measure, args: argparse.Namespace, title: str) -> str:
    lines = [
        title,
        "",
        "| measurement | request | answers | bad | req/s | % of ceiling | target | p50 ms | p99 ms "
        "| server CPU | server ms/req | client CPU | other load (server/client core) |",
        "|---|---|--:|--:|--:|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for m in [ceiling, *results]:
        sc, load, cpu = m.scenario, m.load, m.cpu
        share = m.share
        if sc.target is None:
            target = "-"
        else:
            verdict = "pass" if share >= sc.target and m.rounds_ok else "FAIL"
            target = f"≥ {sc.target:.0%}: **{verdict}**"
        spread = f" ({min(m.shares):.1%}–{max(m.shares):.1%})" if len(m.shares) > 1 and sc.target is not None else ""
        request = f"`{sc.method} {sc.path}`" + (" (HX-Request)" if "HX-Request" in sc.headers else "")
        lines.append(
            f"| {sc.label} | {request} | {load.answered:,} | {load.bad} | {m.rps:,.0f} | {share:.1%}{spread} "
            f"| {target} "
            f"| {fmt(load.p50_ms)} | {fmt(load.p99_ms)} | {cpu.server:.0%} "
            f"| {cpu.server_seconds * 1000.0 / max(1, load.answered):.2f} | {cpu.client:.0%} "
            f"| {pct(cpu.other_server)}/{pct(cpu.other_client)} |"
        )
    notes = []
    for m in [ceiling, *results]:
        if not m.rounds_ok:
            notes.append(f"- {m.scenario.label}: another round had bad answers or a failed write audit (see the log)")
        if m.audit:
            notes.append(f"- write audit ({m.scenario.label}): {m.audit}")
        if m.load.bad:
            reasons = "; ".join(f"{why} x{n}" for why, n in m.load.reasons.most_common(5))
            notes.append(f"- {m.scenario.label}: {m.load.bad} bad answers: {reasons}")
        busy = m.cpu.client_core
        if m.cpu.client > CLIENT_BUSY_WARN or (busy is not None and busy > CLIENT_BUSY_WARN):
            why = (
                "the client may be the bottleneck (see --client-check)"
                if m.cpu.client > CLIENT_BUSY_WARN / 2
                else "mostly other load: the run was disturbed, repeat it"
            )
            notes.append(
                f"- WARNING {m.scenario.label}: the client's core was {max(busy or 0.0, m.cpu.client):.0%} busy "
                f"(the client itself {m.cpu.client:.0%}): {why}"
            )
    if notes:
        lines += ["", *notes]
    lines += [
        "",
        "req/s counts every answer; 'bad' are answers with the wrong status or without their body markers, "
        "plus connections that failed. '% of ceiling' is req/s over the ceiling measured just before it in the "
        "same round; each row is the round with the median share (all rounds' range in brackets; the ceiling row: "
        "the median ceiling). A target passes when that median share meets it and no round had a bad answer or a "
        "failed write audit; the targets are issue 9's. Latency is per request on busy keep-alive connections "
        "(closed loop). server CPU = worker CPU "
        "time / wall time (100% = one core); server ms/req = worker CPU time per answer; client CPU = the load "
        "generator's own CPU (this process, or wrk); 'other load' = the rest of the busy time of those cores.",
    ]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seconds", type=float, default=6.0, help="seconds per measurement (6)")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of (ceiling, every page); each page is reported from its median round (3)",
    )
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds of the same load first (1)")
    p.add_argument("--connections", type=int, default=16, help="keep-alive connections (16)")
    p.add_argument(
        "--client",
        choices=["auto", "wrk", "builtin"],
        default="auto",
        help="load generator: wrk (apt-get install wrk), the bundled Python client, or auto: wrk if on PATH",
    )
    p.add_argument("--messages", type=int, default=60, help="messages in the benchmark room (60)")
    p.add_argument("--rooms", type=int, default=50, help="rooms in the room list (50)")
    add_server_options(p)
    p.add_argument(
        "--client-check",
        action="store_true",
        help="only the ceiling, with each available client: how much of its core each client needs",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (database, logs, Lua scripts)")
    p.add_argument("--output", default=None, help="also write the markdown table to this file")
    args = p.parse_args(argv)
    check_server_options(p, args)
    if args.client == "wrk" and not shutil.which("wrk"):
        p.error("--client wrk: wrk is not installed (apt-get install wrk)")
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.messages < 51:
        p.error("--messages must be at least 51: the page and the older slice are checked for 50 messages")
    if args.rooms < 50:
        p.error("--rooms must be at least 50: the room list is checked for 50 rooms")
    return args


def start_ceiling(args: argparse.Namespace, tmp: Path) -> Server:
    server = Server(tmp, app="bench.ceiling:app", app_env=args.app_env, server_cpus=args.server_cpus, ready_path="/")
    log(f"ceiling: {' '.join(server.command())} (port {server.port})")
    server.start()
    return server


def client_check(args: argparse.Namespace, tmp: Path) -> str:
    """The ceiling app with each client: the client's CPU per request, and what its core could drive."""
    clients = (["wrk"] if shutil.which("wrk") else []) + ["builtin"]
    server = start_ceiling(args, tmp)
    lines = [
        f"### Client check: the ceiling app, {args.connections} connections, {args.seconds:g} s, "
        f"server on CPU {args.server_cpus}, client on CPU {args.client_cpus}",
        "",
        "| client | req/s | client CPU | client µs/req | requests/s one client core could drive | × ceiling |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    try:
        for client in clients:
            m = Runner(args, client, tmp).measure(server, CEILING)
            per_req = m.cpu.client * m.cpu.wall / max(1, m.load.answered)
            capacity = 1.0 / per_req if per_req else float("inf")
            lines.append(
                f"| {m.load.client} | {m.rps:,.0f} | {m.cpu.client:.0%} | {per_req * 1e6:.0f} | {capacity:,.0f} "
                f"| {capacity / max(1.0, m.rps):.1f} |"
            )
    finally:
        server.stop()
    lines += ["", "A client whose core could drive well over 1× the ceiling is not what limits the figures."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    client = args.client if args.client != "auto" else ("wrk" if shutil.which("wrk") else "builtin")
    tmp = Path(tempfile.mkdtemp(prefix="webchat-bench-http-"))
    pin_self(args.client_cpus)  # the bundled client runs here; wrk is pinned with taskset too
    servers: list[Server] = []
    try:
        if args.client_check:
            report = client_check(args, tmp)
        else:
            runner = Runner(args, client, tmp)
            # Both servers stay up (the idle one costs nothing) so that every round measures
            # the ceiling right before its pages.
            ceiling_server = start_ceiling(args, tmp)
            servers.append(ceiling_server)
            server = Server(tmp, **server_options(args))
            servers.append(server)
            log(f"migrating {server.database}")
            server.prepare()
            log(f"starting: {' '.join(server.command())} in {server.root} (port {server.port})")
            server.start()
            log(f"filling: {args.messages} messages in {ROOM}, {args.rooms} rooms")
            user, newest, token = fill(server, args.messages, args.rooms)
            ceilings: list[Measure] = []
            rounds: dict[str, list[Measure]] = collections.defaultdict(list)
            for number in range(1, args.rounds + 1):
                log(f"round {number} of {args.rounds}")
                ceilings.append(runner.measure(ceiling_server, CEILING))
                ceilings[-1].ceiling_rps = ceilings[-1].rps
                for sc in scenarios(user, newest, token):
                    m = runner.measure(server, sc, count_rows=sc.method == "POST")
                    m.ceiling_rps = ceilings[-1].rps
                    rounds[sc.key].append(m)
            server.stop()
            ceiling_server.stop()
            ceiling = median_round(ceilings)
            results = [median_round(ms) for ms in rounds.values()]

            name = wrk_version() if client == "wrk" else "bundled Python client"
            title = (
                f"### webchat HTTP, 1 gevent worker, APP_ENV={args.app_env}, {server.database}, "
                f"server on CPU {args.server_cpus}, client ({name}, {ceiling.load.client}) on CPU {args.client_cpus}, "
                f"{args.connections} connections, {args.seconds:g} s per measurement, "
                f"median of {args.rounds} rounds, commit {git_commit(server.root)}"
            )
            report = table(results, ceiling, args, title)
    except (RuntimeError, OSError) as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        for server in servers:
            tail = server.log_tail(1500)
            if tail:
                print(f"server log ({server.app}):\n{tail}", file=sys.stderr)
        return 2
    finally:
        for server in servers:
            server.stop()
        remove_tmp(tmp, args.keep)
    publish(report, "http.py", argv, started, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
