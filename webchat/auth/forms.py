"""Account forms; WTForms renders the errors next to each field."""

from __future__ import annotations

import re
import unicodedata

from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, ValidationError

from ..extensions import db
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
