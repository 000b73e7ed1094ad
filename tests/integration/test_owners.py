"""Owners by rule on SQLite and PostgreSQL: after an import, the unowned go round robin among the reps
of their territory (fewest accounts first), a whole account to one rep, an account that has an owner
keeps them for its new members, a territory without reps stays unowned; each change is kept."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from outreach.accounts.owners import assign_owners
from outreach.accounts.rules import Owners
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, OwnerChange
from outreach.project import Project
from tests.support import at, make_project

MONDAY = at("2026-03-02 15:00")
CSV = """email,first_name,account_id,role,owner,territory
a1@acme.example,A1,ACME,champion,,east
a2@acme.example,A2,ACME,economic_buyer,,east
b1@beta.example,B1,BETA,champion,,east
c1@cyan.example,C1,CYAN,champion,,east
d1@delta.example,D1,DELTA,champion,old@example.com,east
d2@delta.example,D2,DELTA,user,,east
w1@west.example,W1,WEST,champion,,west
n1@north.example,N1,NORTH,champion,,north
"""
RULES = Owners.model_validate({"by": "territory", "round_robin": {
    "east": ["Rita@example.com", "otto@example.com"], "west": ["wes@example.com"]}})


def test_owners_by_rule(tmp_path: Path, database: str) -> None:
    engine = Engine(Project.open(make_project(tmp_path / "proj", database)))
    (tmp_path / "people.csv").write_text(CSV)
    with session_scope(engine.db) as s:
        import_csv(s, tmp_path / "people.csv", region="US", first_stage="aware", now=MONDAY)
        assert assign_owners(s, RULES, MONDAY) == 6
    with session_scope(engine.db) as s:
        owners = {c.email: c.owner for c in s.exec(select(Contact)).all()}
        changes = s.exec(select(OwnerChange)).all()
    assert owners == {
        "a1@acme.example": "rita@example.com", "a2@acme.example": "rita@example.com",  # one rep per account
        "b1@beta.example": "otto@example.com",  # the next rep of the territory
        "c1@cyan.example": "rita@example.com",  # round again: both had one account
        "d1@delta.example": "old@example.com", "d2@delta.example": "old@example.com",  # the account's owner
        "w1@west.example": "wes@example.com",
        "n1@north.example": None}  # no rep for the north: a rep may claim it
    assert len(changes) == 6 and {c.how for c in changes} == {"rule"}
    with session_scope(engine.db) as s:  # nothing left to do: a second run changes nobody
        assert assign_owners(s, RULES, MONDAY) == 0


def test_the_least_loaded_rep_comes_first(tmp_path: Path, database: str) -> None:
    engine = Engine(Project.open(make_project(tmp_path / "proj", database)))
    (tmp_path / "people.csv").write_text("email,account_id,owner\nx1@x.example,X1,rita@example.com\n"
                                         "x2@x.example,X2,rita@example.com\ny@y.example,Y,\nz@z.example,Z,\n"
                                         "q@q.example,Q,\n")
    with session_scope(engine.db) as s:
        import_csv(s, tmp_path / "people.csv", region="US", first_stage="aware", now=MONDAY)
        assign_owners(s, Owners.model_validate({"round_robin": ["rita@example.com", "otto@example.com"]}), MONDAY)
    with session_scope(engine.db) as s:
        owners = {c.email: c.owner for c in s.exec(select(Contact)).all()}
    assert [owners[e] for e in ("y@y.example", "z@z.example", "q@q.example")] == [
        "otto@example.com", "otto@example.com", "rita@example.com"]  # rita had two accounts already
