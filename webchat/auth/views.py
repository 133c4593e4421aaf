from __future__ import annotations

from functools import cache
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, refresh
from flask_login import current_user
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import Invite, User, utcnow
from . import sessions, throttle
from .forms import LoginForm, PasswordForm, SettingsForm, SignupForm, username_key

bp = Blueprint("auth", __name__)

OPEN, INVITE, CLOSED = "open", "invite", "closed"
SIGNUP_MODES = (OPEN, INVITE, CLOSED)
CODE_MAX = 32  # the width of invite.code


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
    return user if check_password_hash(user.password_hash, password) else None


def _next_url() -> str:
    return safe_next(request.values.get("next")) or url_for("rooms.index")


def _notice(title: str, text: str, status: int):
    """A page that explains why sign-up is not possible here."""
    return render_template("auth/notice.html", title=title, text=text), status


# --- sign up --------------------------------------------------------------------------


def _signup_refused(invite: Invite | None):
    mode = current_app.config["SIGNUP"]
    if mode == CLOSED:
        return _notice(gettext("Sign-up is closed"), gettext("New accounts cannot be created here at the moment."), 403)
    if mode == INVITE and invite is None:
        return _notice(
            gettext("Sign-up is by invitation"),
            gettext("Ask someone who is already here for an invite link."),
            403,
        )
    return None


def _invite_gone(state: str):
    titles = {
        Invite.EXPIRED: gettext("This invite link has expired"),
        Invite.USED_UP: gettext("This invite link has been used up"),
        Invite.REVOKED: gettext("This invite link was revoked"),
    }
    title = titles.get(state, titles[Invite.USED_UP])  # ACTIVE: it ran out while the form was sent
    return _notice(title, gettext("Ask whoever sent it for a new one."), 410)


def _use_invite(invite_id: int) -> bool:
    """Count one use, in the sign-up's transaction, if the invite still allows one:
    two people racing for the last use cannot both have it."""
    now = utcnow()
    result = db.session.execute(
        update(Invite)
        .where(
            Invite.id == invite_id,
            Invite.revoked_at.is_(None),
            (Invite.expires_at.is_(None)) | (Invite.expires_at > now),
            (Invite.max_uses.is_(None)) | (Invite.uses < Invite.max_uses),
        )
        .values(uses=Invite.uses + 1)
    )
    return result.rowcount == 1


def _create_account(form: SignupForm, invite: Invite | None) -> User | str | None:
    """The new user; or None when the name was taken meanwhile (the form says so);
    or an invite state when the invite ran out meanwhile."""
    first = db.session.execute(select(User.id).limit(1)).first() is None
    user = User(username=form.username.data, username_key=username_key(form.username.data), is_admin=first)
    user.set_password(form.password.data)
    db.session.add(user)
    try:
        db.session.flush()
        if invite is not None and not _use_invite(invite.id):
            db.session.rollback()
            db.session.refresh(invite)
            return invite.state()
        db.session.commit()
    except IntegrityError:  # two sign-ups raced for the same name
        db.session.rollback()
        form.username.errors = [gettext("That username is taken.")]
        return None
    return user


def _signup(invite: Invite | None = None):
    if current_user.is_authenticated:
        return redirect(_next_url())
    refused = _signup_refused(invite)
    if refused:
        return refused
    if request.method == "POST" and (wait := throttle.signup_wait()):
        return throttle.too_many(wait)
    form = SignupForm()
    if form.validate_on_submit():
        created = _create_account(form, invite)
        if isinstance(created, str):
            return _invite_gone(created)
        if created is not None:
            throttle.signed_up()
            sessions.start(created)
            flash(gettext("Welcome, %(name)s!", name=created.username), "success")
            return redirect(_next_url(), code=303)
    next_url = safe_next(request.values.get("next"))
    if invite is None:
        action = url_for("auth.signup", next=next_url)
    else:
        action = url_for("auth.join", code=invite.code, next=next_url)
    status = 400 if form.errors else 200
    return render_template("auth/signup.html", form=form, next=next_url, action=action, invited=invite), status


