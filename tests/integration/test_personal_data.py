"""Personal data: a person's own data out, and forgetting them leaves no trace of their address in any
table (every text and JSON column of every table, found by inspecting the database), keeps the counts,
and refuses their address on a later import."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import String, func, inspect, literal_column, select, table
from sqlmodel import Session, col

from outreach.contacts import find_contact, import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import (
    Account,
    ConsentChange,
    Contact,
    ErasureRequest,
    Evidence,
    Message,
    Touch,
    TouchStatus,
    UnattributedEvent,
    WebhookEvent,
)
from outreach.personal import export_rows, forget, personal_data
from tests.support import at

EMAIL, PHONE = "ada.private@example.org", "+14155550123"
HEADER = "email,phone,first_name,last_name,company,external_id,account_name\n"


def text_columns_holding(session: Session, needle: str) -> list[str]:
    """'table.column' for every character or JSON column, of every table, that contains `needle`."""
    bind = session.get_bind()
    quote = bind.dialect.identifier_preparer.quote
    found = []
    for name in inspect(bind).get_table_names():
        for column in inspect(bind).get_columns(name):
            if not any(t in str(column["type"]).upper() for t in ("CHAR", "TEXT", "JSON")):
                continue
            text = func.lower(func.cast(literal_column(quote(column["name"])), String))
            if session.execute(select(func.count()).select_from(table(name)).where(
                    text.contains(needle.lower(), autoescape=True))).scalar_one():
                found.append(f"{name}.{column['name']}")
    return found


def import_people(engine: Engine, path: Path, body: str) -> Any:
    path.write_text(HEADER + body)
    with session_scope(engine.db) as s:
        return import_csv(s, path, region="US", first_stage="aware", now=at("2026-03-02 10:00"),
                          secret=engine.settings.server.secret_key)


def seed_person(engine: Engine, tmp_path: Path) -> int:
    import_people(engine, tmp_path / "people.csv", f"{EMAIL},{PHONE},Ayla,King,Analytical,CRM-1,Acme\n"
                                                    "other@example.org,,Bob,Other,,CRM-2,\n")
    with session_scope(engine.db) as s:
        cid = find_contact(s, EMAIL).id or 0
        touch = Touch(contact_id=cid, dedupe_key="t1", stage="aware", rule="playbook:aware", step="hello",
                      interaction="nurture", content="aware/hello", channel="email", status=TouchStatus.SENT,
                      due_at=at("2026-03-02 10:00"), sent_at=at("2026-03-02 10:00"), provider="outbox",
                      provider_message_id="pm-1", body_override=f"Hi Ayla ({EMAIL})",
                      reason=f"550 5.1.1 <{EMAIL.upper()}>: mailbox unavailable")
        s.add(touch)
        s.flush()
        s.add(Message(touch_id=touch.id or 0, channel="email", provider="outbox", to=EMAIL, subject="Hello Ayla",
                      text=f"Dear Ayla, call {PHONE}"))
        s.add(ConsentChange(contact_id=cid, channel="email", granted=False, source=f"mail from {EMAIL}",
                            reason="asked", actor="cli", at=at("2026-03-02 11:00")))
        s.add(UnattributedEvent(source="inbound", type="email.replied", occurred_at=at("2026-03-02 12:00"),
                                reason="no touch", email=EMAIL, data={"from": EMAIL}))
        s.add(WebhookEvent(msg_id="msg_1", type="email.replied", contact_id=cid,
                           body=f'{{"data": {{"contact": {{"email": "{EMAIL}"}}}}}}'))
    engine.record([EvidenceIn("email.replied", at("2026-03-03 09:00"), "inbound", contact_id=cid,
                              dedupe_key=f"reply:{EMAIL}:1", data={"from": EMAIL, "text": f"call me on {PHONE}"}),
                   EvidenceIn("pricing.viewed", at("2026-03-03 10:00"), "api", contact_id=cid, dedupe_key="api:7",
                              data={"page": "/pricing"})])
    return cid


def test_forget_leaves_no_trace_keeps_counts_and_refuses_a_later_import(engine: Engine, tmp_path: Path) -> None:
    cid = seed_person(engine, tmp_path)
    with session_scope(engine.db) as s:
        before = personal_data(s, find_contact(s, cid))
        assert before["contact"]["email"] == EMAIL and before["messages_sent"][0]["to"] == EMAIL
        assert {e["type"] for e in before["evidence"]} == {"email.replied", "pricing.viewed"}
        assert before["messages_received"][0]["data"] == {"from": EMAIL}
        assert before["consent_history"][0]["source"] == f"mail from {EMAIL}"
        assert text_columns_holding(s, EMAIL)  # the scan finds the address before: it can fail
        forget(s, find_contact(s, cid), secret=engine.settings.server.secret_key, actor="dpo@x.io",
               now=at("2026-03-04 09:00"))
    with session_scope(engine.db) as s:
        # needles with a letter past f: the hex digests kept for the do-not-contact list may hold "ada"
        for needle in (EMAIL, PHONE, PHONE.removeprefix("+1"), "Ayla", "Analytical", "CRM-1"):
            assert text_columns_holding(s, needle) == [], needle
        # the account (example.org, named Acme on Ayla's row) is Bob's too: it stays, without Ayla
        account = s.get(Account, "example.org")
        assert account is not None and account.name == "Acme"
        members = s.execute(select(Contact).where(col(Contact.account_id) == "example.org")).scalars().all()
        assert [c.first_name for c in members] == ["Bob"]
        assert s.execute(select(func.count()).select_from(Evidence).where(
            col(Evidence.contact_id) == cid)).scalar_one() == 2  # the counts stay
        assert s.execute(select(func.count()).select_from(Touch).where(
            col(Touch.contact_id) == cid, col(Touch.status) == TouchStatus.SENT)).scalar_one() == 1
        audit = s.execute(select(ErasureRequest)).scalars().one()
        assert (audit.contact_id, audit.actor) == (cid, "dpo@x.io")
        assert s.execute(select(func.count()).select_from(Contact)).scalar_one() == 2
        exported = {r["id"]: r for r in export_rows(s)}
        assert exported[cid]["email"] is None and exported[cid]["evidence"] == 2
    again = import_people(engine, tmp_path / "again.csv", "ADA.private@example.org,,Ada,K,,,\n"
                                                          ",(415) 555-0123,Ada,K,,,\n"
                                                          "new@example.org,,New,Person,,,\n")
    assert again.created == 1 and [row for row, _ in again.rejected] == [2, 3]
    assert "asked to be forgotten" in again.rejected[0][1]


def test_export_rows_carry_stage_proof_preferences_and_counts(engine: Engine, tmp_path: Path) -> None:
    cid = seed_person(engine, tmp_path)
    with session_scope(engine.db) as s:
        rows = list(export_rows(s, batch=1))  # one contact a page: the pages join up
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows) and len(rows) == 2
    ada = next(r for r in rows if r["id"] == cid)
    assert ada["account_name"] == "Acme" and ada["touches_sent"] == 1 and ada["responses"] == 1
    assert ada["evidence"] == 2 and ada["stage"] != "aware" and ada["stage_proof"] in ("email.replied",
                                                                                         "pricing.viewed")


def test_an_account_of_the_forgotten_person_alone_goes_with_them(engine: Engine, tmp_path: Path) -> None:
    import_people(engine, tmp_path / "solo.csv", "sole@trader.example,,Sol,Trader,Sol Trading,CRM-9,Sol Trading\n")
    with session_scope(engine.db) as s:
        assert s.get(Account, "trader.example") is not None
        forget(s, find_contact(s, "sole@trader.example"), secret=engine.settings.server.secret_key, actor="dpo@x.io",
               now=at("2026-03-04 09:00"))
    with session_scope(engine.db) as s:
        assert s.get(Account, "trader.example") is None
        assert text_columns_holding(s, "Sol Trading") == [] and text_columns_holding(s, "trader.example") == []


def test_a_reply_from_a_forgotten_address_that_names_no_touch_is_not_kept(engine: Engine, tmp_path: Path) -> None:
    cid = seed_person(engine, tmp_path)
    with session_scope(engine.db) as s:
        forget(s, find_contact(s, cid), secret=engine.settings.server.secret_key, actor="dpo@x.io",
               now=at("2026-03-04 09:00"))
    result = engine.record([
        EvidenceIn("email.replied", at("2026-03-05 09:00"), "inbound", email=EMAIL.upper(), dedupe_key="late:1",
                   requires_touch="the reply names no message of ours", data={"from": EMAIL}),
        EvidenceIn("sms.replied", at("2026-03-05 09:00"), "twilio", phone=PHONE, dedupe_key="late:2",
                   requires_touch="no SMS of ours went to this number"),
        EvidenceIn("email.replied", at("2026-03-05 09:00"), "inbound", email="stranger@example.net",
                   dedupe_key="late:3", requires_touch="the reply names no message of ours")],
        now=at("2026-03-05 09:00"))
    assert result.forgotten == 2 and [i.email for i in result.unattributed] == ["stranger@example.net"]
    with session_scope(engine.db) as s:
        for needle in (EMAIL, PHONE):
            assert text_columns_holding(s, needle) == [], needle
        assert s.execute(select(func.count()).select_from(UnattributedEvent)).scalar_one() == 1  # the stranger
