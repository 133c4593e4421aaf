"""One message's actions: its menu, edit, delete, react (and the message alone, for htmx).

With htmx, a message's menu posts here (the page's hx-headers carry the CSRF token)
and the answer puts the menu back, closed, with the message's new content out of band
for this reader; the change reaches every open copy of the room through the broker
anyway (rooms/changes.py). Without JavaScript, the same URLs answer GET with a page of their
own whose form posts with its CSRF token and is redirected (303) back to the room.

A non-member gets 404 like everywhere else; a message of another room or a deleted
one 404; someone else's message (or a system message) 403, and nothing changes.
"""

from __future__ import annotations

from flask import abort, get_template_attribute, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from ..errors import render_error
from ..timefmt import reader_view
from . import changes
from .manage import _room_or_404
from .service import InvalidInput, RateLimited
from .views import bp

MESSAGE_URL = "/room/<room_name>/messages/<int(max=999999999999999999):message_id>"


@bp.errorhandler(changes.NoSuchMessage)
def _no_such_message(_error):
    return render_error(404)


@bp.errorhandler(changes.NotAllowed)
def _not_allowed(_error):
    return render_error(403)


def _htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


def _back_to(room, message_id: int | None = None):
    url = url_for("rooms.room", room_name=room.name)
    return redirect(f"{url}#m-{message_id}" if message_id else url, code=303)


def _restored(message, tz: str):
    """The message's menu, closed, and its content out of band (as a push to this view)."""
    response = make_response(render_template("rooms/_restored.html", m=message, tz=tz))
    response.vary.add("HX-Request")
    return response


def _page(room, message, action: str, status: int = 200, **context):
    return render_template(
        "rooms/message_action.html", room=room, m=message, action=action, tz=reader_view()[1], **context
    ), status


@bp.route(MESSAGE_URL)
def message(room_name: str, message_id: int):
    """The message as the room shows it (htmx: "cancel" on the inline edit form puts
    back its menu and content)."""
    room = _room_or_404(room_name)
    found = changes.find(room, message_id)
    if not _htmx():
        return _back_to(room, message_id)
    return _restored(found, reader_view()[1])


@bp.route(MESSAGE_URL + "/menu")
def message_menu(room_name: str, message_id: int):
    """What a message's menu offers. With htmx: its items, loaded the first time the menu
    opens (the page's style shows "edit" and "delete" to whom may). Without JavaScript:
    a page with the same choices, only those this reader may take."""
    room = _room_or_404(room_name)
    found = changes.find(room, message_id)
    if found.is_system:
        raise changes.NotAllowed
    if _htmx():
        response = make_response(get_template_attribute("rooms/_message.html", "menu_items")(found))
        response.vary.add("HX-Request")
        return response
    return _page(
        room,
        found,
        "menu",
        chosen=None,
        mine=_own_reactions(found),
        may_edit=changes.may_edit(found, current_user),
        may_delete=changes.may_delete(room, found, current_user),
    )


def _own_reactions(message) -> set[str]:
    return {g.emoji for g in changes.reaction_groups(message.reactions) if str(current_user.id) in g.by.split()}


@bp.route(MESSAGE_URL + "/edit", methods=["GET", "POST"])
def edit_message(room_name: str, message_id: int):
    room = _room_or_404(room_name)
    tz = reader_view()[1]  # the reader's view, read before the change commits
    error = None
    if request.method == "POST":
        draft = request.form.get("message", "")
        try:
            state = changes.edit_message(room, current_user, message_id, draft)
        except InvalidInput as exc:
            error = str(exc)
        else:
            return _restored(state, tz) if _htmx() else _back_to(room, message_id)
    found = changes.find(room, message_id)
    if not changes.may_edit(found, current_user):
        raise changes.NotAllowed
    draft = request.form.get("message", "") if error else found.body
    if _htmx():
        # 422: swapped in all the same (base.html's htmx config), the error by the field.
        html = render_template("rooms/_edit_form.html", room=room, m=found, draft=draft, error=error, inline=True)
        response = make_response(html, 422 if error else 200)
        response.vary.add("HX-Request")
        return response
    return _page(room, found, "edit", 400 if error else 200, draft=draft, error=error)


@bp.route(MESSAGE_URL + "/delete", methods=["GET", "POST"])
def delete_message(room_name: str, message_id: int):
    room = _room_or_404(room_name)
    if request.method == "POST":
        changes.delete_message(room, current_user, message_id)
        # htmx empties the article, as the push does (the page's style hides an empty message).
        return ("", 200) if _htmx() else _back_to(room)
    found = changes.find(room, message_id)
    if not changes.may_delete(room, found, current_user):
        raise changes.NotAllowed
    return _page(room, found, "delete")


@bp.route(MESSAGE_URL + "/reactions", methods=["GET", "POST"])
def react_to_message(room_name: str, message_id: int):
    room = _room_or_404(room_name)
    source = request.form if request.method == "POST" else request.args
    emoji = source.get("emoji")
    if (emoji is not None and emoji not in changes.PALETTE) or (request.method == "POST" and emoji is None):
        abort(400)  # only the palette's; a POST must name one
    if request.method == "POST":
        tz = reader_view()[1]
        try:
            state = changes.toggle_reaction(room, current_user, message_id, emoji)
        except RateLimited:
            abort(429)
        return _restored(state, tz) if _htmx() else _back_to(room, message_id)
    found = changes.find(room, message_id)
    if found.is_system:
        raise changes.NotAllowed
    return _page(room, found, "react", chosen=emoji, mine=_own_reactions(found))
