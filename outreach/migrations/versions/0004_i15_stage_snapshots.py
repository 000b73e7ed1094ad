"""daily stage snapshots for the dashboards' history

Revision ID: 0003_i15
Revises: 0003_i16
Create Date: 2026-12-02 02:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003_i15'
down_revision = '0003_i16'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('snapshotday',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reconstructed', sa.Boolean(), nullable=False),
    sa.Column('taken_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day')
    )
    op.create_table('stagesnapshot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('owner', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'owner', 'stage', name='uq_stagesnapshot_day_owner_stage')
    )
    with op.batch_alter_table('stagesnapshot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stagesnapshot_day'), ['day'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('stagesnapshot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_stagesnapshot_day'))
    op.drop_table('stagesnapshot')
    op.drop_table('snapshotday')
