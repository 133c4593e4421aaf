"""/mentions/: the messages that mention me, newest first, across the rooms I can read."""

from __future__ import annotations

from functools import cache

from flask import abort, render_template, request
from flask_login import current_user
from sqlalchemy import bindparam, false, or_, select

from ..extensions import db
from ..models import MAX_ID, Membership, Mention, Message, Room
from . import service
from .views import bp

PAGE = 30


@cache
def _query():
    # One statement: the page plus one row that says whether there is more. A room the
    # reader left (or a private one they were removed from) is not readable any more.
    me = bindparam("me")
    return (
        select(Message, Room)
        .join(Mention, Mention.message_id == Message.id)
        .join(Room, Room.id == Message.room_id)
        .outerjoin(Membership, (Membership.room_id == Room.id) & (Membership.user_id == me))
        .where(
            Mention.user_id == me,
            Message.id < bindparam("before"),
            Message.deleted_at.is_(None),
            or_(Room.private == false(), Membership.id.is_not(None)),
        )
        .order_by(Message.id.desc())
        .limit(PAGE + 1)
    )


@bp.route("/mentions/")
def mentions():
    raw = request.args.get("before", "")
    before = service.message_id_value(raw) if raw else MAX_ID
    if before is None:
        abort(400)
    rows = db.session.execute(_query(), {"me": current_user.id, "before": before}).all()
    return render_template(
        "rooms/mentions.html",
        rows=[(m, room, room.title_for(current_user.username)) for m, room in rows[:PAGE]],
        older=rows[PAGE - 1][0].id if len(rows) > PAGE else None,
    )
