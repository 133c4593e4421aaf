"""``flask admin grant <username>`` and ``flask admin revoke <username>``.

For the operator at the server's shell (messages in English, like the logs): make
someone an admin, or stop them being one. The last active admin stays one.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import func, select

from ..auth.forms import username_key
from ..extensions import db
from ..models import User

admin = AppGroup("admin", help="Manage who is an admin.")


def _user(username: str) -> User:
    user = db.session.execute(select(User).filter_by(username_key=username_key(username))).scalar_one_or_none()
    if user is None:
        raise click.ClickException(f"No account is called {username!r}.")
    return user


@admin.command("grant")
@click.argument("username")
def grant(username: str) -> None:
    """Make USERNAME an admin."""
    user = _user(username)
    if user.is_admin:
        click.echo(f"{user.username} is an admin already.")
        return
    user.is_admin = True
    db.session.commit()
    note = " (the account is deactivated: reactivate it on /admin/users/)" if not user.is_active else ""
    click.echo(f"{user.username} is now an admin{note}.")


@admin.command("revoke")
@click.argument("username")
def revoke(username: str) -> None:
    """Stop USERNAME being an admin (not the last active one)."""
    user = _user(username)
    if not user.is_admin:
        click.echo(f"{user.username} is not an admin.")
        return
    others = db.session.execute(
        select(func.count()).select_from(User).where(User.is_admin, User.deactivated_at.is_(None), User.id != user.id)
    ).scalar_one()
    if user.is_active and others == 0:
        raise click.ClickException(f"{user.username} is the last admin; grant another account first.")
    user.is_admin = False
    db.session.commit()
    click.echo(f"{user.username} is no longer an admin.")
