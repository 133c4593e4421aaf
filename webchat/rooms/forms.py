from __future__ import annotations

from flask_babel import lazy_gettext
from flask_wtf import FlaskForm
from wtforms import StringField
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

    def validate_name(self, field: StringField) -> None:
        try:
            service.check_room_name(field.data)
        except service.InvalidInput as exc:
            raise ValidationError(str(exc)) from None
