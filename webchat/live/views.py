"""The room's WebSocket: /ws/chat/<room_name>/?after=<newest id the page showed>&seq=<the
room's change number when the page was rendered>.

On every (re)connect: check the session's user, the Origin and the membership
against the database; join the hub (subscribe) first, then send everything newer than
``after`` from the database in one frame that replaces the live part of the log, with
the messages up to ``after`` that changed since ``seq`` (edited, deleted, reacted to)
replaced in place, then stream, skipping ids that frame already held. Nothing is lost,
nothing doubles.
"""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlsplit

from flask import Blueprint, current_app, g, render_template, request, session
from flask_babel import gettext
from flask_login import current_user
from simple_websocket import Server
from sqlalchemy.exc import SQLAlchemyError

from .. import fragments, querylog
from ..extensions import db, render_as_visitor, sock
from ..i18n import View, current_language
from ..models import User
from ..rooms import history, listing, service
from ..timefmt import reader_view, reader_zone
from . import broker as brokers
from . import frames
from .connection import Connection
from .sidebar import Sidebar

bp = Blueprint("live", __name__)

POLICY_VIOLATION = 1008
SERVER_ERROR = 1011


def origin_allowed(origin: str | None) -> bool:
    """Browsers always send Origin on a WebSocket; a foreign one is a cross-site attempt."""
    if not origin:
        return False
    if origin in current_app.config["ALLOWED_ORIGINS"]:
        return True
    return urlsplit(origin).netloc == request.host


def _refuse(ws: Server, reason: str, code: int = POLICY_VIOLATION) -> None:
    """Tell the page why, then close: 1008 is final for the htmx client, 1011 is retried."""
    ws.send(
        render_template("live/_status.html", state="refused" if code == POLICY_VIOLATION else "retry", reason=reason)
    )
    ws.close(reason=code, message=reason)


@bp.before_request
def _no_compression() -> None:
    """Refuse permessage-deflate: fragments are small, and zlib state would cost every
    socket tens of kilobytes (our frames are pre-encoded uncompressed anyway)."""
    request.environ.pop("HTTP_SEC_WEBSOCKET_EXTENSIONS", None)


@sock.route("/ws/chat/<room_name>/", bp=bp)
def room_socket(ws: Server, room_name: str) -> None:
    try:
        _serve(ws, room_name)
    except SQLAlchemyError as exc:
        # The database is away: say so, and close with 1011 so htmx retries with
        # backoff and catches up once it is back. Never a hung socket.
        current_app.logger.warning("socket closed, database unavailable: %s", type(exc).__name__)
        db.session.rollback()
        if "_login_user" not in g:
            render_as_visitor()
        with contextlib.suppress(Exception):  # the peer may be gone already
            _refuse(ws, gettext("The server cannot reach its database. Retrying…"), SERVER_ERROR)
    finally:
        db.session.remove()


def _serve(ws: Server, room_name: str) -> None:
    if not origin_allowed(request.headers.get("Origin")):
        return _refuse(ws, gettext("This page's origin may not connect."))
    if not current_user.is_authenticated:
        return _refuse(ws, gettext("You are logged out. Log in again."))
    room, membership = service.room_for(room_name, current_user.id)
    if room is None:  # a private room you are not in answers the same
        return _refuse(ws, gettext("This room does not exist."))
    if membership is None:
        return _refuse(ws, gettext("Open the room page to join it first."))
    after_id = service.message_id_value(request.args.get("after")) or 0
    seq = service.message_id_value(request.args.get("seq"))  # None: an old page, no changes sent
    session = LiveSession(ws, room.id, room.name, after_id, seq)
    del room  # keep ids, not rows, for the socket's life
    session.run()


