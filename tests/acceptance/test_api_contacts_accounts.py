"""`POST /api/contacts` treats accounts as a CSV import does: the project's own committee roles, owners
by the `accounts: owners:` rule, and the account's stage following the members just written."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Account, Contact
from outreach.project import Project
from tests.support import make_project
from tests.support.web import bearer, client, seed

MARKETER = "marketer@example.com"
OWNERS = "  owners: {by: territory, round_robin: {east: [rita@example.com]}}\n"


def test_api_upserts_use_the_projects_roles_owners_and_account_stages(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'api.db'}")
    accounts = root / "rules" / "accounts.yaml"
    accounts.write_text(accounts.read_text()
                        .replace("roles: [economic_buyer,", "roles: [procurement, economic_buyer,")
                        .replace("  daily_cap: 3 ", OWNERS + "  daily_cap: 3 "))
    engine = Engine(Project.open(root))
    people, c = seed(engine), client(engine)
    auth = bearer(people, MARKETER)
    with session_scope(engine.db) as s:  # two buyers the seed moved to `interested`, in no account yet
        movers = [x.email for x in s.execute(select(Contact).where(col(Contact.stage) == "interested")
                                              .order_by(col(Contact.id)).limit(2)).scalars()]
    assert len(movers) == 2
    items = [{"email": movers[0], "account_id": "INITECH", "role": "Procurement"},
             {"email": movers[1], "account_id": "INITECH", "account_name": "Initech"},
             {"email": "gavin@hooli.example", "first_name": "Gavin", "attributes": {"territory": "east"}}]
    answer = c.post("/api/contacts", json=items, headers=auth)
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["recorded"] * 3, answer.json()
    with session_scope(engine.db) as s:
        members = {x.email: (x.role, x.owner) for x in
                   s.execute(select(Contact).where(col(Contact.account_id) == "INITECH")).scalars()}
        account = s.get(Account, "INITECH")
        assert members[movers[0]][0] == "procurement"  # a role of this project's, not of the default list
        gavin = s.execute(select(Contact).where(col(Contact.email) == "gavin@hooli.example")).scalar_one()
        assert (gavin.account_id, gavin.owner) == ("hooli.example", "rita@example.com")  # the owner rule, as on import
        # two members interested: the example's rule makes the account evaluating at once
        assert account is not None and account.stage == "evaluating" and account.name == "Initech"
    wrong = c.post("/api/contacts", json={"email": "x@initech.example", "role": "ceo"}, headers=auth)
    assert wrong.status_code == 422 and "'ceo' is not a committee role" in wrong.text and "procurement" in wrong.text
    column = c.post("/api/contacts", json={"email": "y@initech.example", "attributes": {"Company_Domain": "x.io"}},
                    headers=auth)
    assert column.status_code == 422 and "cannot be an attribute name" in column.text
