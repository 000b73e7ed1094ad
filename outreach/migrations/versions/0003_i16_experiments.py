"""experiments: the variant on each touch, and stopped experiments

Revision ID: 0003_i16
Revises: 0002
Create Date: 2026-12-02 02:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003_i16'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('experimentstop',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('allocation', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('variants', sa.JSON(), nullable=False),
    sa.Column('within_seconds', sa.Integer(), nullable=False),
    sa.Column('min_sample', sa.Integer(), nullable=False),
    sa.Column('promoted', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('stopped_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('stopped_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('experiment_id', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column('variant', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.create_index('ix_touch_experiment_variant', ['experiment_id', 'variant'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.drop_index('ix_touch_experiment_variant')
        batch_op.drop_column('variant')
        batch_op.drop_column('experiment_id')
    op.drop_table('experimentstop')
