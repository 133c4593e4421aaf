from __future__ import annotations

from functools import cache
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext, refresh
from flask_login import current_user, login_user, logout_user
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import User
from .forms import LoginForm, SettingsForm, SignupForm, username_key

bp = Blueprint("auth", __name__)


def safe_next(target: str | None) -> str | None:
    """Only a path on this site: no scheme, no host, no protocol-relative '//'."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


@cache
def _dummy_hash() -> str:
    return generate_password_hash("not anybody's password")


def _authenticate(username: str, password: str) -> User | None:
    """The user, if the password is theirs. An unknown name costs one hash check too,
    so the answer's timing does not tell which names exist."""
    user = db.session.query(User).filter_by(username_key=username_key(username)).first()
    if user is None:
        check_password_hash(_dummy_hash(), password)
        return None
    return user if user.check_password(password) else None


def _next_url() -> str:
    return safe_next(request.values.get("next")) or url_for("rooms.index")


@bp.route("/signup/", methods=["GET", "POST"])
def signup():
    if current_user.is_authenticated:
        return redirect(_next_url())
    form = SignupForm()
    if form.validate_on_submit():
        user = User(username=form.username.data, username_key=username_key(form.username.data))
        user.set_password(form.password.data)
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:  # two sign-ups raced for the same name
            db.session.rollback()
            form.username.errors = [gettext("That username is taken.")]
        else:
            login_user(user)
            flash(gettext("Welcome, %(name)s!", name=user.username), "success")
            return redirect(_next_url(), code=303)
    status = 400 if form.errors else 200
    return render_template("auth/signup.html", form=form, next=safe_next(request.values.get("next"))), status


@bp.route("/login/", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_next_url())
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = _authenticate(form.username.data, form.password.data)
        if user is not None:
            login_user(user)
            return redirect(_next_url(), code=303)
        error = gettext("Wrong username or password.")
    status = 400 if (form.errors or error) else 200
    return render_template(
        "auth/login.html", form=form, error=error, next=safe_next(request.values.get("next"))
    ), status


@bp.route("/logout/", methods=["POST"])
def logout():
    # CSRFProtect has already checked the token of this POST.
    logout_user()
    flash(gettext("You have logged out."), "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/settings/", methods=["GET", "POST"])
def settings():
    form = SettingsForm(time_zone=current_user.time_zone or "UTC", language=current_user.language or "")
    if form.validate_on_submit():
        current_user.time_zone = None if form.time_zone.data == "UTC" else form.time_zone.data
        current_user.language = form.language.data or None
        db.session.commit()
        refresh()  # say it in the language just chosen, like the pages from now on
        flash(gettext("Your settings are saved."), "success")
        return redirect(url_for("auth.settings"), code=303)
    return render_template("auth/settings.html", form=form), (400 if form.errors else 200)
