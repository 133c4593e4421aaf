"""merge: accounts (sessions, invites) and messages that change

Revision ID: e7f1a2b3c4d5
Revises: 9ef35958a951, d4a9c3e7f215
Create Date: 2026-12-02 00:45:00

"""

revision = 'e7f1a2b3c4d5'
down_revision = ('9ef35958a951', 'd4a9c3e7f215')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
