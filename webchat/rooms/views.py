from __future__ import annotations

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from . import service
from .forms import CreateRoomForm

bp = Blueprint("rooms", __name__)


@bp.route("/")
def index():
    return render_template("rooms/index.html", rooms=service.room_list(current_user.id))


@bp.route("/create/", methods=["GET", "POST"])
def create():
    form = CreateRoomForm()
    if form.validate_on_submit():
        try:
            room = service.create_room(form.name.data, current_user)
        except service.InvalidInput as exc:
            form.name.errors = [str(exc)]
        else:
            return redirect(url_for("rooms.room", room_name=room.name), code=303)
    return render_template("rooms/create.html", form=form), (400 if form.errors else 200)


def _message_id_arg(name: str) -> int | None:
    value = request.args.get(name)
    if value is None:
        return None
    # ASCII digits only: str.isdigit() also accepts '²' or '١', which int() rejects or reads oddly.
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        abort(400)
    return int(value)


def _get_room(room_name: str):
    room = service.find_room(room_name)
    if room is None:
        abort(404)
    return room


@bp.route("/room/<room_name>/", methods=["GET", "POST"])
def room(room_name: str):
    room = _get_room(room_name)
    membership = service.enter_room(room, current_user)
    error, draft = None, ""
    if request.method == "POST":
        draft = request.form.get("message", "")
        try:
            service.post_message(room, current_user, draft)
        except service.InvalidInput as exc:
            error = str(exc)
        else:
            return redirect(url_for("rooms.room", room_name=room.name), code=303)

    before, after = _message_id_arg("before"), _message_id_arg("after")
    page = service.history(room, before=before, after=after)
    if after is not None and not page.messages:
        # Nothing newer than `after`: the reader is up to date, so show the latest page
        # (an empty after-page has no first message to link "older" from).
        before = after = None
        page = service.history(room)
    if before is not None and request.headers.get("HX-Request"):
        # Infinite scroll asks for the next older slice only.
        response = make_response(render_template("rooms/_older.html", room=room, page=page))
        response.vary.add("HX-Request")  # one URL, two bodies: caches must tell them apart
        return response
    live = (before is None and after is None) or (after is not None and not page.has_newer)
    newest_id = page.messages[-1].id if page.messages else (after or 0)
    if live and (membership.last_read_message_id or 0) < newest_id:
        service.mark_read(room.id, current_user.id, newest_id)
    html = render_template(
        "rooms/room.html",
        room=room,
        page=page,
        live=live,
        newest_id=newest_id,
        error=error,
        draft=draft,
        stale_after=current_app.config["HEARTBEAT_SECONDS"] * 2.5,
    )
    response = make_response(html, 400 if error else 200)
    response.vary.add("HX-Request")
    return response
