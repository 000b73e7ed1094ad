"""the rep's day: reply states for the inbox, paused automation, replies by type and time, booked meetings

Revision ID: 0003_i14
Revises: 0003_i12
Create Date: 2026-12-02 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003_i14'
down_revision = '0003_i12'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replystate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('touch_id', sa.Integer(), nullable=True),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['evidence_id'], ['evidence.id'], ),
    sa.ForeignKeyConstraint(['touch_id'], ['touch.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('evidence_id')
    )
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.add_column(sa.Column('paused_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('paused_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_type_at', ['type', 'occurred_at'], unique=False)
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('digest_on', sa.Date(), nullable=True))
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('meeting_start', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('meeting_end', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('meeting_sequence', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_index('ix_touch_meeting_start', ['meeting_start'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('digest_on')
    with op.batch_alter_table('touch', schema=None) as batch_op:
        batch_op.drop_index('ix_touch_meeting_start')
        batch_op.drop_column('meeting_sequence')
        batch_op.drop_column('meeting_end')
        batch_op.drop_column('meeting_start')
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.drop_index('ix_evidence_type_at')
    with op.batch_alter_table('contact', schema=None) as batch_op:
        batch_op.drop_column('paused_reason')
        batch_op.drop_column('paused_until')
    op.drop_table('replystate')
