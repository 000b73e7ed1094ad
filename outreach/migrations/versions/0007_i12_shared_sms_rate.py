"""shared SMS token bucket per sending number; unattributed events looked up by provider message id

Revision ID: 0003_i12
Revises: 0003_i18
Create Date: 2026-12-02 02:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0003_i12'
down_revision = '0003_i18'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sendrate',
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('next_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('sender')
    )
    with op.batch_alter_table('unattributedevent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unattributedevent_provider_message_id'), ['provider_message_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('unattributedevent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unattributedevent_provider_message_id'))
    op.drop_table('sendrate')
