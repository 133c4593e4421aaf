"""The fan-out bench's load generator: a minimal RFC 6455 client on one epoll loop.

One thread, raw non-blocking sockets: client frames are masked; server frames are only
split by their headers, and a message is found with ``bytes.find`` on
``<article id="m-`` and on the body marker ``#Q<seq>#``; nothing else is decoded.
``loadgen_check`` measures how many frames/s it reads on its own core against a fake
server (``blaster``) that writes pre-encoded frames as fast as it can.
"""

from __future__ import annotations

import base64
import resource
import secrets
import select
import socket
import subprocess
import sys
import time
import urllib.parse
from array import array
from dataclasses import dataclass, field

from bench.common import HOST, ROOT, USER_AGENT, Server, User, free_port, taskset

ARTICLE = b'<article id="m-'
ARTICLE_LEN = len(ARTICLE)
MARK = b"#Q"  # message bodies are "#Q<seq>#"
COMPOSER_ERROR = b'id="composer-error"'


def client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A final, masked client frame (RFC 6455 5.2/5.3)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = secrets.token_bytes(4)
    if n:
        key = (mask * (n // 4 + 1))[:n]
        payload = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return header + mask + payload


@dataclass
class Phase:
    """Accounting for one measured run: messages seq0 .. seq0+count-1.

    ``want[i]`` is how many readers message i should reach (the readers of its room).
    """

    seq0: int
    count: int
    send_t: array = field(default_factory=lambda: array("d"))
    lat: array = field(default_factory=lambda: array("d"))
    delivered: int = 0
    mids: dict = field(default_factory=dict)
    mismatched: int = 0
    # per message: readers reached, first and last arrival (the fan-out spread)
    reached: array = field(default_factory=lambda: array("q"))
    first_t: array = field(default_factory=lambda: array("d"))
    last_t: array = field(default_factory=lambda: array("d"))
    want: array = field(default_factory=lambda: array("q"))

    def __post_init__(self) -> None:
        self.reached = array("q", bytes(8 * self.count))
        self.first_t = array("d", bytes(8 * self.count))
        self.last_t = array("d", bytes(8 * self.count))
        self.want = array("q", bytes(8 * self.count))


class WS:
    """One client socket. ``feed`` is the hot path: frame headers and two finds per frame."""

    __slots__ = (
        "sock",
        "fd",
        "rest",
        "reader",
        "phase",
        "got",
        "dups",
        "frames",
        "close_code",
        "closed",
        "errors",
        "stale",
        "reads",
        "user",
        "keep",
    )

    def __init__(self, sock: socket.socket, rest: bytes, reader: bool) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.rest = rest
        self.reader = reader
        self.phase: Phase | None = None
        self.got: set[int] = set()
        self.dups = 0
        self.frames = 0
        self.close_code: int | None = None
        self.closed = False
        self.errors: list[str] = []
        self.stale = 0  # bench articles from before the current phase
        self.reads = 0  # recv() calls that returned data
        self.user: User | None = None  # whose cookie opened it (open_sockets)
        self.keep: list[bytes] | None = None  # a list: keep the payloads of text frames with an article

    def send_text(self, text: str) -> None:
        self.sock.sendall(client_frame(text.encode()))

    def feed(self, data: bytes, now: float) -> None:
        if self.rest:
            data = self.rest + data
            self.rest = b""
        n = len(data)
        pos = 0
        while n - pos >= 2:
            ln = data[pos + 1] & 0x7F
            if ln < 126:
                start = pos + 2
            elif ln == 126:
                if n - pos < 4:
                    break
                ln = (data[pos + 2] << 8) | data[pos + 3]
                start = pos + 4
            else:
                if n - pos < 10:
                    break
                ln = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + ln
            if end > n:
                break
            op = data[pos] & 0x0F
            self.frames += 1
            if op <= 1:  # text (or a continuation: the server sends none)
                if self.reader:
                    i = data.find(ARTICLE, start, end)
                    if i >= 0 and self.keep is not None:
                        self.keep.append(data[start:end])
                    while i >= 0:
                        self._article(data, i + ARTICLE_LEN, end, now)
                        i = data.find(ARTICLE, i + ARTICLE_LEN, end)
                else:
                    i = data.find(COMPOSER_ERROR, start, end)
                    if i >= 0:
                        gt = data.find(b">", i, end)
                        if gt >= 0 and data[gt + 1 : gt + 5] != b"</p>":
                            self.errors.append(data[gt + 1 : gt + 200].decode(errors="replace"))
            elif op == 8:
                self.close_code = int.from_bytes(data[start : start + 2], "big") if ln >= 2 else 1005
                self.closed = True
            elif op == 9:
                try:
                    self.sock.sendall(client_frame(data[start:end], 0xA))
                except OSError:
                    self.closed = True
            pos = end
        if pos < n:
            self.rest = data[pos:]

    def _article(self, data: bytes, i: int, end: int, now: float) -> None:
        j = data.find(b'"', i, end)
        k = data.find(MARK, j, end)
        if k < 0:  # a system message ("joined the room") or a foreign one
            return
        e = data.find(b"#", k + 2, end)
        seq = int(data[k + 2 : e])
        ph = self.phase
        if ph is None or seq < ph.seq0:
            self.stale += 1
            return
        mid = int(data[i:j])
        if ph.mids.setdefault(seq, mid) != mid:
            ph.mismatched += 1
        got = self.got
        if seq in got:
            self.dups += 1
        else:
            got.add(seq)
            ph.delivered += 1
            idx = seq - ph.seq0
            ph.lat.append(now - ph.send_t[idx])
            if not ph.reached[idx]:
                ph.first_t[idx] = now
            ph.reached[idx] += 1
            ph.last_t[idx] = now

    def close(self) -> None:
        if not self.closed:
            try:
                self.sock.sendall(client_frame((1000).to_bytes(2, "big"), 0x8))
            except OSError:
                pass
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


class Loop:
    """One epoll loop over every client socket."""

    def __init__(self) -> None:
        self.ep = select.epoll()
        self.conns: dict[int, WS] = {}
        self.dropped: list[WS] = []

    def add(self, ws: WS) -> None:
        ws.sock.setblocking(False)
        self.conns[ws.fd] = ws
        self.ep.register(ws.fd, select.EPOLLIN)
        if ws.rest:  # frames that came with the handshake's response
            data, ws.rest = ws.rest, b""
            ws.feed(data, time.monotonic())

    def drop(self, ws: WS) -> None:
        if self.conns.pop(ws.fd, None) is not None:
            try:
                self.ep.unregister(ws.fd)
            except OSError:
                pass
            self.dropped.append(ws)
        ws.close()

    def run(self, deadline: float, tick=None, done=None) -> bool:
        """Read until ``done()`` or the deadline; ``tick(now)`` sends and says when next."""
        poll = self.ep.poll
        conns = self.conns
        mono = time.monotonic
        while True:
            now = mono()
            if now >= deadline:
                return False
            wait = min(0.05, deadline - now)
            if tick is not None:
                nxt = tick(now)
                if nxt is not None:
                    wait = min(wait, max(0.0, nxt - mono()))
            if done is not None and done():
                return True
            for fd, _ in poll(wait, 2048):
                ws = conns.get(fd)
                if ws is None:
                    continue
                try:
                    data = ws.sock.recv(262144)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    ws.reads += 1
                    ws.feed(data, mono())
                    if ws.closed:
                        self.drop(ws)
                else:
                    if ws.close_code is None:
                        ws.close_code = 1006
                    self.drop(ws)

    def spin(self, seconds: float) -> None:
        self.run(time.monotonic() + seconds)


def handshake_request(path: str, port: int, cookie: str) -> bytes:
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{HOST}:{port}\r\n"
        # What Chromium offers; the server's frames stay uncompressed either way (RSV1 unset).
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        f"Cookie: {cookie}\r\nUser-Agent: {USER_AGENT}\r\n\r\n"
    ).encode()


def open_sockets(
    loop: Loop,
    server: Server,
    users: list[User],
    room: str,
    after: int,
    n: int,
    reader: bool,
    batch: int = 100,
    path: str | None = None,
) -> list[WS]:
    """Open n sockets (round-robin over users), ``batch`` handshakes in flight at a time;
    ``path``: another socket than the room's (the room list page's, /ws/list/)."""
    path = path or f"/ws/chat/{urllib.parse.quote(room)}/?after={after}"
    out: list[WS] = []
    deadline = time.monotonic() + 60 + n * 0.2
    for b in range(0, n, batch):
        pending = []
        for i in range(b, min(n, b + batch)):
            sock = socket.create_connection((HOST, server.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            user = users[i % len(users)]
            sock.sendall(handshake_request(path, server.port, user.cookie_header()))
            pending.append((sock, user))
        for sock, user in pending:
            buf = b""
            while b"\r\n\r\n" not in buf:
                if time.monotonic() > deadline:
                    raise RuntimeError("WebSocket handshakes took too long")
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError(f"handshake: server closed the socket; got {buf[:300]!r}")
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"handshake refused: {head[:300]!r}")
            ws = WS(sock, rest, reader)
            ws.user = user
            loop.add(ws)
            if ws.closed:
                raise RuntimeError(f"socket refused at once (close {ws.close_code}); is the user a member?")
            out.append(ws)
        loop.spin(0.01)
    return out


def blaster(port: int, conns: int, seconds: float, per_write: int) -> None:
    """Child process for --loadgen-check: a fake server writing pre-encoded frames fast."""
    body = (
        '<div hx-swap-oob="afterbegin:#log-live"><article id="m-123456" class="msg msg-user" data-author="7">\n'
        '  <p class="msg-head"><span class="msg-author">someone</span> <time datetime="2026-01-01T00:00:00Z" '
        'title="1 January 2026 00:00">00:00</time></p>\n  <p class="msg-body">#Q{seq}#</p>\n</article></div>'
    )
    listener = socket.create_server((HOST, port))
    socks = []
    for _ in range(conns):
        s, _ = listener.accept()
        s.recv(65536)
        s.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        socks.append(s)
    listener.close()
    batch = b""
    for seq in range(1, per_write + 1):
        payload = body.format(seq=seq).encode()
        batch += bytes((0x81, 126)) + len(payload).to_bytes(2, "big") + payload
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            for s in socks:
                s.sendall(batch)
    except OSError:  # the load generator has finished and closed its sockets
        pass
    for s in socks:
        s.close()


def loadgen_check(n_sockets: int, seconds: float, batch: int, server_cpus: str) -> str:
    """Frames/s this client parses on its core, from a fake server on ``server_cpus``."""
    port = free_port()
    code = f"from bench.wsclient import blaster; blaster({port}, {n_sockets}, {seconds}, {batch})"
    child = subprocess.Popen(taskset(server_cpus, [sys.executable, "-c", code]), cwd=ROOT)
    try:
        deadline = time.monotonic() + 10
        socks = []
        while len(socks) < n_sockets and time.monotonic() < deadline:
            try:
                s = socket.create_connection((HOST, port), timeout=5)
            except ConnectionRefusedError:
                time.sleep(0.05)
                continue
            s.sendall(handshake_request("/", port, ""))
            buf = b""
            while b"\r\n\r\n" not in buf:
                buf += s.recv(4096)
            socks.append(WS(s, buf.partition(b"\r\n\r\n")[2], reader=True))
        loop = Loop()
        ph = Phase(seq0=1, count=batch)
        ph.send_t.extend([time.monotonic()] * batch)
        for ws in socks:
            ws.phase = ph
            loop.add(ws)
        cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
        loop.run(t0 + max(1.0, seconds - 1.0))  # the blaster repeats its seqs: the sets stay tiny
        wall = time.monotonic() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        frames = sum(ws.frames for ws in socks)
        for ws in socks:
            loop.drop(ws)
        cpu = (cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime) / wall
        return (
            f"Load generator check: {len(socks)} sockets, {batch} frame(s) per server write: "
            f"{frames / wall:,.0f} frames/s parsed (each with one article and one marker lookup) "
            f"at {cpu:.0%} of one core."
        )
    finally:
        try:
            child.wait(timeout=seconds + 10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(5)
