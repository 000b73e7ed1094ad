"""evidence by (touch, type): channel learning's first answer per touch reads a touch's answers, not its
whole history (a batch of webhook events took twice the CPU at a million evidence rows)

Revision ID: 0016_evidence_touch_type
Revises: 0012_i15
Create Date: 2026-12-02 07:10:00
"""

from __future__ import annotations

from alembic import op

revision = '0016_evidence_touch_type'
down_revision = '0012_i15'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_touch_type', ['touch_id', 'type'], unique=False)
        batch_op.drop_index('ix_evidence_touch_id')  # the new index's first column serves its lookups


def downgrade() -> None:
    with op.batch_alter_table('evidence', schema=None) as batch_op:
        batch_op.create_index('ix_evidence_touch_id', ['touch_id'], unique=False)
        batch_op.drop_index('ix_evidence_touch_type')
