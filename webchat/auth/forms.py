"""Account forms; WTForms renders the errors next to each field."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from functools import lru_cache

from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, ValidationError

from ..extensions import db
from ..i18n import LANGUAGES
from ..models import User

USERNAME_RE = re.compile(r"[\w.-]{3,32}")
USERNAME_MAX = 32  # also the width of user.username_key


def normalize(text: str | None) -> str:
    return unicodedata.normalize("NFC", (text or "").strip())


def username_key(username: str) -> str:
    return normalize(username).casefold()


class SignupForm(FlaskForm):
    username = StringField(
        "Username",
        filters=[normalize],
        validators=[InputRequired("Choose a username.")],
        render_kw={"autocomplete": "username", "maxlength": 32},
    )
    password = PasswordField(
        "Password",
        validators=[
            InputRequired("Choose a password."),
            Length(min=8, max=128, message="Use 8 to 128 characters."),
        ],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Confirm password",
        validators=[InputRequired("Type the password again."), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )

    def validate_username(self, field: StringField) -> None:
        if not USERNAME_RE.fullmatch(field.data):
            raise ValidationError("Use 3 to 32 letters, digits, '_', '.' or '-'.")
        key = username_key(field.data)
        if len(key) > USERNAME_MAX:  # the casefolded key must fit its column too: 'ß' folds to 'ss'
            raise ValidationError("That username is too long once letter case is ignored; use a shorter one.")
        if db.session.query(User.id).filter_by(username_key=key).first():
            raise ValidationError("That username is taken.")


class LoginForm(FlaskForm):
    username = StringField(
        "Username",
        filters=[normalize],
        validators=[InputRequired("Enter your username.")],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        "Password",
        validators=[InputRequired("Enter your password.")],
        render_kw={"autocomplete": "current-password"},
    )


@lru_cache(maxsize=1)
def zone_choices() -> list[tuple[str, str]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return [("UTC", "UTC")] + [(z, z.replace("_", " ")) for z in zones]


class SettingsForm(FlaskForm):
    language = SelectField(
        "Language",
        description="Without a choice, pages follow your browser's language.",
        invalid_choice_message="Pick a language from the list.",
    )
    time_zone = SelectField(
        "Time zone",
        description="Times in room history are shown in this zone.",
        invalid_choice_message="Pick a time zone from the list.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = zone_choices()
        self.language.choices = [("", "Same as the browser")] + list(LANGUAGES.items())
