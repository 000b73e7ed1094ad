"""population counts in shards: senders in several processes no longer queue on one row per count

Revision ID: 0012_prior
Revises: 0009_i16
Create Date: 2026-12-02 06:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_prior'
down_revision = '0009_i16'
branch_labels = None
depends_on = None

# the unique constraint 0001 created without a name, as each dialect names or reflects it
NAMING = {"uq": "%(table_name)s_%(column_0_N_name)s_key"}
OLD, NEW = "channelprior_scope_value_interaction_channel_key", "channelprior_scope_value_interaction_channel_shard_key"


def upgrade() -> None:
    with op.batch_alter_table('channelprior', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(OLD, type_='unique')
        batch_op.add_column(sa.Column('shard', sa.Integer(), nullable=False, server_default='0'))
        batch_op.create_unique_constraint(NEW, ['scope', 'value', 'interaction', 'channel', 'shard'])
    with op.batch_alter_table('channelprior') as batch_op:
        batch_op.alter_column('shard', server_default=None)


def downgrade() -> None:
    op.execute("DELETE FROM channelprior WHERE shard <> 0")  # a downgrade keeps shard 0's counts only
    with op.batch_alter_table('channelprior', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(NEW, type_='unique')
        batch_op.drop_column('shard')
        batch_op.create_unique_constraint(OLD, ['scope', 'value', 'interaction', 'channel'])
