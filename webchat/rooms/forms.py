from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, StringField
from wtforms.validators import InputRequired, ValidationError

from ..auth.forms import normalize
from . import service


class CreateRoomForm(FlaskForm):
    name = StringField(
        lazy_gettext("Room name"),
        filters=[normalize],
        validators=[InputRequired(lazy_gettext("Give the room a name."))],
        render_kw={"maxlength": service.ROOM_NAME_MAX, "autocomplete": "off"},
    )

    private = BooleanField(
        lazy_gettext("Private"),
        description=lazy_gettext("Only the people you add can find, read and join a private room."),
    )

    def validate_name(self, field: StringField) -> None:
        try:
            service.check_room_name(field.data)
        except service.InvalidInput as exc:
            raise ValidationError(str(exc)) from None


class MemberForm(FlaskForm):
    username = StringField(
        lazy_gettext("Add someone by username"),
        filters=[normalize],
        validators=[InputRequired(lazy_gettext("Enter a username."))],
        render_kw={"autocomplete": "off", "maxlength": 32},
    )


class RenameForm(FlaskForm):
    name = StringField(
        lazy_gettext("New name"),
        filters=[normalize],
        validators=[InputRequired(lazy_gettext("Give the room a name."))],
        render_kw={"maxlength": service.ROOM_NAME_MAX, "autocomplete": "off"},
    )
