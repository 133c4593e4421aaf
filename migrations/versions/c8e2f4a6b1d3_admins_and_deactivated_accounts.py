"""admins and deactivated accounts

Revision ID: c8e2f4a6b1d3
Revises: b5d1e7f3a2c9
Create Date: 2026-12-01 23:58:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c8e2f4a6b1d3'
down_revision = 'b5d1e7f3a2c9'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('is_admin', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('deactivated_at', sa.DateTime(), nullable=True))
    # The first account of a database is its admin; existing databases keep that promise.
    op.execute('UPDATE "user" SET is_admin = true WHERE id = (SELECT min(id) FROM "user")')


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('deactivated_at')
        batch_op.drop_column('is_admin')
