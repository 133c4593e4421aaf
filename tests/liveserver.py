"""Real servers for live tests: gunicorn + gevent subprocesses on free ports, and
small HTTP/WebSocket clients that behave like a browser (cookies, CSRF, Origin)."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import websocket

ROOT = Path(__file__).resolve().parent.parent
CSRF_RE = re.compile(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``gunicorn -c gunicorn.conf.py wsgi:app``, the way production runs it."""

    def __init__(self, database_url: str, tmp_path: Path, workers: int = 1, port: int | None = None, **env: str):
        self.database_url = database_url
        self.tmp_path = tmp_path
        self.workers = workers
        self.port = port or free_port()
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = tmp_path / f"server-{self.port}.log"
        # Every request and socket unit's SQL statements (webchat/querylog.py).
        self.query_log = tmp_path / f"queries-{self.port}.jsonl"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> LiveServer:
        env = {
            **os.environ,
            "APP_ENV": "testing",
            "DATABASE_URL": self.database_url,
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(self.workers),
            "WEBCHAT_INSTANCE_DIR": str(self.tmp_path / "instance"),
            "HEARTBEAT_SECONDS": "1",
            "PRESENCE_TTL_SECONDS": "3",
            "LOG_LEVEL": "warning",
            "QUERY_LOG": str(self.query_log),
            "SIGNUP_MAX_PER_HOUR": "100000",  # every test signs up from 127.0.0.1
            **self.env,
        }
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                urllib.request.urlopen(self.url + "/login/", timeout=1).read()
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.proc:
            self.log.close()

    def kill(self) -> None:
        """Crash the server: no clean close for anybody."""
        self.stop(signal.SIGKILL)


