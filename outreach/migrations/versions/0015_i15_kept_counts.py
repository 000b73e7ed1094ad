"""kept stage paths and sent touches with their daily counts for the dashboards (stagepath, stageflow,
stagestay, pathstate; touchmark and its triggers, senttouch, sentday, eventday)

Revision ID: 0012_i15
Revises: 0012_i19latency
Create Date: 2026-12-02 06:00:00

The tables start empty: the first report or snapshot run fills them from the stage changes
(outreach.analytics.paths.refresh), so an existing database is backfilled by its next run.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0012_i15'
down_revision = '0012_i19latency'
branch_labels = None
depends_on = None

WATCHED = 'status, sent_at, contact_id, rule, step, interaction, channel'  # what SentTouch reads of a touch


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
    sa.Column('evidence_id', sa.Integer(), nullable=False),
    sa.Column('mark_id', sa.Integer(), nullable=False),
    sa.Column('refreshed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('touchmark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('touch_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('senttouch',
    sa.Column('touch_id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('interaction', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('responded', sa.Boolean(), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('advance_h', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('touch_id')
    )
    op.create_table('sentday',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('interaction', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('responded', sa.Boolean(), nullable=False),
    sa.Column('opted_out', sa.Boolean(), nullable=False),
    sa.Column('advance_h', sa.Integer(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'rule', 'step', 'interaction', 'channel', 'responded', 'opted_out', 'advance_h',
                        name='uq_sentday_key')
    )
    op.create_table('eventday',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('day', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('type', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('n', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('day', 'type', name='uq_eventday_day_type')
    )
    # a touch sent, unsent, or changed while sent is marked for outreach.analytics.sends, whatever wrote it
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("CREATE FUNCTION touch_mark() RETURNS trigger AS $$ BEGIN "
                   "INSERT INTO touchmark (touch_id) VALUES (NEW.id); RETURN NULL; END $$ LANGUAGE plpgsql")
        op.execute("CREATE TRIGGER touch_sent_insert AFTER INSERT ON touch FOR EACH ROW "
                   f"WHEN (NEW.status = 'sent') EXECUTE FUNCTION touch_mark()")
        op.execute(f"CREATE TRIGGER touch_sent_update AFTER UPDATE OF {WATCHED} ON touch FOR EACH ROW "
                   "WHEN (NEW.status = 'sent' OR OLD.status = 'sent') EXECUTE FUNCTION touch_mark()")
    else:
        op.execute("CREATE TRIGGER touch_sent_insert AFTER INSERT ON touch WHEN NEW.status = 'sent' "
                   "BEGIN INSERT INTO touchmark (touch_id) VALUES (NEW.id); END")
        op.execute(f"CREATE TRIGGER touch_sent_update AFTER UPDATE OF {WATCHED} ON touch "
                   "WHEN NEW.status = 'sent' OR OLD.status = 'sent' "
                   "BEGIN INSERT INTO touchmark (touch_id) VALUES (NEW.id); END")


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS touch_sent_update" + (" ON touch" if op.get_bind().dialect.name == 'postgresql' else ""))
    op.execute("DROP TRIGGER IF EXISTS touch_sent_insert" + (" ON touch" if op.get_bind().dialect.name == 'postgresql' else ""))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS touch_mark()")
    op.drop_table('eventday')
    op.drop_table('sentday')
    op.drop_table('senttouch')
    op.drop_table('touchmark')
    op.drop_table('pathstate')
    op.drop_table('stagestay')
    op.drop_table('stageflow')
    with op.batch_alter_table('stagepath', schema=None) as batch_op:
        batch_op.drop_index('ix_stagepath_t_next')
        batch_op.drop_index('ix_stagepath_t')
        batch_op.drop_index(batch_op.f('ix_stagepath_contact_id'))
    op.drop_table('stagepath')
