"""mentions

Revision ID: f2a8b6c0d9e1
Revises: e7f1a2b3c4d5
Create Date: 2026-12-02 00:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f2a8b6c0d9e1'
down_revision = 'e7f1a2b3c4d5'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('message', sa.Column('mentions', sa.Text(), nullable=True))
    op.create_table(
        'mention',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('message_id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('room_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_mention_message_id_message'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['room_id'], ['room.id'], name=op.f('fk_mention_room_id_room'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_mention_user_id_user'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mention')),
    )
    op.create_index('ix_mention_message_id', 'mention', ['message_id'])
    op.create_index('ix_mention_user_id_message_id', 'mention', ['user_id', 'message_id'])
    op.create_index('ix_mention_user_id_room_id_message_id', 'mention', ['user_id', 'room_id', 'message_id'])


def downgrade():
    op.drop_index('ix_mention_user_id_room_id_message_id', table_name='mention')
    op.drop_index('ix_mention_user_id_message_id', table_name='mention')
    op.drop_index('ix_mention_message_id', table_name='mention')
    op.drop_table('mention')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_column('mentions')
