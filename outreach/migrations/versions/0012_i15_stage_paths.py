"""kept stage paths and their counts for the dashboards (stagepath, stageflow, stagestay, pathstate)

Revision ID: 0012_i15
Revises: 0009_i16
Create Date: 2026-12-02 06:00:00

The tables start empty: the first report or snapshot run fills them from the stage changes
(outreach.analytics.paths.refresh), so an existing database is backfilled by its next run.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0012_i15'
down_revision = '0009_i16'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('stagepath',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('prev', sa.Integer(), nullable=True),
    sa.Column('t', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('t_next', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('stagepath', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_stagepath_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index('ix_stagepath_t', ['t'], unique=False)
        batch_op.create_index('ix_stagepath_t_next', ['t_next'], unique=False)
    op.create_table('stageflow',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day_in', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('prev', sa.Integer(), nullable=False),
    sa.Column('day_out', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('same', sa.Boolean(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day_in', 'idx', 'prev', 'day_out', 'same', name='uq_stageflow_key')
    )
    op.create_table('stagestay',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day_out', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('idx', sa.Integer(), nullable=False),
    sa.Column('hours', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day_out', 'idx', 'hours', name='uq_stagestay_key')
    )
    op.create_table('pathstate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('stages', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('change_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )


def downgrade() -> None:
    op.drop_table('pathstate')
    op.drop_table('stagestay')
    op.drop_table('stageflow')
    with op.batch_alter_table('stagepath', schema=None) as batch_op:
        batch_op.drop_index('ix_stagepath_t_next')
        batch_op.drop_index('ix_stagepath_t')
        batch_op.drop_index(batch_op.f('ix_stagepath_contact_id'))
    op.drop_table('stagepath')
