"""the dashboards' kept counts per single filter value ("part": an owner, a stage now, an indexed attribute's
value, a rule that sent the contact a touch): contactpart (each contact's parts at the last refresh),
contactmark and its triggers on contact, and a part column in the key of stageflow, stagestay, sentday and
eventday

Revision ID: 0018_report_parts
Revises: 0017_report_narrowed
Create Date: 2026-12-02 14:00:00

The four count tables are kept from other tables only, so they are made again empty with the new key and
pathstate is reset: the next report or snapshot run builds every count again (INSERT ... SELECT).
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0018_report_parts'
down_revision = '0017_report_narrowed'
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
# the counts, as 0015 made them, with `part` first in their keys (a part's days are then one range)
KEYS = {
    'stageflow': ([('day_in', S()), ('idx', sa.Integer()), ('prev', sa.Integer()), ('day_out', S()),
                   ('same', sa.Boolean())], 'uq_stageflow_key'),
    'stagestay': ([('day_out', S()), ('idx', sa.Integer()), ('hours', sa.Integer())], 'uq_stagestay_key'),
    'sentday': ([('day', S()), ('rule', S()), ('step', S()), ('interaction', S()), ('channel', S()),
                 ('responded', sa.Boolean()), ('opted_out', sa.Boolean()), ('advance_h', sa.Integer())],
                'uq_sentday_key'),
    'eventday': ([('day', S()), ('type', S())], 'uq_eventday_day_type'),
}
WATCHED = ('owner', 'stage', 'attributes')  # what a contact's parts are made of (its touches: touchmark)


def _counts(table: str, with_part: bool) -> None:
    columns, unique = KEYS[table]
    part = [sa.Column('part', S(), nullable=False)] if with_part else []
    op.create_table(table, sa.Column('id', sa.Integer(), nullable=False), *part,
                    *(sa.Column(name, kind, nullable=False) for name, kind in columns),
                    sa.Column('n', sa.Integer(), nullable=False), sa.PrimaryKeyConstraint('id'),
                    sa.UniqueConstraint(*(['part'] if with_part else []), *(n for n, _ in columns), name=unique))


def upgrade() -> None:
    for table in KEYS:
        op.drop_table(table)
        _counts(table, with_part=True)
    op.create_table('contactpart',
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('part', S(), nullable=False),
    sa.PrimaryKeyConstraint('contact_id', 'part')
    )
    op.create_index('ix_contactpart_part', 'contactpart', ['part', 'contact_id'], unique=False)
    op.create_table('contactmark',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pathstate', schema=None) as batch_op:
        batch_op.add_column(sa.Column('contact_mark_id', sa.Integer(), nullable=False, server_default=sa.text('0')))
    op.execute("UPDATE pathstate SET stages = ''")  # everything counted again, per part, on the next refresh
    # a contact whose parts may have changed is marked, whatever wrote it (the import, the API, a rep's
    # hand-over, an SQL console): json has no equality on PostgreSQL, so its text is compared
    if op.get_bind().dialect.name == 'postgresql':
        changed = ' OR '.join(f'OLD.{c}::text IS DISTINCT FROM NEW.{c}::text' for c in WATCHED)
        op.execute("CREATE FUNCTION contact_mark() RETURNS trigger AS $$ BEGIN "
                   "INSERT INTO contactmark (contact_id) VALUES (OLD.id); RETURN NULL; END $$ LANGUAGE plpgsql")
        op.execute(f"CREATE TRIGGER contact_parts_update AFTER UPDATE OF {', '.join(WATCHED)} ON contact "
                   f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION contact_mark()")
        op.execute("CREATE TRIGGER contact_parts_delete AFTER DELETE ON contact FOR EACH ROW "
                   "EXECUTE FUNCTION contact_mark()")
    else:
        changed = ' OR '.join(f'OLD.{c} IS NOT NEW.{c}' for c in WATCHED)
        op.execute(f"CREATE TRIGGER contact_parts_update AFTER UPDATE OF {', '.join(WATCHED)} ON contact "
                   f"WHEN {changed} BEGIN INSERT INTO contactmark (contact_id) VALUES (OLD.id); END")
        op.execute("CREATE TRIGGER contact_parts_delete AFTER DELETE ON contact "
                   "BEGIN INSERT INTO contactmark (contact_id) VALUES (OLD.id); END")


def downgrade() -> None:
    pg = op.get_bind().dialect.name == 'postgresql'
    for trigger in ('contact_parts_delete', 'contact_parts_update'):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}" + (" ON contact" if pg else ""))
    if pg:
        op.execute("DROP FUNCTION IF EXISTS contact_mark()")
    with op.batch_alter_table('pathstate', schema=None) as batch_op:
        batch_op.drop_column('contact_mark_id')
    op.execute("UPDATE pathstate SET stages = ''")
    op.drop_table('contactmark')
    op.drop_index('ix_contactpart_part', table_name='contactpart')
    op.drop_table('contactpart')
    for table in KEYS:
        op.drop_table(table)
        _counts(table, with_part=False)
