"""Managing a room without JavaScript: its members page, inviting, leaving, removing,
renaming and deleting (POST forms with CSRF); a direct conversation with someone."""

from __future__ import annotations

from flask import abort, redirect, render_template, url_for
from flask_login import current_user

from . import membership, service
from .forms import MemberForm, RenameForm
from .service import InvalidInput
from .views import bp


def _room_or_404(room_name: str):
    """The room, for its members only: anyone else is told it does not exist."""
    room, mine = service.room_for(room_name, current_user.id)
    if room is None or mine is None:
        abort(404)
    return room


def _manageable(room_name: str):
    room = _room_or_404(room_name)
    if not membership.can_manage(room, current_user):
        abort(403)
    return room


def _members_page(room, member_form=None, rename_form=None, status=200):
    return render_template(
        "rooms/members.html",
        room=room,
        title=room.title_for(current_user.username),
        members=membership.members(room),
        can_manage=membership.can_manage(room, current_user),
        member_form=member_form or MemberForm(formdata=None),
        rename_form=rename_form or RenameForm(formdata=None, name=room.name),
    ), status


@bp.route("/room/<room_name>/members", methods=["GET", "POST"])
def members(room_name: str):
    room = _room_or_404(room_name)
    form = MemberForm()
    if form.validate_on_submit():
        try:
            membership.add_member(room, current_user, form.username.data)
        except InvalidInput as exc:
            form.username.errors = [str(exc)]
        else:
            return redirect(url_for("rooms.members", room_name=room.name), code=303)
    if form.errors:
        return _members_page(room, member_form=form, status=400)
    return _members_page(room)


@bp.route("/room/<room_name>/leave", methods=["POST"])
def leave(room_name: str):
    room = _room_or_404(room_name)
    if room.is_direct:
        abort(404)
    membership.leave(room, current_user)
    return redirect(url_for("rooms.index"), code=303)


@bp.route("/room/<room_name>/members/<username>/remove", methods=["POST"])
def remove_member(room_name: str, username: str):
    room = _manageable(room_name)
    try:
        membership.remove_member(room, current_user, username)
    except InvalidInput:
        abort(404)
    return redirect(url_for("rooms.members", room_name=room.name), code=303)


@bp.route("/room/<room_name>/rename", methods=["POST"])
def rename(room_name: str):
    room = _manageable(room_name)
    form = RenameForm()
    if form.validate_on_submit():
        try:
            membership.rename(room, current_user, form.name.data)
        except InvalidInput as exc:
            form.name.errors = [str(exc)]
        else:
            return redirect(url_for("rooms.room", room_name=room.name), code=303)
    return _members_page(room, rename_form=form, status=400)


@bp.route("/room/<room_name>/delete", methods=["POST"])
def delete(room_name: str):
    room = _manageable(room_name)
    membership.delete_room(room)
    return redirect(url_for("rooms.index"), code=303)


@bp.route("/dm/<username>/")
def direct(username: str):
    other = membership.find_user(username)
    if other is None or not other.is_active:
        abort(404)
    room = membership.direct_room(current_user, other)
    return redirect(url_for("rooms.room", room_name=room.name))
