"""private rooms and direct messages

Revision ID: b5d1e7f3a2c9
Revises: 7c1e2a9b4d10
Create Date: 2026-12-01 23:45:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b5d1e7f3a2c9'
down_revision = '7c1e2a9b4d10'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('room', schema=None) as batch_op:
        batch_op.add_column(sa.Column('private', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('kind', sa.String(length=10), server_default='room', nullable=False))
        # A direct conversation is named "@<one>+<other>": two 32-character usernames.
        batch_op.alter_column('name', type_=sa.String(length=80), existing_type=sa.String(length=50))
        batch_op.alter_column('name_key', type_=sa.String(length=80), existing_type=sa.String(length=50))


def downgrade():
    with op.batch_alter_table('room', schema=None) as batch_op:
        batch_op.alter_column('name_key', type_=sa.String(length=50), existing_type=sa.String(length=80))
        batch_op.alter_column('name', type_=sa.String(length=50), existing_type=sa.String(length=80))
        batch_op.drop_column('kind')
        batch_op.drop_column('private')
