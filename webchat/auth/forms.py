"""Account forms; WTForms renders the errors next to each field."""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from functools import lru_cache

from flask_babel import gettext, lazy_gettext
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


def new_password_field(label) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            InputRequired(lazy_gettext("Choose a password.")),
            Length(min=8, max=128, message=lazy_gettext("Use %(min)d to %(max)d characters.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


def confirm_field(other: str) -> PasswordField:
    return PasswordField(
        lazy_gettext("Confirm password"),
        validators=[
            InputRequired(lazy_gettext("Type the password again.")),
            EqualTo(other, lazy_gettext("The passwords do not match.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class SignupForm(FlaskForm):
    username = StringField(
        lazy_gettext("Username"),
        filters=[normalize],
        validators=[InputRequired(lazy_gettext("Choose a username."))],
        render_kw={"autocomplete": "username", "maxlength": 32},
    )
    password = new_password_field(lazy_gettext("Password"))
    confirm = confirm_field("password")

    def validate_username(self, field: StringField) -> None:
        if not USERNAME_RE.fullmatch(field.data):
            raise ValidationError(gettext("Use 3 to 32 letters, digits, '_', '.' or '-'."))
        key = username_key(field.data)
        if len(key) > USERNAME_MAX:  # the casefolded key must fit its column too: 'ß' folds to 'ss'
            raise ValidationError(gettext("That username is too long once letter case is ignored; use a shorter one."))
        if db.session.query(User.id).filter_by(username_key=key).first():
            raise ValidationError(gettext("That username is taken."))


class LoginForm(FlaskForm):
    username = StringField(
        lazy_gettext("Username"),
        filters=[normalize],
        validators=[InputRequired(lazy_gettext("Enter your username."))],
        render_kw={"autocomplete": "username"},
    )
    password = PasswordField(
        lazy_gettext("Password"),
        validators=[InputRequired(lazy_gettext("Enter your password."))],
        render_kw={"autocomplete": "current-password"},
    )


@lru_cache(maxsize=1)
def zone_choices() -> list[tuple[str, str]]:
    zones = sorted(z for z in zoneinfo.available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/")))
    return [("UTC", "UTC")] + [(z, z.replace("_", " ")) for z in zones]


class SettingsForm(FlaskForm):
    language = SelectField(
        lazy_gettext("Language"),
        description=lazy_gettext("Without a choice, pages follow your browser's language."),
        invalid_choice_message=lazy_gettext("Pick a language from the list."),
    )
    time_zone = SelectField(
        lazy_gettext("Time zone"),
        description=lazy_gettext("Times are shown in this zone, on every page and as messages arrive."),
        invalid_choice_message=lazy_gettext("Pick a time zone from the list."),
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_zone.choices = zone_choices()
        self.language.choices = [("", gettext("Same as the browser"))] + list(LANGUAGES.items())


class PasswordForm(FlaskForm):
    """A password change: the current password proves it is the owner at the keyboard."""

    old_password = PasswordField(
        lazy_gettext("Current password"),
        validators=[InputRequired(lazy_gettext("Enter your current password."))],
        render_kw={"autocomplete": "current-password"},
    )
    new_password = new_password_field(lazy_gettext("New password"))
    confirm_password = confirm_field("new_password")
