"""meeting attendees (everybody an invite names besides its contact) and owner changes (rule, claim, hand-over)

Revision ID: 0009_i17
Revises: 0003_i14
Create Date: 2026-12-02 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0009_i17'
down_revision = '0003_i14'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting_attendees', sa.JSON(), nullable=True))
    op.create_table('ownerchange',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('from_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('to_owner', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('how', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contact.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('ownerchange', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ownerchange_contact_id'), ['contact_id'], unique=False)


def downgrade() -> None:
    op.drop_table('ownerchange')
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.drop_column('meeting_attendees')