class Browser:
    """Cookies and CSRF like a browser, over real HTTP."""

    def __init__(self, server: LiveServer):
        self.server = server
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with self.opener.open(self.server.url + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def post(self, path: str, data: dict, form_path: str | None = None) -> tuple[int, str]:
        _, page = self.get(form_path or path)
        token = CSRF_RE.search(page).group(1)
        body = urllib.parse.urlencode({**data, "csrf_token": token}).encode()
        try:
            with self.opener.open(self.server.url + path, data=body, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def signup(self, username: str, password: str = "correct horse") -> Browser:
        status, page = self.post("/signup/", {"username": username, "password": password, "confirm": password})
        assert status == 200 and "Log out" in page, page[-2000:]
        return self

    def create_room(self, name: str) -> Browser:
        status, page = self.post("/create/", {"name": name})
        assert status == 200, page[-2000:]
        return self

    def room_path(self, room: str) -> str:
        return f"/room/{urllib.parse.quote(room)}/"

    def enter(self, room: str) -> str:
        status, page = self.get(self.room_path(room))
        assert status == 200, page[-2000:]
        return page

    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def socket(self, room: str, after: int = 0, origin: str | None = None, seq: int | None = None) -> Socket:
        return Socket(self, room, after, origin, seq)

    def page_socket(self, room: str) -> Socket:
        """The socket the room page opens: its ws-connect URL's after= and seq=, as htmx
        reconnects with them every time."""
        after, seq = socket_args(self.enter(room))
        return self.socket(room, after=after, seq=seq)


class Socket:
    """A real WebSocket client speaking what htmx's ws extension speaks."""

    def __init__(
        self,
        browser: Browser,
        room: str,
        after: int = 0,
        origin: str | None = None,
        seq: int | None = None,
        path: str | None = None,
    ):
        path = path or f"/ws/chat/{urllib.parse.quote(room)}/?after={after}"
        if seq is not None:
            path += f"&seq={seq}"
        self.after, self.seq = after, seq
        url = browser.server.url.replace("http://", "ws://") + path
        self.ws = websocket.create_connection(
            url,
            cookie=browser.cookie_header(),
            origin=origin or browser.server.url,
            timeout=10,
            enable_multithread=True,
        )
        self.frames: list[str] = []
        self.close_code: int | None = None

    def send(self, text: str, reply_to: int | str | None = None) -> None:
        frame = {"message": text, "csrf_token": "x", "HEADERS": {"HX-Request": "true"}}
        if reply_to is not None:
            frame["reply_to"] = str(reply_to)  # the composer's hidden field, as htmx sends it
        self.send_raw(json.dumps(frame))

    def typing(self) -> None:
        self.send_raw(json.dumps({"message": "draft", "typing": "1", "HEADERS": {"HX-Request": "true"}}))

    def send_raw(self, data: str | bytes) -> None:
        if isinstance(data, bytes):
            self.ws.send_binary(data)
        else:
            self.ws.send(data)

    def recv(self, timeout: float = 5.0) -> str | None:
        """The next text frame, or None once the server closed (close_code is then set)."""
        self.ws.settimeout(timeout)
        while True:
            opcode, data = self.ws.recv_data(control_frame=True)
            if opcode == websocket.ABNF.OPCODE_TEXT:
                frame = data.decode()
                self.frames.append(frame)
                return frame
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005
                return None

    def wait_for(self, pattern: str, timeout: float = 5.0) -> str:
        """Read frames until one matches ``pattern`` (a regex); return that frame."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            frame = self.recv(max(0.05, deadline - time.monotonic()))
            if frame is None:
                raise AssertionError(f"closed ({self.close_code}) before {pattern!r}")
            if regex.search(frame):
                return frame
        raise AssertionError(f"no frame matching {pattern!r}")

    def wait_closed(self, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.recv(max(0.05, deadline - time.monotonic())) is None:
                    return self.close_code
            except websocket.WebSocketConnectionClosedException:
                return self.close_code or 1006
        raise AssertionError("socket still open")

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001, S110 - already closed by the server
            pass


def chatting(alice_server: LiveServer, bob_server: LiveServer, name) -> tuple[str, Browser, Browser, Socket, Socket]:
    """A fresh room (``name(prefix)`` makes unique names) that alice owns on one server
    and bob has joined on another (or the same), each with an open socket."""
    room = name("room")
    alice = Browser(alice_server).signup(name("alice")).create_room(room)
    bob = Browser(bob_server).signup(name("bob"))
    bob.enter(room)
    a, b = alice.socket(room), bob.socket(room)
    a.wait_for('id="log-live"')
    b.wait_for('id="log-live"')
    return room, alice, bob, a, b


def message_ids(html: str) -> list[int]:
    return [int(m) for m in re.findall(r'<article id="m-(\d+)"', html)]


class ListSocket(Socket):
    """The room list page's socket (/ws/list/)."""

    def __init__(self, browser: Browser, origin: str | None = None):
        super().__init__(browser, "", origin=origin, path="/ws/list/")


WS_CONNECT_RE = re.compile(r'ws-connect="[^"]*[?;]after=(\d+)(?:&amp;seq=(\d+))?"')


def socket_args(page: str) -> tuple[int, int | None]:
    """The after= and seq= of a room page's ws-connect URL."""
    match = WS_CONNECT_RE.search(page)
    assert match, "the room page has no ws-connect URL"
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None


OOB_RE = re.compile(r'<\w+ [^>]*?hx-swap-oob="([^"]*)"[^>]*>')
CHANGE_TARGET_RE = re.compile(r"innerHTML:#m-(\d+)(?: \.msg-content)?,#oob-sink")


def change_of(message_id: int) -> str:
    """A pattern for Socket.wait_for: a frame that changes (or empties) that message."""
    return rf"innerHTML:#m-{message_id}(?: \.msg-content)?,#oob-sink"


def changes(frame: str) -> dict[int, str]:
    """The messages a frame replaces in place, each with its new inside ("" once deleted)."""
    swaps = list(OOB_RE.finditer(frame))
    found = {}
    for i, swap in enumerate(swaps):
        target = CHANGE_TARGET_RE.fullmatch(swap.group(1))
        if target:
            body = frame[swap.end() : swaps[i + 1].start() if i + 1 < len(swaps) else len(frame)]
            found[int(target.group(1))] = body[: body.rfind("</div>")].strip()
    return found