def follow_list(conn: Connection, hub, current_room: int | None = None, room_name: str | None = None) -> None:
    """The page shows its user's room list: bring it up to date (the page may be older
    than this reconnect) and keep it so from the hub's events (webchat/live/sidebar.py)."""
    with querylog.unit(current_app, "ws.list"):
        summaries = listing.room_list(current_user.id, current_user.username)
    db.session.remove()
    conn.sidebar = Sidebar(current_user.id, summaries, current_room, room_name)
    hub.watch(conn)
    view = reader_view()
    html = render_template(
        "live/_sidebar_lists.html",
        items=listing.rendered_items([s for s in summaries if not s.direct], view),
        directs=listing.rendered_items([s for s in summaries if s.direct], view),
        total=conn.sidebar.total_unread(),
        room_name=room_name,
    )
    conn.push(frames.encode_text_frame(html))


def send_list_news(conn: Connection) -> None:
    """Called on every wake of the socket's greenlet (every frame it is given): the
    coalesced list update, if one is due — checked before anything is computed."""
    sidebar = conn.sidebar
    if sidebar is None or not sidebar.is_due():
        return
    html = sidebar.update_html(reader_view())
    if html:
        conn.push(frames.encode_text_frame(html))


@sock.route("/ws/list/", bp=bp)
def list_socket(ws: Server) -> None:
    """The room list page's socket: only the list's news, for its own user."""
    try:
        if not origin_allowed(request.headers.get("Origin")):
            return _refuse(ws, gettext("This page's origin may not connect."))
        if not current_user.is_authenticated:
            return _refuse(ws, gettext("You are logged out. Log in again."))
        cfg = current_app.config
        conn = Connection(
            ws, cfg["WS_QUEUE_FRAMES"], View(current_language(), reader_zone()), current_user.id, session.get("sid")
        )
        hub = current_app.extensions["webchat.hub"]
        hub.users.setdefault(conn.user_id, set()).add(conn)  # revocations reach it too
        try:
            follow_list(conn, hub)
            conn.run(lambda _raw: None, lambda: None, cfg["HEARTBEAT_SECONDS"], lambda: send_list_news(conn))
        finally:
            hub.unwatch(conn)
            hub.forget_user_socket(conn)
    except SQLAlchemyError:
        db.session.rollback()
        with contextlib.suppress(Exception):
            _refuse(ws, gettext("The server cannot reach its database. Retrying…"), SERVER_ERROR)
    finally:
        db.session.remove()


