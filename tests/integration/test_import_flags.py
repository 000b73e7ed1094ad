"""Import on SQLite and PostgreSQL: an imported `stage` column starts contacts at that stage (forward
only) with `stage.imported` evidence naming the file, row and value, or rejects its row when nothing
says what it means; the owners nobody can act for are counted per owner."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach.contacts import StageMeaning, import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.mappings import ColumnMap, Target
from outreach.models import Contact, Evidence, StageChange
from outreach.ownership import all_flags, flags_for
from outreach.users import add_user
from tests.support import at

NOW = at("2026-03-02 10:00")
CSV = """email,owner,stage
a@buyer.example,rep@example.com,interested
b@buyer.example,ghost@example.com,Evaluating
c@buyer.example,ghost@example.com,
d@buyer.example,,aware
e@buyer.example,,nonsense
"""


def _write(tmp_path: Path, text: str = CSV) -> Path:
    path = tmp_path / "crm.csv"
    path.write_text(text)
    return path


def test_stage_column_and_owner_flags(engine: Engine, tmp_path: Path) -> None:
    rules = engine.project.rules
    path = _write(tmp_path)
    with session_scope(engine.db) as s:  # nothing says what the column means: the rows with a stage are refused
        result = import_csv(s, path, region="US", first_stage=rules.first_stage, now=NOW)
        assert [r for r, _ in result.rejected] == [2, 3, 5, 6]
        assert "row" not in result.rejected[0][1] and "--stage-column" in result.rejected[0][1]
        s.rollback()
    meaning = StageMeaning(tuple(rules.stage_ids))
    with session_scope(engine.db) as s:
        add_user(s, "rep@example.com", "rep", None)
        result = import_csv(s, path, region="US", first_stage=rules.first_stage, now=NOW, stages=meaning)
        assert result.rejected == [(6, "stage 'nonsense' is not a stage of the rules "
                                        "(aware, interested, evaluating, deciding, customer)")]
        flags = flags_for(s, result.owners, rules)
        assert [(f.owner, f.contacts) for f in flags] == [("ghost@example.com", 2), (None, 1)]
    with session_scope(engine.db) as s:
        stages = {c.email: (c.stage, c.stage_entry) for c in s.execute(select(Contact)).scalars()}
        assert stages == {"a@buyer.example": ("interested", 2), "b@buyer.example": ("evaluating", 2),
                          "c@buyer.example": ("aware", 1), "d@buyer.example": ("aware", 1)}
        proofs = s.execute(select(Evidence, StageChange).join(StageChange, col(StageChange.evidence_id) == col(
            Evidence.id)).order_by(col(Evidence.id))).all()
        assert [(e.type, e.source, e.data["row"], e.data["value"], ch.to_stage) for e, ch in proofs] == [
            ("stage.imported", "import", 2, "interested", "interested"),
            ("stage.imported", "import", 3, "Evaluating", "evaluating")]
        assert proofs[0][0].data["file"] == "crm.csv"
        assert [(f.owner, f.contacts) for f in all_flags(s, rules)] == [("ghost@example.com", 2), (None, 1)]

    # forward only: a file that states an earlier stage leaves a buyer where they are
    again = _write(tmp_path, "email,stage\nb@buyer.example,interested\na@buyer.example,deciding\n")
    with session_scope(engine.db) as s:
        import_csv(s, again, region="US", first_stage=rules.first_stage, now=NOW, stages=meaning)
    with session_scope(engine.db) as s:
        now_at = {c.email: c.stage for c in s.execute(select(Contact)).scalars()}
        assert now_at["b@buyer.example"] == "evaluating" and now_at["a@buyer.example"] == "deciding"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_mapping_says_what_a_crms_stages_mean(engine: Engine, tmp_path: Path) -> None:
    rules = engine.project.rules
    path = _write(tmp_path, "email,Lifecycle Stage\nx@buyer.example,Sales Qualified Lead\ny@buyer.example,Lead\n")
    meaning = StageMeaning(tuple(rules.stage_ids), {"sales qualified lead": "interested", "lead": "aware"}, "mapping m")
    mapping = ColumnMap("m", {"lifecycle stage": Target("stage")}, stages=dict(meaning.table))
    with session_scope(engine.db) as s:
        result = import_csv(s, path, region="US", first_stage=rules.first_stage, now=NOW, stages=meaning,
                            mapping=mapping)
        assert result.rejected == []
    with session_scope(engine.db) as s:
        assert {c.email: c.stage for c in s.execute(select(Contact)).scalars()} == {
            "x@buyer.example": "interested", "y@buyer.example": "aware"}
        ev = s.execute(select(Evidence)).scalar_one()
        assert (ev.data["value"], ev.data["meaning"]) == ("Sales Qualified Lead", "mapping m")
