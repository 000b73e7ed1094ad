"""The account pages: a rep sees the accounts where they own a member (and no other, not even by its
address), with members' roles and stages, the stage's proof and the account's timeline. SQLite."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Account, Contact
from tests.support.web import client, seed, sign_in


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_rep_sees_their_accounts_with_proof_and_timeline(engine: Engine, tmp_path: Path) -> None:
    seed(engine)
    now = datetime.now(UTC)
    with session_scope(engine.db) as s:  # ada and grace (rep's) sit on one committee; alan (rep2's) on another
        s.add(Account(id="ACME-1", name="Acme <Corp>", domain="acme.example"))
        s.add(Account(id="BLETCH", name="Bletchley", domain="bletchley.example"))
        for c in s.exec(select(Contact)).all():
            if c.first_name in ("Ada", "Grace"):
                c.account_id, c.role = "ACME-1", "champion" if c.first_name == "Ada" else "economic_buyer"
            elif c.first_name == "Alan":
                c.account_id = "BLETCH"
            s.add(c)
    ada = next(i for n, i in seed_ids(engine).items() if n == "Ada")
    engine.record([EvidenceIn("meeting.accepted", now, "cli", contact_id=ada)], now=now)  # ada -> evaluating
    c = client(engine)
    sign_in(c, "rep@example.com")
    listing = c.get("/accounts")
    assert listing.status_code == 200
    assert "Acme &lt;Corp&gt;" in listing.text and "Bletchley" not in listing.text
    page = c.get("/accounts/ACME-1")
    assert page.status_code == 200
    text = page.text
    assert "economic buyer" in text and "champion" in text
    assert "Because 2 members reached interested" in text  # grace clicked two days ago, ada accepted now
    assert "meeting.accepted" in text  # the account's timeline
    assert "Automated touches paused until" in text
    assert c.get("/accounts/BLETCH").status_code == 404  # rep2's account: not even a hint
    assert 'href="/accounts/ACME-1">account ACME-1</a> (champion)' in c.get(f"/contacts/{ada}").text
    assert c.get("/accounts/bletchley.example").status_code == 404


def seed_ids(engine: Engine) -> dict[str | None, int]:
    with session_scope(engine.db) as s:
        return {c.first_name: c.id or 0 for c in s.exec(select(Contact)).all()}
