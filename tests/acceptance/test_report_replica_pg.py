"""`database_replica` on PostgreSQL: the dashboards, /api/report, the targets page and `outreach report`
read a second database while every write (evidence, the kept report counts) goes to `database`.

The "replica" is a copy of the primary (CREATE DATABASE ... TEMPLATE) in which every contact was then
moved to `deciding`, so a figure says which database it was read from; the primary's contacts are
`interested`. An unreachable replica is an error that names the setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select
from sqlmodel import col

from outreach import db
from outreach.analytics import paths, targets
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Evidence, PathState, StageChange, User
from outreach.project import Project
from tests.support import make_project
from tests.support.db import PG_URL, drop_pg_database, fresh_pg_database, require_pg
from tests.support.web import Seed, bearer, client, seed, sign_in

pytestmark = pytest.mark.postgres

MARKETER = "marketer@example.com"
NOWHERE = "postgresql+psycopg://postgres@127.0.0.1:1/outreach"  # nothing listens on port 1


@dataclass
class Dbs:
    root: Path
    seed: Seed
    primary: str  # URLs
    replica: str
    contacts: int


def _sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        cur = conn.execute(statement)
        return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dbs]:
    require_pg()
    tmp = tmp_path_factory.mktemp("replica")
    primary, primary_name = fresh_pg_database()
    root = make_project(tmp / "proj", primary)
    engine = Engine(Project.open(root))
    data = seed(engine)
    with session_scope(engine.db) as s:  # kept counts built, so that the copy has them too, as a replica would
        paths.refresh(s, engine.project.rules.stage_ids)
    db.dispose_all()
    replica_name = f"outreach_t_{uuid.uuid4().hex[:12]}"
    replica = PG_URL.rsplit("/", 1)[0] + f"/{replica_name}"
    _sql(PG_URL, f'CREATE DATABASE "{replica_name}" TEMPLATE "{primary_name}"')
    # the replica's moves, not yet in its kept counts (as on a replica whose primary has not refreshed them
    # since): a session that tried to refresh them there would write, which a replica refuses
    _sql(replica, "UPDATE contact SET stage = 'deciding'")
    _sql(replica, "INSERT INTO stagechange (contact_id, from_stage, to_stage, at) "
                  "SELECT id, 'interested', 'deciding', now() FROM contact")
    contacts = _sql(replica, "SELECT count(*) FROM contact")[0][0]
    try:
        yield Dbs(root, data, primary, replica, contacts)
    finally:
        drop_pg_database(replica_name)
        drop_pg_database(primary_name)


def funnel_now(report: dict[str, Any]) -> dict[str, int]:
    return {row["stage"]: row["now"] for row in report["funnel"] if row["now"]}


def opened(root: Path, monkeypatch: pytest.MonkeyPatch, replica: str | None) -> Engine:
    if replica is None:
        monkeypatch.delenv("OUTREACH_DATABASE_REPLICA", raising=False)
    else:
        monkeypatch.setenv("OUTREACH_DATABASE_REPLICA", replica)
    return Engine(Project.open(root))


def test_the_api_and_the_pages_read_the_replica_and_write_the_primary(
        dbs: Dbs, monkeypatch: pytest.MonkeyPatch) -> None:
    primary_only = client(opened(dbs.root, monkeypatch, None))
    assert funnel_now(primary_only.get("/api/report", headers=bearer(dbs.seed, MARKETER)).json()) == \
        {"interested": dbs.contacts}  # what reading the primary would show
    db.dispose_all()
    engine = opened(dbs.root, monkeypatch, dbs.replica)
    c = client(engine)
    # a move recorded on the primary after the copy: the report's refresh of the kept counts counts it there
    now = datetime.now(UTC)
    engine.record([EvidenceIn("demo.requested", now - timedelta(minutes=1), "cli",
                              contact_id=dbs.seed.contacts["Ada"])], now=now)
    with session_scope(engine.db) as s:
        last_change = s.execute(select(func.max(col(StageChange.id)))).scalar_one()
        kept_before = s.execute(select(col(PathState.change_id))).scalar_one()
    assert kept_before < last_change

    got = c.get("/api/report", headers=bearer(dbs.seed, MARKETER))
    assert got.status_code == 200, got.text
    assert funnel_now(got.json()) == {"deciding": dbs.contacts}  # the replica's contacts, all at deciding
    with session_scope(engine.db) as s:  # the refresh wrote to the primary...
        assert s.execute(select(col(PathState.change_id))).scalar_one() >= last_change
    replica_kept = _sql(dbs.replica, "SELECT change_id FROM pathstate")[0][0]
    assert replica_kept == kept_before  # ...and nothing to the replica

    # a write through the API lands on the primary only
    before = _sql(dbs.replica, "SELECT count(*) FROM evidence")[0][0]
    posted = c.post("/api/evidence", headers=bearer(dbs.seed, MARKETER), json={
        "contact": {"email": "Ada@Analytical.example"}, "type": "pricing.viewed",
        "occurred_at": datetime.now(UTC).isoformat(), "id": "replica-check"})
    assert posted.status_code == 201, posted.text
    with session_scope(engine.db) as s:
        assert s.execute(select(func.count()).select_from(Evidence).where(
            col(Evidence.dedupe_key).like("api:user:%:replica-check"))).scalar_one() == 1
    assert _sql(dbs.replica, "SELECT count(*) FROM evidence")[0][0] == before

    # the dashboard's CSV and page, and the targets page (a target set on the primary after the copy)
    sign_in(c, MARKETER)
    csv = c.get("/dashboard.csv?widget=funnel")
    assert csv.status_code == 200, csv.text
    assert f"deciding,{dbs.contacts}," in csv.text
    assert c.get("/dashboard").status_code == 200
    with session_scope(engine.db) as s:
        user = s.execute(select(User).where(col(User.email) == MARKETER)).scalar_one()
        targets.add(s, engine.project.rules, user, "conversion", ">=", "0.25", "interested")
    page = c.get("/targets")
    assert page.status_code == 200, page.text
    assert "25% of the contacts entering interested move on" in page.text


def test_the_cli_report_reads_the_replica(dbs: Dbs) -> None:
    root = make_project(dbs.root.parent / "cli", dbs.primary, database_replica="${REPLICA_URL}")
    env = {**os.environ, "REPLICA_URL": dbs.replica}
    env.pop("OUTREACH_DATABASE_REPLICA", None)
    p = subprocess.run([sys.executable, "-m", "outreach.cli", "report", "--json", "--project", str(root)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert funnel_now(json.loads(p.stdout)) == {"deciding": dbs.contacts}


def test_an_unreachable_replica_is_an_error_naming_the_setting(dbs: Dbs, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "OUTREACH_DATABASE_REPLICA": NOWHERE}
    p = subprocess.run([sys.executable, "-m", "outreach.cli", "report", "--project", str(dbs.root)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    assert p.stderr.startswith("error: database_replica (postgresql+psycopg://postgres@127.0.0.1:1/outreach) "
                               "cannot be reached:"), p.stderr
    c = client(opened(dbs.root, monkeypatch, NOWHERE))
    got = c.get("/api/report", headers=bearer(dbs.seed, MARKETER))
    assert got.status_code == 503
    assert got.json()["detail"].startswith("database_replica (postgresql+psycopg://postgres@127.0.0.1:1/outreach) "
                                           "cannot be reached:")
    assert c.get("/api/contacts", headers=bearer(dbs.seed, MARKETER)).status_code == 200  # the rest works