class LiveSession:
    """What one socket does in one room: catch up, relay, and speak for its user."""

    def __init__(self, ws: Server, room_id: int, room_name: str, after_id: int, seq: int | None = None) -> None:
        cfg = current_app.config
        self.app = current_app._get_current_object()
        self.hub = current_app.extensions["webchat.hub"]
        self.broker = brokers.get()
        self.room_id, self.room_name, self.after_id, self.seq = room_id, room_name, after_id, seq
        self.person = brokers.Person(current_user.id, current_user.username)
        self.view = View(current_language(), reader_zone())
        self.conn = Connection(ws, cfg["WS_QUEUE_FRAMES"], self.view, current_user.id, session.get("sid"))
        self.conn.room_id = room_id
        self.max_frame = cfg["WS_MAX_FRAME_BYTES"]
        self.last_typing = 0.0

    def run(self) -> None:
        cfg = self.app.config
        self.hub.add(self.room_id, self.conn)  # subscribe before reading the database
        try:
            self._catch_up()
            follow_list(self.conn, self.hub, self.room_id, self.room_name)
            self._touch_presence()
            self.app.extensions["webchat.presence"].changed(self.room_id)
            self.conn.run(
                self._on_frame, self._on_heartbeat, cfg["HEARTBEAT_SECONDS"], lambda: send_list_news(self.conn)
            )
        finally:
            self.hub.unwatch(self.conn)
            self.hub.remove(self.room_id, self.conn)
            self.broker.presence_drop(self.room_id, self.conn.id)
            self.app.extensions["webchat.presence"].changed(self.room_id)
            self._mark_read()

    def _mark_read(self) -> None:
        """What this socket showed counts as read in the room list (the page already
        marked ``after_id``: write only when the socket showed more)."""
        if self.conn.newest_id <= self.after_id:
            return
        try:
            service.mark_read(self.room_id, self.person.user_id, self.conn.newest_id)
        except SQLAlchemyError:
            db.session.rollback()  # unread counts are a courtesy; the database may be away
        finally:
            db.session.remove()

    def _catch_up(self) -> None:
        with querylog.unit(self.app, "ws.catch_up"):
            self._replay()
        db.session.remove()  # hold no database connection while the socket idles

    def _replay(self) -> None:
        limit = self.app.config["WS_REPLAY_LIMIT"]
        anchor, messages, truncated = history.messages_after(self.room_id, self.after_id, limit)
        # Read after subscribing, like the messages: a change committed since is either
        # in this read or queued behind it (sent after, so the newest state wins).
        changes, changes_truncated = [], False
        if self.seq is not None and self.after_id:
            changes, changes_truncated = history.changed_since(self.room_id, self.after_id, self.seq, limit)
        self.conn.skip_ids = frozenset(m.id for m in messages)
        self.conn.newest_id = max(self.conn.skip_ids, default=self.after_id)

        def render() -> str:
            return render_template(
                "live/_replay.html",
                messages=messages,
                anchor=anchor,
                truncated=truncated,
                changes=[] if changes_truncated else changes,
                changes_truncated=changes_truncated,
                room_name=self.room_name,
                tz=self.view.time_zone,
            )

        # A restart reconnects a whole room with the same ``after``: one rendering per view.
        # A message's HTML depends on its row, which changes only with its changed_seq.
        def state(rows) -> tuple:
            return tuple((m.id, m.changed_seq) for m in rows)

        key = ("replay", self.room_id, self.after_id, truncated, changes_truncated, state(messages), state(changes))
        self.conn.send_now(fragments.cached((*key, self.view), render) + self._heartbeat()[0])

    def _heartbeat(self) -> tuple[str, bytes]:
        return self.app.extensions["webchat.presence"].heartbeat(self.room_id, self.view.language)

    def _touch_presence(self) -> None:
        self.broker.presence_touch(self.room_id, self.conn.id, self.person, self.app.config["PRESENCE_TTL_SECONDS"])

    def _on_heartbeat(self) -> None:
        self._touch_presence()
        self.conn.push(self._heartbeat()[1])

    def _on_frame(self, raw: str | bytes) -> None:
        with querylog.unit(self.app, "ws.frame"):
            self._handle_frame(raw)

    def _handle_frame(self, raw: str | bytes) -> None:
        try:
            incoming = frames.parse(raw, self.max_frame)
            if incoming.typing:
                self._typing()
            else:
                self._send(incoming.text, incoming.reply_to)
        except (frames.BadFrame, service.InvalidInput) as exc:
            self._reply(render_template("rooms/_composer_error.html", error=str(exc), oob=True))
        except Exception:  # noqa: BLE001 - a database fault must not kill the socket
            current_app.logger.exception("socket frame failed")
            db.session.rollback()
            self._reply(
                render_template(
                    "rooms/_composer_error.html",
                    error=gettext("Your message could not be saved. Please try again in a moment."),
                    oob=True,
                )
            )
        finally:
            db.session.remove()

    def _reply(self, html: str) -> None:
        """A fragment for this socket only."""
        self.conn.push(frames.encode_text_frame(html))

    def _send(self, text: object, reply_to: object = None) -> None:
        # Fresh rows per frame: the socket outlives any one database session.
        room = service.room_by_id(self.room_id)
        user = db.session.get(User, self.person.user_id)
        if room is None or user is None:
            raise service.InvalidInput(gettext("This room or your account no longer exists. Reload the page."))
        service.post_message(room, user, text, reply_to)
        if self.broker.typing_drop(self.room_id, self.person.user_id):
            self.app.extensions["webchat.presence"].publish_typing(self.room_id)
        self._reply(render_template("rooms/_composer.html", room=room, oob=True, focus=True))

    def _typing(self) -> None:
        now = time.monotonic()
        if now - self.last_typing < 1.0:  # ignore floods; htmx throttles to one per 2 s
            return
        self.last_typing = now
        self.broker.typing_touch(self.room_id, self.person, self.app.config["TYPING_TTL_SECONDS"])
        self.app.extensions["webchat.presence"].publish_typing(self.room_id)
