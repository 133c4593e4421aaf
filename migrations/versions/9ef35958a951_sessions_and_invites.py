"""server-side sessions and invite links

Revision ID: 9ef35958a951
Revises: c8e2f4a6b1d3
Create Date: 2026-12-02 10:00:00

Sessions that can end: a row per login, deleted on logout, "log out everywhere",
a password change (the other sessions) and deactivation. Cookies issued before
this revision name no session, so everybody logs in once more.
"""
from alembic import op
import sqlalchemy as sa


revision = '9ef35958a951'
down_revision = 'c8e2f4a6b1d3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('user_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(), nullable=False),
    sa.Column('user_agent', sa.String(length=120), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_session_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    sa.UniqueConstraint('token', name=op.f('uq_user_session_token'))
    )
    op.create_index(op.f('ix_user_session_user_id'), 'user_session', ['user_id'], unique=False)

    op.create_table('invite',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('expires_at', sa.DateTime(), nullable=True),
    sa.Column('max_uses', sa.Integer(), nullable=True),
    sa.Column('uses', sa.Integer(), server_default='0', nullable=False),
    sa.Column('revoked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_invite_created_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invite')),
    sa.UniqueConstraint('code', name=op.f('uq_invite_code'))
    )
    op.create_index(op.f('ix_invite_created_by_id'), 'invite', ['created_by_id'], unique=False)

    op.create_index(op.f('ix_user_deactivated_at'), 'user', ['deactivated_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_user_deactivated_at'), table_name='user')
    op.drop_index(op.f('ix_invite_created_by_id'), table_name='invite')
    op.drop_table('invite')
    op.drop_index(op.f('ix_user_session_user_id'), table_name='user_session')
    op.drop_table('user_session')
