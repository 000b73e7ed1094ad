"""The migrations build exactly the schema the models declare, on SQLite and PostgreSQL.

Several people add tables at once and their migrations are re-chained when merged: a model
change without its migration (or a migration that drifted from the model) fails here, not on a
customer's database at the first start."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import SQLModel

from outreach import db, models  # noqa: F401  (registers every table)
from outreach.learning import learner  # noqa: F401  (and the learning tables)
from tests.support import make_project


@pytest.fixture
def project_path(tmp_path: Path, database: str) -> Path:
    """The example project with its SQLite database migrated from nothing when the engine opens it
    (elsewhere make_project copies a file migrated once per test process; the PostgreSQL template is
    itself migrated from nothing once per session)."""
    return make_project(tmp_path / "proj", database, migrated=False)


def test_one_head_and_a_straight_line() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(db.__file__).parent / "migrations"))
    script = ScriptDirectory.from_config(cfg)
    assert len(script.get_heads()) == 1, f"migrations have several heads: {script.get_heads()}"
    revisions = list(script.walk_revisions())
    assert all(len(r._all_down_revisions) <= 1 for r in revisions), "a merge revision: re-chain instead"
    # a start skips Alembic when the database is at db.HEAD: a new migration must move it, or it never runs
    assert script.get_heads() == [db.HEAD], "set outreach.db.HEAD to the newest migration's revision"


@pytest.mark.parametrize("database", ["sqlite", "postgres"], indirect=True)
# the attribute indexes are expressions that differ by dialect (migration 0017), made by the migration alone
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index ix_contact_attr_")
def test_migrated_schema_matches_the_models(database: str, engine: object) -> None:
    bound = db.make_engine(database)
    with bound.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # Types that compare differently only by dialect spelling are not drift.
    drift = [d for d in diff if not (isinstance(d, list) and d and d[0][0] == "modify_type")]
    # the attribute indexes (migration 0017) are expressions spelled per dialect, which no model Index can
    # declare: the migration alone makes them, and the dashboards' queries spell them the same way
    drift = [d for d in drift if not (d[0] == "remove_index" and d[1].name.startswith("ix_contact_attr_"))]
    assert drift == [], "\n".join(map(str, drift))
