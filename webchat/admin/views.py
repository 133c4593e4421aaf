"""/admin/users/ and /invites/: for admins only; everybody else finds nothing (404)."""

from __future__ import annotations

import secrets

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import func, select

from ..auth import sessions
from ..auth.forms import username_key
from ..extensions import db
from ..live import events
from ..models import Invite, User, utcnow
from . import marks
from .forms import InviteForm

bp = Blueprint("admin", __name__)


@bp.before_request
def _admins_only():
    # The app's login wall ran first: the user is signed in (and active).
    if not current_user.is_admin:
        abort(404)


# --- accounts -------------------------------------------------------------------------


def _users_page(error: str | None = None):
    people = db.session.execute(select(User).order_by(User.username_key)).scalars().all()
    return render_template("admin/users.html", people=people, error=error), (400 if error else 200)


def _user_or_404(username: str) -> User:
    user = db.session.execute(select(User).filter_by(username_key=username_key(username))).scalar_one_or_none()
    if user is None:
        abort(404)
    return user


@bp.route("/admin/users/")
def users():
    return _users_page()


@bp.route("/admin/users/<username>/deactivate", methods=["POST"])
def deactivate(username: str):
    target = _user_or_404(username)
    if target.id == current_user.id:
        return _users_page(gettext("You cannot deactivate your own account."))
    # Lock both rows (in id order): two admins deactivating each other at once must
    # not both succeed and leave nobody in charge.
    # populate_existing: both rows are read afresh under the lock, the acting admin's
    # too (current_user is what the request began with: a Reader, not this row).
    locked = db.session.execute(
        select(User)
        .where(User.id.in_([current_user.id, target.id]))
        .order_by(User.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    me = next((u for u in locked if u.id == current_user.id), None)
    if me is None or not me.is_active or not me.is_admin:
        db.session.rollback()
        abort(404)
    if target.is_admin and target.is_active:
        admins = db.session.execute(
            select(func.count()).select_from(User).where(User.is_admin, User.deactivated_at.is_(None))
        ).scalar_one()
        if admins <= 1:
            db.session.rollback()
            return _users_page(gettext("%(name)s is the last admin and cannot be deactivated.", name=target.username))
    if target.is_active:
        target.deactivated_at = utcnow()
        # Commits both, then closes every socket of theirs on every worker and host.
        sessions.end_all(target.id, events.DEACTIVATED)
        marks.changed()
    else:
        db.session.rollback()
    flash(gettext("%(name)s is deactivated and logged out everywhere.", name=target.username), "success")
    return redirect(url_for("admin.users"), code=303)


@bp.route("/admin/users/<username>/reactivate", methods=["POST"])
def reactivate(username: str):
    target = _user_or_404(username)
    if target.deactivated_at is not None:
        target.deactivated_at = None
        db.session.commit()
        marks.changed()
    flash(gettext("%(name)s can log in again.", name=target.username), "success")
    return redirect(url_for("admin.users"), code=303)


# --- invite links ---------------------------------------------------------------------


@bp.route("/invites/", methods=["GET", "POST"])
def invites():
    form = InviteForm()
    if form.validate_on_submit():
        lifetime = form.lifetime
        invite = Invite(
            code=secrets.token_urlsafe(12),
            created_by_id=current_user.id,
            expires_at=utcnow() + lifetime if lifetime else None,
            max_uses=form.max_uses,
        )
        db.session.add(invite)
        db.session.commit()
        flash(gettext("The invite link is ready: copy it from the list."), "success")
        return redirect(url_for("admin.invites", _anchor=f"invite-{invite.id}"), code=303)
    listing = db.session.execute(select(Invite).order_by(Invite.id.desc())).scalars().all()
    return render_template("admin/invites.html", form=form, invites=listing, now=utcnow()), (
        400 if form.errors else 200
    )


@bp.route("/invites/<int:invite_id>/revoke", methods=["POST"])
def revoke_invite(invite_id: int):
    invite = db.session.get(Invite, invite_id)
    if invite is None:
        abort(404)
    if invite.revoked_at is None:
        invite.revoked_at = utcnow()
        db.session.commit()
    flash(gettext("The invite link is revoked: it creates no more accounts."), "success")
    return redirect(url_for("admin.invites"), code=303)
