"""`POST /api/evidence` and `POST /api/contacts` with a JSON list: one result per item (recorded,
duplicate or rejected, with its reason), idempotent by (source, id), contacts upserted by external id
then email; a single object behaves as before."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence
from tests.support.web import Seed, TestClient, bearer, client, seed, sign_in

ADMIN, MARKETER, REP = "admin@example.com", "marketer@example.com", "rep@example.com"
pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


@pytest.fixture
def web(engine: Engine) -> tuple[Engine, Seed, TestClient]:
    return engine, seed(engine), client(engine)


def post(web: tuple[Engine, Seed, TestClient], who: str, path: str, body: Any) -> Any:
    _e, s, c = web
    return c.post(path, json=body, headers=bearer(s, who))


def statuses(got: Any) -> list[tuple[int, str]]:
    assert got.status_code == 200, got.text
    return [(r["index"], r["status"]) for r in got.json()["results"]]


def test_an_evidence_batch_answers_per_item_and_is_idempotent(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, _c = web
    batch = [
        {"contact": {"email": "ada@analytical.example"}, "type": "webinar.attended", "id": "w1", "source": "crm"},
        {"contact": {"external_id": "CRM-002"}, "type": "webinar.attended", "id": "w2", "source": "crm"},
        {"contact": {"email": "nobody@example.org"}, "type": "webinar.attended", "id": "w3"},
        {"contact": {"email": "ada@analytical.example"}, "type": "Not An Event"},
        {"contact": {"email": "ada@analytical.example"}, "type": "email.resubscribed"},
        {"contact": {"id": s.contacts["Ada"]}, "type": "webinar.attended", "id": "w1", "source": "crm"},
        {"contact": {"email": "ada@analytical.example"}, "type": "webinar.attended", "surprise": 1},
        "not an object",
        {"contact": {"phone": "12"}, "type": "webinar.attended"},
    ]
    got = post(web, ADMIN, "/api/evidence", batch)
    assert statuses(got) == [(0, "recorded"), (1, "recorded"), (2, "rejected"), (3, "rejected"), (4, "rejected"),
                             (5, "duplicate"), (6, "rejected"), (7, "rejected"), (8, "rejected")]
    errors = [r["error"] for r in got.json()["results"]]
    assert errors[0] is None and errors[2] == "no such contact" and "dotted lowercase" in errors[3]
    assert "only the buyer" in errors[4] and "surprise" in errors[6] and "phone '12'" in errors[8]
    again = post(web, ADMIN, "/api/evidence", batch[:2])
    assert statuses(again) == [(0, "duplicate"), (1, "duplicate")]
    with session_scope(e.db) as db:
        assert db.execute(select(func.count()).select_from(Evidence).where(
            col(Evidence.type) == "webinar.attended")).scalar_one() == 2
    # a rep's list: another rep's buyer is no contact of theirs
    mine = post(web, REP, "/api/evidence", [{"contact": {"email": "alan@bletchley.example"}, "type": "demo.watched"},
                                            {"contact": {"email": "ada@analytical.example"}, "type": "demo.watched"}])
    assert statuses(mine) == [(0, "rejected"), (1, "recorded")]


def test_evidence_lists_over_a_thousand_or_empty_are_refused(web: tuple[Engine, Seed, TestClient]) -> None:
    item = {"contact": {"email": "ada@analytical.example"}, "type": "webinar.attended"}
    too_many = post(web, ADMIN, "/api/evidence", [item] * 1001)
    assert too_many.status_code == 422 and "at most 1,000" in too_many.text
    assert post(web, ADMIN, "/api/evidence", []).status_code == 422
    single = post(web, ADMIN, "/api/evidence", {"contact": {"email": "ada@analytical.example"}, "type": "BAD"})
    assert single.status_code == 422  # a single object: as before
    missing = post(web, ADMIN, "/api/evidence", {"type": "webinar.attended"})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "contact"]


def test_contacts_are_upserted_by_external_id_then_email(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, _c = web
    got = post(web, MARKETER, "/api/contacts", [
        {"external_id": "CRM-002", "email": "grace.new@cobol.example", "title": "Rear Admiral"},  # external id wins
        {"email": "ADA@analytical.example", "company": "Engines Ltd", "attributes": {"plan": "pro"}},  # by email
        {"email": "new@example.org", "first_name": "New", "consent_email": True},
        {"email": "not-an-address"},
        {"email": "new@example.org", "first_name": "Twice"},
        {"first_name": "No address"},
        {"email": "x@example.org", "attributes": {"email": "sneaky"}},
    ])
    assert statuses(got) == [(0, "recorded"), (1, "recorded"), (2, "recorded"), (3, "rejected"), (4, "rejected"),
                             (5, "rejected"), (6, "rejected")]
    errors = [r["error"] for r in got.json()["results"]]
    assert "not an email address" in errors[3] and "index 2" in errors[4] and "no address" in errors[5]
    with session_scope(e.db) as db:
        grace = db.get(Contact, s.contacts["Grace"])
        ada = db.get(Contact, s.contacts["Ada"])
        new = db.execute(select(Contact).where(col(Contact.email) == "new@example.org")).scalar_one()
        assert grace is not None and (grace.title, grace.email) == ("Rear Admiral", "grace.new@cobol.example")
        assert ada is not None and ada.company == "Engines Ltd" and ada.attributes.get("plan") == "pro"
        assert new.consent_email is True and new.stage == e.project.rules.first_stage
    one = post(web, ADMIN, "/api/contacts", {"email": "solo@example.org", "external_id": "S-1"})
    assert one.status_code == 200 and one.json()["contact"]["external_id"] == "S-1"
    assert post(web, ADMIN, "/api/contacts", {"email": "bad"}).status_code == 422
    assert post(web, REP, "/api/contacts", {"email": "rep@x.org"}).status_code == 403


def test_an_admin_exports_and_erases_a_persons_data(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    ada = s.contacts["Ada"]
    assert c.get(f"/api/contacts/{ada}/personal-data", headers=bearer(s, MARKETER)).status_code == 403
    assert c.post(f"/api/contacts/{ada}/forget", headers=bearer(s, REP)).status_code == 403  # her own rep too
    got = c.get(f"/api/contacts/{ada}/personal-data", headers=bearer(s, ADMIN))
    assert got.status_code == 200 and got.json()["contact"]["email"] == "ada@analytical.example"
    assert {ev["type"] for ev in got.json()["evidence"]} >= {"email.clicked", "pricing.viewed"}
    gone = c.post(f"/api/contacts/{ada}/forget", headers=bearer(s, ADMIN))
    assert gone.status_code == 200 and gone.json()["by"] == ADMIN
    with session_scope(e.db) as db:
        row = db.get(Contact, ada)
        assert row is not None and row.email is None and row.first_name is None
    again = post(web, ADMIN, "/api/contacts", [{"email": "ada@analytical.example", "first_name": "Ada"}])
    assert statuses(again) == [(0, "rejected")] and "forgotten" in again.json()["results"][0]["error"]


def test_the_contact_page_lets_an_admin_download_and_erase(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    grace = s.contacts["Grace"]
    csrf = sign_in(c, MARKETER)
    assert "Forget this person" not in c.get(f"/contacts/{grace}").text
    assert c.get(f"/contacts/{grace}/personal-data").status_code == 403
    c.cookies.clear()
    csrf = sign_in(c, ADMIN)
    page = c.get(f"/contacts/{grace}").text
    assert "Forget this person" in page and f"/contacts/{grace}/personal-data" in page
    download = c.get(f"/contacts/{grace}/personal-data")
    assert download.headers["content-disposition"].startswith("attachment")
    assert download.json()["contact"]["email"] == "grace@cobol.example"
    unconfirmed = c.post(f"/contacts/{grace}/forget", data={"csrf": csrf}, follow_redirects=False)
    assert unconfirmed.status_code == 303
    with session_scope(e.db) as db:
        row = db.get(Contact, grace)
        assert row is not None and row.email == "grace@cobol.example"  # not without the box ticked
    done = c.post(f"/contacts/{grace}/forget", data={"csrf": csrf, "confirm": "on"}, follow_redirects=False)
    assert done.status_code == 303
    with session_scope(e.db) as db:
        row = db.get(Contact, grace)
        assert row is not None and row.email is None and row.last_name is None
