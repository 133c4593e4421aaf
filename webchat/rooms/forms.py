from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import InputRequired, ValidationError

from ..auth.forms import normalize
from . import service


class CreateRoomForm(FlaskForm):
    name = StringField(
        "Room name",
        filters=[normalize],
        validators=[InputRequired("Give the room a name.")],
        render_kw={"maxlength": service.ROOM_NAME_MAX, "autocomplete": "off"},
    )

    def validate_name(self, field: StringField) -> None:
        # The casefolded key must fit its column (room.name_key): 'ß' folds to 'ss'.
        if field.data and len(field.data) <= service.ROOM_NAME_MAX < len(service.room_key(field.data)):
            raise ValidationError("That name is too long once letter case is ignored; use a shorter one.")
        try:
            service.check_room_name(field.data)
        except service.InvalidInput as exc:
            raise ValidationError(str(exc)) from None
