"""the dashboards narrowed to some contacts: senttouch.contact_id (an owner's sent touches by their
contacts, not all kept rows hash-joined with the touches), the delivery events and the queue's touches in
partial indexes, and an expression index per attribute the dashboard filters by (industry, region,
lead_source)

Revision ID: 0017_report_narrowed
Revises: 0016_evidence_touch_type
Create Date: 2026-12-02 10:00:00

senttouch keeps its rows: their contact is copied from the touches (one UPDATE).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017_report_narrowed'
down_revision = '0016_evidence_touch_type'
branch_labels = None
depends_on = None

# as outreach.models spells them (copied: a migration does not change when the models do)
DELIVERY_WHERE = ("type IN ('email.bounced', 'email.complained', 'email.delivered', 'email.unsubscribed', "
                  "'sms.delivered', 'sms.failed', 'sms.opted_out')")
QUEUE_WHERE = "status IN ('expired', 'pending_approval')"
ATTRIBUTES = ('industry', 'region', 'lead_source')  # outreach.analytics.scope.INDEXED


def _attribute(name: str, dialect: str) -> str:
    """The attribute as outreach.analytics.scope reads it (the index holds only if the text is the same)."""
    if dialect == 'postgresql':
        return f"(attributes ->> '{name}')"
    return f"CAST(json_extract(attributes, '$.{name}') AS VARCHAR)"


def upgrade() -> None:
    with op.batch_alter_table('senttouch', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_id', sa.Integer(), nullable=False, server_default=sa.text('0')))
    op.execute('UPDATE senttouch SET contact_id = (SELECT touch.contact_id FROM touch WHERE touch.id = '
               'senttouch.touch_id) WHERE EXISTS (SELECT 1 FROM touch WHERE touch.id = senttouch.touch_id)')
    with op.batch_alter_table('senttouch', schema=None) as batch_op:
        batch_op.create_index('ix_senttouch_contact_day', ['contact_id', 'day'], unique=False)
    op.create_index('ix_evidence_delivery', 'evidence', ['contact_id', 'occurred_at', 'type'], unique=False,
                    sqlite_where=sa.text(DELIVERY_WHERE), postgresql_where=sa.text(DELIVERY_WHERE))
    op.create_index('ix_touch_queue', 'touch', ['status', 'updated_at', 'contact_id', 'rule', 'step', 'reason'],
                    unique=False, sqlite_where=sa.text(QUEUE_WHERE), postgresql_where=sa.text(QUEUE_WHERE))
    dialect = op.get_bind().dialect.name
    for name in ATTRIBUTES:
        op.execute(f'CREATE INDEX ix_contact_attr_{name} ON contact ({_attribute(name, dialect)})')
    op.execute('ANALYZE contact')  # the planner's statistics of the new expressions (how many per value)


def downgrade() -> None:
    for name in ATTRIBUTES:
        op.execute(f'DROP INDEX ix_contact_attr_{name}')
    op.drop_index('ix_touch_queue', table_name='touch')
    op.drop_index('ix_evidence_delivery', table_name='evidence')
    with op.batch_alter_table('senttouch', schema=None) as batch_op:
        batch_op.drop_index('ix_senttouch_contact_day')
        batch_op.drop_column('contact_id')
