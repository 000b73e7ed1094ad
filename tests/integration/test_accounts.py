"""Accounts on SQLite and PostgreSQL: import with account columns and roles, the account stage derived
from members' evidence with its proof, and one member's answer pausing the touches to the others."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlmodel import select

from outreach.accounts.store import refresh_stages
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Account, Contact, Touch
from outreach.project import Project
from outreach.testing import RecordingProvider
from tests.support import ALWAYS, at, make_project

MONDAY = at("2026-03-02 15:00")
CSV = """email,first_name,account_id,account_name,company_domain,role,owner
cfo@acme.example,Carla,ACME-1,Acme Corp,acme.example,economic_buyer,rep@example.com
champ@acme.example,Chad,ACME-1,,,champion,rep@example.com
tech@acme.example,Tess,ACME-1,,,Technical Evaluator,rep@example.com
solo@gmail.com,Sol,,,,,
bo@beta.example,Bo,,,https://www.Beta.example/about,user,
bad@acme.example,Bad,ACME-1,,,ceo,
uma@acme.example,Uma,ACME-1,,,user,
"""


def setup(tmp_path: Path, database: str) -> tuple[Engine, RecordingProvider]:
    root = make_project(tmp_path / "proj", database,
                        **{"policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": ALWAYS}})
    welcome = root / "content" / "aware" / "welcome.email.j2"  # content that names the rest of the committee
    welcome.write_text(welcome.read_text().replace(
        "\nUnsubscribe:", "\nWith you: {{ account.members | map(attribute='first_name') | join(', ') }}\n"
        "Unsubscribe:", 1))
    nurture = root / "rules" / "nurture.yaml"  # a step for economic buyers once their account evaluates
    nurture.write_text(nurture.read_text().replace("      skip_if: [email.clicked]\n", (
        "      skip_if: [email.clicked]\n    - id: exec-intro\n      interaction: nurture\n"
        "      content: aware/welcome\n      role: economic_buyer\n      account_stage: [evaluating]\n"), 1))
    provider = RecordingProvider()
    engine = Engine(Project.open(root), providers=provider.as_providers())
    (tmp_path / "people.csv").write_text(CSV)
    rules = engine.project.rules
    with session_scope(engine.db) as s:
        result = import_csv(s, tmp_path / "people.csv", region="US", first_stage="aware", now=MONDAY,
                            roles=rules.accounts.roles)
        refresh_stages(s, rules.accounts, rules.stage_ids, result.account_ids, MONDAY, rules.account_rule_at)
    assert result.created == 6
    assert result.rejected == [(7, "role 'ceo' is not a committee role (one of: economic_buyer, champion, "
                                   "technical_evaluator, user, legal)")]
    return engine, provider


def people(engine: Engine) -> dict[str, Contact]:
    with session_scope(engine.db) as s:
        return {c.email or "": c for c in s.exec(select(Contact)).all()}


def account(engine: Engine, aid: str) -> Account:
    with session_scope(engine.db) as s:
        found = s.get(Account, aid)
        assert found is not None
        return found


def test_import_names_accounts_and_roles(tmp_path: Path, database: str) -> None:
    engine, _ = setup(tmp_path, database)
    got = {e: (c.account_id, c.role) for e, c in people(engine).items()}
    assert got == {"cfo@acme.example": ("ACME-1", "economic_buyer"), "champ@acme.example": ("ACME-1", "champion"),
                   "tech@acme.example": ("ACME-1", "technical_evaluator"), "solo@gmail.com": (None, None),
                   "uma@acme.example": ("ACME-1", "user"),
                   "bo@beta.example": ("beta.example", "user")}
    acme = account(engine, "ACME-1")
    assert (acme.name, acme.domain, acme.stage) == ("Acme Corp", "acme.example", "")
    assert account(engine, "beta.example").domain == "beta.example"


def test_one_answer_pauses_the_others_and_moves_the_account(tmp_path: Path, database: str) -> None:
    engine, provider = setup(tmp_path, database)
    ids = {e: c.id for e, c in people(engine).items()}
    engine.plan(MONDAY)
    engine.record([EvidenceIn("email.replied", MONDAY, contact_id=ids["champ@acme.example"], dedupe_key="r1")],
                  MONDAY)
    acme = account(engine, "ACME-1")
    with session_scope(engine.db) as s:
        assert s.exec(select(Touch).where(Touch.step == "exec-intro")).all() == []
    assert acme.paused_until == MONDAY + timedelta(days=3) and acme.paused_by == ids["champ@acme.example"]
    assert acme.stage == ""  # one member at interested is not enough

    engine.dispatch(MONDAY + timedelta(hours=1))
    sent = {m.to_email for m in provider.sent}
    assert sent == {"solo@gmail.com", "bo@beta.example"}
    with session_scope(engine.db) as s:
        held = {t.contact_id: t.reason for t in s.exec(select(Touch).where(Touch.status == "approved")).all()}
    assert set(held) == {ids["cfo@acme.example"], ids["tech@acme.example"], ids["uma@acme.example"]}
    assert all(r and r.startswith("waiting: another member of Acme Corp answered") for r in held.values())

    engine.record([EvidenceIn("email.clicked", MONDAY + timedelta(hours=2), contact_id=ids["tech@acme.example"],
                              dedupe_key="c1")], MONDAY + timedelta(hours=2))
    acme = account(engine, "ACME-1")
    assert acme.stage == "evaluating"
    with session_scope(engine.db) as s:  # planned as the account advanced: the economic buyer only
        assert [t.contact_id for t in s.exec(select(Touch).where(Touch.step == "exec-intro")).all()] == [
            ids["cfo@acme.example"]]
    assert acme.stage_proof["rule"] == "2 members reached interested"
    assert acme.stage_proof["where"] == "rules/accounts.yaml:12"
    assert {m["email"] for m in acme.stage_proof["members"]} == {"champ@acme.example", "tech@acme.example"}

    engine.dispatch(MONDAY + timedelta(days=3, hours=1))  # the pause is over
    [to_cfo] = [m for m in provider.sent if m.to_email == "cfo@acme.example"]
    assert "With you: Chad, Tess, Uma" in to_cfo.text
    assert "With you: \n" in next(m.text for m in provider.sent if m.to_email == "solo@gmail.com")
