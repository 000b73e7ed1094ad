"""experiment.concluded: what has been told about each experiment

Revision ID: 0009_i16
Revises: 0009_i15
Create Date: 2026-12-02 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0009_i16'
down_revision = '0009_i15'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('experimentnews',
    sa.Column('experiment_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('news', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('experiment_id', 'news')
    )


def downgrade() -> None:
    op.drop_table('experimentnews')
