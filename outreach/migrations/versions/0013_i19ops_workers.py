"""worker heartbeats: each dispatching process's row, so the live ones settle a dead one's touches;
failed sign-ins in the database, so every web host counts the same ones

Revision ID: 0012_i19ops
Revises: 0012_prior
Create Date: 2026-12-02 05:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0012_i19ops'
down_revision = '0012_prior'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('worker',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('host', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('beat_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('signinfailure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('address', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_signinfailure_email_at', 'signinfailure', ['email', 'at'], unique=False)
    op.create_index('ix_signinfailure_address_at', 'signinfailure', ['address', 'at'], unique=False)
    op.create_index('ix_signinfailure_at', 'signinfailure', ['at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_signinfailure_at', table_name='signinfailure')
    op.drop_index('ix_signinfailure_address_at', table_name='signinfailure')
    op.drop_index('ix_signinfailure_email_at', table_name='signinfailure')
    op.drop_table('signinfailure')
    op.drop_table('worker')
