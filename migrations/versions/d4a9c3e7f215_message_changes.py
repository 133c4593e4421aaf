"""message changes: edits, deletions, replies, reactions, and the room's change sequence

Revision ID: d4a9c3e7f215
Revises: c8e2f4a6b1d3
Create Date: 2026-12-02 00:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd4a9c3e7f215'
down_revision = 'c8e2f4a6b1d3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('reaction',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('emoji', sa.String(length=16), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_reaction_message_id_message'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_reaction_user_id_user'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_reaction')),
        sa.UniqueConstraint('message_id', 'user_id', 'emoji', name='uq_reaction_message_user_emoji'),
    )
    with op.batch_alter_table('reaction', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reaction_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_to_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('edited_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('deleted_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('changed_seq', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('reactions', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_message_reply_to_id'), ['reply_to_id'], unique=False)
        batch_op.create_index('ix_message_room_id_changed_seq', ['room_id', 'changed_seq'], unique=False)

    with op.batch_alter_table('room', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_seq', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('room', schema=None) as batch_op:
        batch_op.drop_column('change_seq')

    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index('ix_message_room_id_changed_seq')
        batch_op.drop_index(batch_op.f('ix_message_reply_to_id'))
        batch_op.drop_column('reactions')
        batch_op.drop_column('changed_seq')
        batch_op.drop_column('deleted_at')
        batch_op.drop_column('edited_at')
        batch_op.drop_column('reply_to_id')

    with op.batch_alter_table('reaction', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reaction_user_id'))

    op.drop_table('reaction')
