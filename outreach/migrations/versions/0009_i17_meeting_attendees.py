"""meeting attendees: everybody a meeting invite names besides its contact

Revision ID: 0009_i17
Revises: 0003_i14
Create Date: 2026-12-02 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009_i17'
down_revision = '0003_i14'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting_attendees', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.drop_column('meeting_attendees')
