"""Who is in a room: inviting, leaving, removing; renaming and deleting; direct messages.

Each change is committed with its system message (what happened, by whom, rendered
in each reader's language), then told to open sockets: a removed member's sockets in
that room close at once on every worker and host (webchat/live/access.py).
"""

from __future__ import annotations

from flask_babel import gettext
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..auth.forms import username_key
from ..extensions import db
from ..live import access, events
from ..models import Membership, Message, Room, User
from . import service
from .service import InvalidInput


def can_manage(room: Room, user: User) -> bool:
    """The owner and admins remove members, rename and delete a room (not a conversation)."""
    return not room.is_direct and (room.owner_id == user.id or user.is_admin)


def members(room: Room) -> list[User]:
    query = select(User).join(Membership, Membership.user_id == User.id).where(Membership.room_id == room.id)
    return sorted(db.session.execute(query).scalars(), key=lambda u: u.username.casefold())


def find_user(username: str) -> User | None:
    return db.session.execute(select(User).filter_by(username_key=username_key(username))).scalar_one_or_none()


def add_member(room: Room, actor: User, username: str) -> User:
    """A member brings someone in (into a private room, the only way in)."""
    if room.is_direct:
        raise InvalidInput(gettext("A direct conversation stays between two people."), "username")
    user = find_user(username or "")
    if user is None or not user.is_active:
        raise InvalidInput(gettext("There is no account with that username."), "username")
    if service.is_member(room.id, user.id):
        raise InvalidInput(gettext("%(name)s is in this room already.", name=user.username), "username")
    db.session.add(Membership(user_id=user.id, room_id=room.id))
    try:
        db.session.flush()
    except IntegrityError:  # added by someone else meanwhile
        db.session.rollback()
        raise InvalidInput(gettext("%(name)s is in this room already.", name=user.username), "username") from None
    service.store_system(room, actor, Message.ADDED, user.username)
    return user


def leave(room: Room, user: User) -> None:
    _drop(room, user)
    service.store_system(room, user, Message.LEFT)
    access.revoke_member(room.id, user.id, events.LEFT)


def remove_member(room: Room, actor: User, username: str) -> None:
    user = find_user(username)
    if user is None or not service.is_member(room.id, user.id):
        raise InvalidInput(gettext("%(name)s is not in this room.", name=username), "username")
    if user.id == room.owner_id:
        raise InvalidInput(gettext("The owner cannot be removed."), "username")
    _drop(room, user)
    service.store_system(room, actor, Message.REMOVED, user.username)
    access.revoke_member(room.id, user.id)


def _drop(room: Room, user: User) -> None:
    db.session.execute(delete(Membership).where(Membership.room_id == room.id, Membership.user_id == user.id))


def rename(room: Room, actor: User, name: str) -> None:
    if service.room_key(name) != room.name_key:  # a change of letter case only is fine
        service.check_room_name(name)
    room.name, room.name_key = name, service.room_key(name)
    try:
        db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise InvalidInput(gettext("A room with that name exists already."), "name") from None
    service.store_system(room, actor, Message.RENAMED, name)


def delete_room(room: Room) -> None:
    room_id = room.id
    db.session.delete(room)  # its messages and memberships go with it (ON DELETE CASCADE)
    db.session.commit()
    access.close_room(room_id)


def direct_room(me: User, other: User) -> Room:
    """The one conversation of two people, created on first use, the same from either side."""
    first, second = sorted((me, other), key=lambda u: u.id)
    name = f"@{first.username}+{second.username}"
    key = service.room_key(name)  # usernames are unique ignoring case, and never change
    room = db.session.execute(select(Room).filter_by(name_key=key)).scalar_one_or_none()
    if room is not None:
        return room
    room = Room(name=name, name_key=key, owner_id=first.id, private=True, kind=Room.DIRECT)
    db.session.add(room)
    try:
        db.session.flush()
    except IntegrityError:  # the other person opened it at the same moment
        db.session.rollback()
        return db.session.execute(select(Room).filter_by(name_key=key)).scalar_one()
    db.session.add_all([Membership(user_id=uid, room_id=room.id) for uid in {first.id, second.id}])
    db.session.commit()
    return room
