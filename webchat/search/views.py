from __future__ import annotations

from flask import Blueprint, abort, make_response, render_template, request
from flask_login import current_user

from ..rooms import service
from ..rooms.views import _message_id_arg
from . import query

bp = Blueprint("search", __name__)


@bp.route("/search/")
def search():
    """The search page, or with htmx (``HX-Request``) only its results, as typed.

    ``room=<name>`` keeps to one room: a room the reader may not read is a 404, as
    its page is. A text too long is a 400 with the error next to the box.
    """
    before = _message_id_arg("before")
    room = None
    if request.args.get("room"):
        room, _ = service.room_for(request.args["room"], current_user.id)
        if room is None:
            abort(404)
    error, results = None, None
    try:
        text = query.clean_query(request.args.get("q"))
    except query.InvalidQuery as exc:
        error, text = str(exc), request.args.get("q", "").strip()
    if text and error is None:
        results = query.search(
            current_user.id, current_user.username, text, before=before, room_id=room.id if room else None
        )
    # htmx asks for the results alone; restoring a page from history needs all of it.
    fragment = bool(request.headers.get("HX-Request")) and not request.headers.get("HX-History-Restore-Request")
    html = render_template(
        "search/_results.html" if fragment else "search/search.html",
        q=text,
        room=room,
        room_title=room.title_for(current_user.username) if room else None,
        before=before,
        results=results,
        error=error,
        oob=fragment,
    )
    response = make_response(html, 400 if error else 200)
    response.vary.add("HX-Request")  # one URL, two bodies: caches must tell them apart
    return response
