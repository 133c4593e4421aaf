from __future__ import annotations

import contextlib

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from .. import fragments
from ..i18n import current_language
from ..models import Message, direct_title
from ..templating import kept_url_for
from ..timefmt import reader_view
from . import history, listing, service
from . import membership as membership_rules
from .forms import CreateRoomForm

bp = Blueprint("rooms", __name__)


def room_lists(view: tuple) -> dict:
    """The reader's rooms and direct conversations, rendered (kept whole while no entry
    changed: one lookup instead of one per room), with the unread total."""
    rooms = tuple(listing.room_list(current_user.id, current_user.username))

    def render() -> Markup:
        items = listing.rendered_items([s for s in rooms if not s.direct], view)
        directs = listing.rendered_items([s for s in rooms if s.direct], view)
        return Markup(render_template("rooms/_lists.html", items=items, directs=directs))  # noqa: S704

    return {
        "lists": fragments.cached(("lists", rooms, view), render),
        "empty": not rooms,
        "unread_total": sum(s.unread or 0 for s in rooms),
    }


def _empty_lists() -> Markup:
    return fragments.cached(
        ("lists-empty", current_language()),
        lambda: Markup(render_template("rooms/_lists.html", items=[], directs=[])),  # noqa: S704
    )


@bp.route("/")
def index():
    return render_template("rooms/index.html", **room_lists(reader_view()))


@bp.route("/title/")
def title():
    """For htmx, when a socket says the unread total changed: the page's <title> with it.
    Echoes what the page gives (its own count, its room's name): nothing is read, and
    the text only ever reaches the page that asked (autoescaped)."""
    unread = _message_id_arg("unread") or 0
    name = request.args.get("room", "")[:100]
    page = direct_title(name, current_user.username) if name.startswith("@") else name
    return render_template("rooms/_title.html", unread_total=unread, page=page or _("Rooms"))


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
    message_id = service.message_id_value(value)
    if message_id is None:
        abort(400)
    return message_id


def _reply_arg(room) -> Message | None:
    """?reply_to=<id>: the composer answers that message (of this room, still there), else 400."""
    message_id = _message_id_arg("reply_to")
    if message_id is None:
        return None
    try:
        return service.reply_target(room, message_id)
    except service.InvalidInput:
        abort(400)


@bp.route("/room/<room_name>/", methods=["GET", "POST"])
def room(room_name: str):
    room, membership = service.room_for(room_name, current_user.id)
    if room is None:
        abort(404)
    if membership is None:  # a public room: anyone may join
        membership = service.enter_room(room, current_user)
    error, draft, reply = None, "", None
    if request.method == "POST":
        draft, reply_to = request.form.get("message", ""), request.form.get("reply_to")
        try:
            service.post_message(room, current_user, draft, reply_to)
        except service.InvalidInput as exc:
            error = str(exc)
            with contextlib.suppress(service.InvalidInput):  # still answering it, unless that was the error
                reply = service.parse_reply_to(room, reply_to)
        else:
            # Back to the room; its URL is the same for every post (built once).
            return redirect(kept_url_for("rooms.room", room_name=room.name), code=303)
    else:
        answered = _reply_arg(room)
        reply = service.quote_of(answered) if answered else None

    before, after, around = _message_id_arg("before"), _message_id_arg("after"), _message_id_arg("around")
    if around is not None and (before is not None or after is not None):
        abort(400)
    view = reader_view()
    try:
        part = history.rendered_slice(room, view, before=before, after=after, around=around)
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
    seen = membership.last_read_message_id or 0
    if live and seen < part.newest_id:
        service.mark_read(room.id, current_user.id, part.newest_id)
    # The sidebar comes with the room's socket (its first frame is the whole list, which
    # it then keeps up to date): the page itself reads no room list. Without JavaScript
    # there is no sidebar, and the room list is one link away.
    lists = {"lists": _empty_lists(), "unread_total": 0}
    html = render_template(
        "rooms/room.html",
        log=history.with_new_divider(part.html, seen, part.newest_id) if live else part.html,
        **lists,
        room=room,
        title=room.title_for(current_user.username),
        can_manage=membership_rules.can_manage(room, current_user),
        part=part,
        live=live,
        error=error,
        draft=draft,
        reply=reply,
        stale_after=current_app.config["HEARTBEAT_SECONDS"] * 2.5,
    )
    response = make_response(html, 400 if error else 200)
    response.vary.add("HX-Request")
    return response


@bp.route("/room/<room_name>/composer")
def composer(room_name: str):
    """The composer answering ?reply_to=<id> (or nothing), keeping the draft (?message=):
    htmx swaps it in from a message's "Reply" (with that message again, which closes its
    menu) and from the reply's cancel link."""
    room, membership = service.room_for(room_name, current_user.id)
    if room is None or membership is None:
        abort(404)
    answered = _reply_arg(room)
    if not request.headers.get("HX-Request"):
        return redirect(url_for("rooms.room", room_name=room.name, reply_to=answered.id if answered else None))
    draft = request.args.get("message", "")[: current_app.config["MESSAGE_MAX_CHARS"]]
    reply = service.quote_of(answered) if answered else None
    html = render_template("rooms/_composer.html", room=room, reply=reply, draft=draft, focus=True)
    if answered is not None:
        html += render_template("rooms/_restored.html", m=answered, menu_only=True)
    response = make_response(html)
    response.vary.add("HX-Request")
    return response
