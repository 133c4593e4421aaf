"""reader language; system messages store their event, not an English sentence

Revision ID: 7c1e2a9b4d10
Revises: 35d80c030438
Create Date: 2026-12-01 23:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '7c1e2a9b4d10'
down_revision = '35d80c030438'
branch_labels = None
depends_on = None

# The sentences the app stored before, and the event each one meant.
SENTENCES = {"created": " created the room", "joined": " joined the room"}


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('event', sa.String(length=16), nullable=True))
    message = sa.table('message', sa.column('kind', sa.String), sa.column('body', sa.Text), sa.column('event', sa.String))
    for event, ending in SENTENCES.items():
        op.execute(
            message.update()
            .where(message.c.kind == 'system', message.c.event.is_(None), message.c.body.like('%' + ending))
            .values(event=event, body='')
        )


def downgrade():
    message = sa.table('message', sa.column('kind', sa.String), sa.column('body', sa.Text), sa.column('event', sa.String),
                       sa.column('author_id', sa.Integer))
    user = sa.table('user', sa.column('id', sa.Integer), sa.column('username', sa.String))
    for event, ending in SENTENCES.items():
        name = sa.select(user.c.username).where(user.c.id == message.c.author_id).scalar_subquery()
        op.execute(message.update().where(message.c.event == event).values(body=name + ending))
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('event')
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('language')
