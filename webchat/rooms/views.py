from __future__ import annotations

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..timefmt import reader_view
from . import history, listing, service
from . import membership as membership_rules
from .forms import CreateRoomForm

bp = Blueprint("rooms", __name__)


@bp.route("/")
def index():
    rooms = listing.room_list(current_user.id, current_user.username)
    view = reader_view()
    return render_template(
        "rooms/index.html",
        items=listing.rendered_items([s for s in rooms if not s.direct], view),
        directs=listing.rendered_items([s for s in rooms if s.direct], view),
    )


@bp.route("/create/", methods=["GET", "POST"])
def create():
    form = CreateRoomForm()
    if form.validate_on_submit():
        try:
            room = service.create_room(form.name.data, current_user, private=form.private.data)
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


@bp.route("/room/<room_name>/", methods=["GET", "POST"])
def room(room_name: str):
    room, membership = service.room_for(room_name, current_user.id)
    if room is None:
        abort(404)
    if membership is None:  # a public room: anyone may join
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

    before, after, around = _message_id_arg("before"), _message_id_arg("after"), _message_id_arg("around")
    if around is not None and (before is not None or after is not None):
        abort(400)
    try:
        part = history.rendered_slice(room, reader_view(), before=before, after=after, around=around)
    except history.NotInRoom:
        abort(404)  # a permalink to a message of another room, or to none
    if before is not None and request.headers.get("HX-Request"):
        # Infinite scroll asks for the next older slice only.
        response = make_response(part.html)
        response.vary.add("HX-Request")  # one URL, two bodies: caches must tell them apart
        return response
    # A page that reaches the newest message turns live: the latest, a newer page with
    # nothing after it, a permalink to one of the newest messages.
    live = part.shows_latest or ((after is not None or around is not None) and not part.has_newer)
    if live and (membership.last_read_message_id or 0) < part.newest_id:
        service.mark_read(room.id, current_user.id, part.newest_id)
    html = render_template(
        "rooms/room.html",
        room=room,
        title=room.title_for(current_user.username),
        can_manage=membership_rules.can_manage(room, current_user),
        part=part,
        live=live,
        error=error,
        draft=draft,
        stale_after=current_app.config["HEARTBEAT_SECONDS"] * 2.5,
    )
    response = make_response(html, 400 if error else 200)
    response.vary.add("HX-Request")
    return response