@bp.route("/signup/", methods=["GET", "POST"])
def signup():
    return _signup()


@bp.route("/join/<code>/", methods=["GET", "POST"])
def join(code: str):
    if current_user.is_authenticated:
        return redirect(_next_url())
    invite = None
    if len(code) <= CODE_MAX:
        invite = db.session.execute(select(Invite).where(Invite.code == code)).scalar_one_or_none()
    if invite is None:
        abort(404)
    state = invite.state()
    if state != Invite.ACTIVE and current_app.config["SIGNUP"] != CLOSED:
        return _invite_gone(state)
    return _signup(invite)


# --- log in and out -------------------------------------------------------------------


@bp.route("/login/", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_next_url())
    form = LoginForm()
    error, status = None, 200
    if form.validate_on_submit():
        key = username_key(form.username.data)
        wait = throttle.login_wait(key)
        if wait:  # refused before any password is hashed
            return throttle.too_many(wait)
        user = _authenticate(form.username.data, form.password.data)
        if user is None:
            throttle.login_failed(key)
            error, status = gettext("Wrong username or password."), 400
        elif not user.is_active:
            error, status = gettext("This account has been deactivated. An admin can reactivate it."), 403
        else:
            throttle.login_succeeded(key)
            sessions.start(user)
            return redirect(_next_url(), code=303)
    if form.errors:
        status = 400
    return render_template(
        "auth/login.html", form=form, error=error, next=safe_next(request.values.get("next"))
    ), status


@bp.route("/logout/", methods=["POST"])
def logout():
    # CSRFProtect has already checked the token of this POST.
    sessions.end_current(current_user.id)
    flash(gettext("You have logged out."), "info")
    return redirect(url_for("auth.login"), code=303)


@bp.route("/settings/logout-everywhere/", methods=["POST"])
def logout_everywhere():
    sessions.end_all(current_user.id)
    sessions.forget_cookie()
    flash(gettext("You have logged out everywhere."), "info")
    return redirect(url_for("auth.login"), code=303)


# --- settings -------------------------------------------------------------------------


def _settings_page(form: SettingsForm | None = None, password_form: PasswordForm | None = None):
    form = form or SettingsForm(
        formdata=None, time_zone=current_user.time_zone or "UTC", language=current_user.language or ""
    )
    password_form = password_form or PasswordForm(formdata=None)
    status = 400 if (form.errors or password_form.errors) else 200
    return render_template("auth/settings.html", form=form, password_form=password_form), status


@bp.route("/settings/", methods=["GET", "POST"])
def settings():
    form = SettingsForm(time_zone=current_user.time_zone or "UTC", language=current_user.language or "")
    if form.validate_on_submit():
        me = sessions.account(current_user)
        me.time_zone = None if form.time_zone.data == "UTC" else form.time_zone.data
        me.language = form.language.data or None
        db.session.commit()
        current_user.time_zone, current_user.language = me.time_zone, me.language  # this answer's view
        refresh()  # say it in the language just chosen, like the pages from now on
        flash(gettext("Your settings are saved."), "success")
        return redirect(url_for("auth.settings"), code=303)
    return _settings_page(form=form)


@bp.route("/settings/password/", methods=["POST"])
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        me = sessions.account(current_user)
        key = me.username_key
        wait = throttle.login_wait(key)  # a stolen session must not become a password oracle
        if wait:
            return throttle.too_many(wait)
        if not check_password_hash(me.password_hash, form.old_password.data):
            throttle.login_failed(key)
            form.old_password.errors = [gettext("That is not your current password.")]
        else:
            me.set_password(form.new_password.data)
            sessions.end_others(me.id)  # commits the new password with it
            flash(gettext("Your password is changed, and every other session is logged out."), "success")
            return redirect(url_for("auth.settings"), code=303)
    return _settings_page(password_form=form)
