"""One WebSocket: a bounded outgoing queue drained by the socket's own greenlet.

The handler greenlet is the only writer of the socket (simple-websocket has no send
lock). It sleeps on the socket's event, which the reader thread sets for incoming
frames and ``push`` sets for outgoing ones, so each idle socket costs no extra
greenlet. A reader that lets its queue fill up is closed with 1013 ("try again
later"), which the htmx ws extension answers by reconnecting and catching up.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
import uuid
from collections import deque
from collections.abc import Callable

import gevent
from simple_websocket import Server

from .frames import encode_text_frame

WRITE_TIMEOUT = 10.0
# Heartbeats keep data in flight; a peer that stops acknowledging it for this long
# (a phone that lost its network, a half-dead NAT entry) is dropped by the kernel,
# so it leaves presence instead of lingering for TCP's ~15 minute default.
UNACKED_TIMEOUT_MS = 30_000


class Connection:
    def __init__(self, ws: Server, queue_limit: int) -> None:
        self.ws = ws
        self.id = uuid.uuid4().hex
        self.queue_limit = queue_limit
        self.pending: deque[tuple[bytes, int | None]] = deque()
        self.skip_ids: frozenset[int] = frozenset()
        self.close_code: int | None = None
        self.close_reason = ""
        self.writing = False
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

    def request_close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            self.pending.clear()
            if self.writing:
                # Stuck mid-write to a reader that does not read: no close frame could
                # get through. Reset the connection now, which also frees the kernel's
                # send buffer, rather than wait for WRITE_TIMEOUT.
                self._abort()
        self.ws.event.set()

    # --- called from the handler greenlet only ---------------------------------------

    def send_now(self, html: str) -> None:
        """Send ahead of anything queued (the catch-up frame must precede live ones)."""
        self.pending.appendleft((encode_text_frame(html), None))

    def run(
        self,
        on_frame: Callable[[str | bytes], None],
        on_heartbeat: Callable[[], None],
        heartbeat: float,
    ) -> None:
        ws = self.ws
        next_beat = time.monotonic() + heartbeat
        while ws.connected:
            ws.event.wait(timeout=max(0.0, next_beat - time.monotonic()))
            ws.event.clear()
            while ws.input_buffer and self.close_code is None:
                on_frame(ws.input_buffer.pop(0))
            if self.close_code is not None:
                break
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + heartbeat
                on_heartbeat()
            self._flush()
        if self.close_code is not None:
            self._close(self.close_code, self.close_reason)

    def _flush(self) -> None:
        batch = []
        skip = self.skip_ids
        while self.pending:
            frame, message_id = self.pending.popleft()
            if message_id is None or message_id not in skip:
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
