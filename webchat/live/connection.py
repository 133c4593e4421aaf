"""One WebSocket: a bounded outgoing queue, served by the socket's own greenlet.

The handler greenlet does everything for its socket: it reads (simple-websocket's
per-socket reader thread is replaced by an event-loop watcher, since every greenlet
holds at least a 16 KB frame stack on Python 3.11+), and it is the only writer
(simple-websocket has no send lock). It sleeps on the socket's event, which the
watcher sets when bytes arrive and ``push`` sets for outgoing frames.

A reader that lets its queue fill up is closed with 1013 ("try again later"), which
the htmx ws extension answers by reconnecting and catching up.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import gevent
from simple_websocket import Server

from ..i18n import View
from .frames import encode_text_frame

if TYPE_CHECKING:
    from .sidebar import Sidebar

WRITE_TIMEOUT = 10.0
# Heartbeats keep data in flight; a peer that stops acknowledging it for this long
# (a phone that lost its network, a half-dead NAT entry) is dropped by the kernel,
# so it leaves presence instead of lingering for TCP's ~15 minute default.
UNACKED_TIMEOUT_MS = 30_000


class NoReaderThread:
    """Given to simple-websocket as its ``thread_class``: no thread is started, the
    handler greenlet reads the socket itself (``Connection._read``)."""

    name = "webchat-socket"

    def __init__(self, target: Callable[[], None]) -> None:
        pass

    def start(self) -> None:
        pass


class Connection:
    def __init__(self, ws: Server, queue_limit: int, view: View, user_id: int, session: str | None) -> None:
        self.ws = ws
        self.view = view  # sockets of one view share every pushed frame (hub.py)
        self.user_id = user_id
        self.session = session  # the server-side session it was opened with (revocation)
        self.room_id: int | None = None
        self.sidebar: Sidebar | None = None  # the page's room list, when it shows one
        self.id = uuid.uuid4().hex
        self.queue_limit = queue_limit
        self.pending: deque[tuple[bytes, int | None]] = deque()
        self.skip_ids: frozenset[int] = frozenset()
        self.newest_id = 0  # the newest message this socket has delivered
        self.close_code: int | None = None
        self.close_reason = ""
        self.writing = False
        self.readable = False
        self._watcher = gevent.get_hub().loop.io(ws.sock.fileno(), 1)
        self._watcher.start(self._on_readable)
        if hasattr(socket, "TCP_USER_TIMEOUT"):  # Linux
            with contextlib.suppress(OSError):
                ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, UNACKED_TIMEOUT_MS)

    # --- called from other greenlets: never block ---------------------------------

    def push(self, frame: bytes, message_id: int | None = None) -> None:
        if self.close_code is not None:
            return
        if len(self.pending) >= self.queue_limit:
            self.request_close(1013, "Too far behind: reconnecting")
            return
        self.pending.append((frame, message_id))
        self.ws.event.set()

    def wake(self) -> None:
        """Let the handler look at its due work (the sidebar's coalesced update)."""
        self.ws.event.set()

    def request_close(self, code: int, reason: str, last_words: bytes | None = None) -> None:
        """Close soon. ``last_words``: a frame to send first (why it closes), after
        which nothing else queued is sent."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.pending.clear()
            if last_words is not None:
                self.pending.append((last_words, None))
            if self.writing:
                # Stuck mid-write to a reader that does not read: no close frame could
                # get through. Reset the connection now, which also frees the kernel's
                # send buffer, rather than wait for WRITE_TIMEOUT.
                self._abort()
        self.ws.event.set()

    def _on_readable(self) -> None:
        # Runs in the event loop. Stop watching until the handler has read, or a
        # level-triggered watcher would spin while the handler waits on the database.
        self._watcher.stop()
        self.readable = True
        self.ws.event.set()

    # --- called from the handler greenlet only ---------------------------------------

    def _read(self) -> None:
        """One recv (the socket is readable, so it does not block) fed to wsproto:
        pings are answered, a close is acknowledged, frames land in input_buffer."""
        ws = self.ws
        self.readable = False
        try:
            data = ws.sock.recv(ws.receive_bytes)
        except OSError:
            data = b""
        if not data:
            ws.connected = False
            return
        ws.ws.receive_data(data)
        ws.connected = ws._handle_events()
        if ws.connected:
            self._watcher.start(self._on_readable)

    def send_now(self, html: str) -> None:
        """Send ahead of anything queued (the catch-up frame must precede live ones)."""
        self.pending.appendleft((encode_text_frame(html), None))

    def run(
        self,
        on_frame: Callable[[str | bytes], None],
        on_heartbeat: Callable[[], None],
        heartbeat: float,
        on_wake: Callable[[], None] | None = None,
    ) -> None:
        ws = self.ws
        next_beat = time.monotonic() + heartbeat
        try:
            while ws.connected:
                ws.event.wait(timeout=max(0.0, next_beat - time.monotonic()))
                ws.event.clear()
                if self.readable:
                    self._read()
                while ws.input_buffer and self.close_code is None:
                    on_frame(ws.input_buffer.pop(0))
                    self._flush()  # a busy sender must not fill its own queue
                if self.close_code is not None:
                    break
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + heartbeat
                    on_heartbeat()
                if on_wake is not None:
                    on_wake()
                self._flush()
            if self.close_code is not None:
                self._flush()  # the last words, if any
                self._close(self.close_code, self.close_reason)
        finally:
            self._watcher.stop()
            self._watcher.close()

    def _flush(self) -> None:
        batch = []
        skip = self.skip_ids
        while self.pending:
            frame, message_id = self.pending.popleft()
            if message_id is not None:
                if message_id in skip:
                    continue  # the catch-up frame held it already
                self.newest_id = max(self.newest_id, message_id)
            batch.append(frame)
        if batch:
            self.writing = True
            try:
                with gevent.Timeout(WRITE_TIMEOUT):
                    self.ws.sock.sendall(b"".join(batch))
            except (OSError, gevent.Timeout):
                self.request_close(1013, "Too slow: reconnecting")
            finally:
                self.writing = False

    def _close(self, code: int, reason: str) -> None:
        try:
            with gevent.Timeout(1.0):
                self.ws.close(reason=code, message=reason)
        except Exception:  # noqa: BLE001, S110 - the peer may be gone; we shut the socket below
            pass
        self._shutdown()

    def _abort(self) -> None:
        self.ws.connected = False
        try:
            self.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.ws.sock.close()  # with linger 0: a TCP reset, unsent bytes dropped
        except OSError:
            pass

    def _shutdown(self) -> None:
        self.ws.connected = False
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
