"""The invite form: how long a link lasts and how many accounts it may make."""

from __future__ import annotations

from datetime import timedelta

from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.validators import ValidationError

from ..auth.forms import normalize

MAX_USES = 1000
EXPIRIES = {
    "never": None,
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
}


class InviteForm(FlaskForm):
    expires = SelectField(
        lazy_gettext("Expires"),
        default="7d",
        invalid_choice_message=lazy_gettext("Pick an expiry from the list."),
    )
    uses = StringField(
        lazy_gettext("Number of uses"),
        filters=[normalize],
        description=lazy_gettext("How many accounts the link may create. Leave it empty for no limit."),
        render_kw={"inputmode": "numeric", "maxlength": 4},
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.expires.choices = [
            ("never", gettext("Never")),
            ("1h", gettext("In an hour")),
            ("1d", gettext("In a day")),
            ("7d", gettext("In a week")),
            ("30d", gettext("In 30 days")),
        ]

    def validate_uses(self, field: StringField) -> None:
        if not field.data:
            return
        if not (field.data.isascii() and field.data.isdigit()) or not 1 <= int(field.data) <= MAX_USES:
            raise ValidationError(gettext("Enter a whole number from 1 to %(max)d.", max=MAX_USES))

    @property
    def max_uses(self) -> int | None:
        return int(self.uses.data) if self.uses.data else None

    @property
    def lifetime(self) -> timedelta | None:
        return EXPIRIES[self.expires.data]
