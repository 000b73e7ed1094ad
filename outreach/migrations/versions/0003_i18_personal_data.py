"""personal data: the do-not-contact list of forgotten addresses (keyed hashes), the erasure audit

Revision ID: 0003_i18
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003_i18'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('donotcontact',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('digest')
    )
    op.create_table('erasurerequest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('erasurerequest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasurerequest_contact_id'), ['contact_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('erasurerequest', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasurerequest_contact_id'))
    op.drop_table('erasurerequest')
    op.drop_table('donotcontact')
