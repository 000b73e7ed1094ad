"""The JSON API under /api, every endpoint with good and bad input, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, Preference, TouchStatus
from tests.support.web import Seed, TestClient, bearer, client, seed, touch

ADMIN, MARKETER, REP, REP2 = "admin@example.com", "marketer@example.com", "rep@example.com", "rep2@example.com"


@pytest.fixture
def web(engine: Engine) -> tuple[Engine, Seed, TestClient]:
    return engine, seed(engine), client(engine)


def call(c: TestClient, s: Seed, who: str, method: str, path: str, **kw: Any) -> Any:
    return c.request(method, path, headers=bearer(s, who), **kw)


def test_a_token_is_required(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, s, c = web
    missing = c.get("/api/me")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert c.get("/api/me", headers={"Authorization": "Bearer otk_nope"}).status_code == 401
    assert c.get("/api/me", headers={"Authorization": f"Basic {s.tokens[REP]}"}).status_code == 401
    assert call(c, s, REP, "GET", "/api/me").json() == {"email": REP, "role": "rep"}


def test_contacts_search_is_scoped_and_paged(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, s, c = web
    mine = call(c, s, REP, "GET", "/api/contacts").json()
    assert mine["total"] == 3 and {x["owner"] for x in mine["contacts"]} == {REP}
    assert call(c, s, REP, "GET", "/api/contacts", params={"owner": REP2}).json()["total"] == 3  # a rep's own
    everyone = call(c, s, MARKETER, "GET", "/api/contacts").json()
    assert everyone["total"] == 6
    assert call(c, s, ADMIN, "GET", "/api/contacts", params={"owner": REP2}).json()["total"] == 2
    found = call(c, s, ADMIN, "GET", "/api/contacts", params={"q": "ADA KING"}).json()
    assert [x["email"] for x in found["contacts"]] == ["ada@analytical.example"]
    assert call(c, s, ADMIN, "GET", "/api/contacts", params={"q": "cobol lab"}).json()["total"] == 1
    assert call(c, s, ADMIN, "GET", "/api/contacts", params={"q": "%"}).json()["total"] == 0  # a literal %
    assert call(c, s, ADMIN, "GET", "/api/contacts", params={"stage": "aware"}).json()["total"] == 0
    page1 = call(c, s, ADMIN, "GET", "/api/contacts", params={"limit": 4}).json()
    page2 = call(c, s, ADMIN, "GET", "/api/contacts", params={"limit": 4, "offset": 4}).json()
    assert len(page1["contacts"]) == 4 and len(page2["contacts"]) == 2
    assert not {x["id"] for x in page1["contacts"]} & {x["id"] for x in page2["contacts"]}
    assert call(c, s, ADMIN, "GET", "/api/contacts", params={"limit": 0}).status_code == 422
    assert call(c, s, ADMIN, "GET", "/api/contacts", params={"offset": -1}).status_code == 422


def test_contact_detail_by_id_email_or_external_id(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, s, c = web
    ada = s.contacts["Ada"]
    for ref in (str(ada), "ada@analytical.example", "CRM-001"):
        got = call(c, s, REP, "GET", f"/api/contacts/{ref}")
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["contact"]["id"] == ada and body["stage"] == "interested"
        assert {"evidence", "touches", "channels", "consent", "suppressions"} <= body.keys()
    assert call(c, s, REP, "GET", f"/api/contacts/{s.contacts['Alan']}").status_code == 404  # rep2's buyer
    assert call(c, s, REP, "GET", f"/api/contacts/{s.contacts['Margaret']}").status_code == 404  # nobody's
    assert call(c, s, ADMIN, "GET", "/api/contacts/nobody@nowhere.example").status_code == 404
    assert call(c, s, MARKETER, "GET", f"/api/contacts/{s.contacts['Alan']}").status_code == 200


def test_preferences(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    ada = s.contacts["Ada"]
    ok = call(c, s, REP, "POST", f"/api/contacts/{ada}/preferences", json={"interaction": "routine", "channel": "sms"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["stated"] == {"routine": "sms"}
    assert ok.json()["channels"]["routine"]["channel"] == "sms"
    bad = [({"interaction": "gossip", "channel": "sms"}, 422), ({"interaction": "routine", "channel": "fax"}, 422),
           ({"interaction": "nurture", "channel": "sms"}, 422), ({"interaction": "routine"}, 422),
           ({"interaction": "routine", "channel": "sms", "extra": 1}, 422)]
    for body, status in bad:
        assert call(c, s, REP, "POST", f"/api/contacts/{ada}/preferences", json=body).status_code == status, body
    other = call(c, s, REP, "POST", f"/api/contacts/{s.contacts['Alan']}/preferences",
                 json={"interaction": "routine", "channel": "sms"})
    assert other.status_code == 404
    with session_scope(e.db) as db:
        prefs = [(p.contact_id, p.interaction, p.channel, p.source) for p in db.execute(select(Preference)).scalars()]
    assert prefs == [(ada, "routine", "sms", "api")]


def evidence_count(e: Engine, kind: str) -> int:
    with session_scope(e.db) as db:
        return db.execute(select(func.count()).select_from(Evidence).where(col(Evidence.type) == kind)).scalar_one()


def test_evidence_is_recorded_once_per_id(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    body = {"contact": {"email": "Ada@Analytical.example"}, "type": "pricing.viewed",
            "occurred_at": datetime.now(UTC).isoformat(), "data": {"page": "/pricing"}, "id": "crm-42"}
    first = call(c, s, ADMIN, "POST", "/api/evidence", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["recorded"] is True and first.json()["contact_id"] == s.contacts["Ada"]
    # the second view within 14 days proves `evaluating`
    assert first.json()["stage_changes"] == [{"from": "interested", "to": "evaluating"}]
    again = call(c, s, ADMIN, "POST", "/api/evidence", json=body)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert evidence_count(e, "pricing.viewed") == 3  # two seeded, one from the API
    with session_scope(e.db) as db:
        # the id is the admin's: its key is scoped to its source, the token's user
        ev = db.execute(select(Evidence).where(col(Evidence.dedupe_key).like("api:user:%:crm-42"))).scalar_one()
        assert ev.source == "api" and ev.data == {"page": "/pricing"}
        assert db.get(Contact, s.contacts["Ada"]).stage == "evaluating"  # type: ignore[union-attr]


def test_evidence_finds_the_contact_by_any_key(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    for ref in ({"id": s.contacts["Grace"]}, {"external_id": "CRM-002"}, {"phone": "(212) 555-0102"}):
        got = call(c, s, REP, "POST", "/api/evidence", json={"contact": ref, "type": "webinar.attended"})
        assert got.status_code == 201, (ref, got.text)
        assert got.json()["contact_id"] == s.contacts["Grace"]
    assert evidence_count(e, "webinar.attended") == 3
    # a marketer may push evidence (a website, a CRM sync); a rep only for their own buyers
    assert call(c, s, MARKETER, "POST", "/api/evidence",
                json={"contact": {"email": "alan@bletchley.example"}, "type": "demo.watched"}).status_code == 201


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused before any database work
@pytest.mark.parametrize(("body", "status"), [
    ({"contact": {"email": "nobody@nowhere.example"}, "type": "pricing.viewed"}, 404),
    ({"contact": {"email": "alan@bletchley.example"}, "type": "pricing.viewed"}, 404),  # rep2's buyer
    ({"contact": {}, "type": "pricing.viewed"}, 422),
    ({"contact": {"email": "ada@analytical.example"}, "type": "Pricing Viewed"}, 422),
    ({"contact": {"email": "ada@analytical.example"}, "type": "pricing"}, 422),
    ({"contact": {"email": "ada@analytical.example"}}, 422),
    ({"contact": {"email": "ada@analytical.example"}, "type": "pricing.viewed", "data": [1]}, 422),
    ({"contact": {"email": "ada@analytical.example"}, "type": "pricing.viewed", "occurred_at": "yesterday"}, 422),
    ({"contact": {"email": "ada@analytical.example"}, "type": "pricing.viewed", "id": ""}, 422),
    ({"contact": {"email": "ada@analytical.example"}, "type": "pricing.viewed", "data": {"x": "y" * 70000}}, 422),
    ({"contact": {"phone": "not a phone"}, "type": "pricing.viewed"}, 422),
    ({"contact": {"email": "ada@analytical.example"}, "type": "pricing.viewed", "color": "red"}, 422),
])
def test_evidence_refuses_bad_input(web: tuple[Engine, Seed, TestClient], body: dict[str, Any], status: int) -> None:
    e, s, c = web
    got = call(c, s, REP, "POST", "/api/evidence", json=body)
    assert got.status_code == status, got.text
    assert "detail" in got.json()
    assert evidence_count(e, "pricing.viewed") == 2  # the seeded ones only


def test_evidence_from_the_future_is_refused(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, s, c = web
    later = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    got = call(c, s, ADMIN, "POST", "/api/evidence",
               json={"contact": {"id": s.contacts["Ada"]}, "type": "pricing.viewed", "occurred_at": later})
    assert got.status_code == 422 and "future" in got.json()["detail"]


def test_queue_list_and_get(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, s, c = web
    mine = call(c, s, REP, "GET", "/api/queue", params={"status": TouchStatus.PENDING}).json()
    assert sorted(t["id"] for t in mine) == sorted(s.pending[REP])
    assert set(mine[0]) == {"id", "status", "reason", "contact", "stage", "rule", "step", "interaction", "channel",
                            "channel_reason", "due_at", "sent_at", "provider_message_id", "from_email"}
    assert {t["from_email"] for t in mine} == {REP}  # a user's contacts hear from that user (SPEC section 11)
    assert [t["due_at"] for t in mine] == sorted(t["due_at"] for t in mine)
    everything = call(c, s, REP, "GET", "/api/queue").json()
    assert len(everything) >= len(mine)
    assert all(t["contact"]["id"] in {s.contacts[n] for n in ("Ada", "Grace", "Linus")} for t in everything)
    pending = {"status": TouchStatus.PENDING, "owner": REP2}
    assert len(call(c, s, ADMIN, "GET", "/api/queue", params=pending).json()) == 2
    assert len(call(c, s, ADMIN, "GET", "/api/queue", params={"limit": 3}).json()) == 3
    assert call(c, s, REP, "GET", "/api/queue", params={"status": "lost"}).status_code == 422
    one = s.pending[REP][0]
    assert call(c, s, REP, "GET", f"/api/queue/{one}").json()["id"] == one
    assert call(c, s, REP, "GET", f"/api/queue/{s.other_touch()}").status_code == 404
    assert call(c, s, REP, "GET", "/api/queue/999999").status_code == 404
    assert call(c, s, REP, "GET", "/api/queue/abc").status_code == 422


def test_approve_by_ids_and_all(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    first, second, *rest = s.pending[REP]
    got = call(c, s, REP, "POST", "/api/queue/approve", json={"ids": [first, second]})
    assert got.status_code == 200 and got.json() == {"approved": 2, "ids": sorted([first, second])}
    assert touch(e, first).status == TouchStatus.APPROVED
    assert call(c, s, REP, "POST", "/api/queue/approve", json={"ids": [first]}).status_code == 409  # done already
    # another rep's touch among them: 404, and nothing of the request happens
    mixed = call(c, s, REP, "POST", "/api/queue/approve", json={"ids": [rest[0], s.other_touch()]})
    assert mixed.status_code == 404
    assert touch(e, rest[0]).status == TouchStatus.PENDING and touch(e, s.other_touch()).status == TouchStatus.PENDING
    assert call(c, s, MARKETER, "POST", "/api/queue/approve", json={"ids": [rest[0]]}).status_code == 403
    assert call(c, s, REP, "POST", "/api/queue/approve", json={}).status_code == 422
    assert call(c, s, REP, "POST", "/api/queue/approve", json={"ids": [1], "all": True}).status_code == 422
    assert call(c, s, REP, "POST", "/api/queue/approve", json={"ids": ["x"]}).status_code == 422
    everything = call(c, s, REP, "POST", "/api/queue/approve", json={"all": True})
    assert everything.json() == {"approved": len(rest)}
    assert touch(e, s.other_touch()).status == TouchStatus.PENDING  # rep2's stays
    assert call(c, s, ADMIN, "POST", "/api/queue/approve", json={"all": True, "owner": REP2}).json() == {"approved": 2}
    assert touch(e, s.pending[None][0]).status == TouchStatus.PENDING  # nobody's, not in that scope


def test_reject_needs_a_reason(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    one = s.pending[REP][0]
    for body in ({"ids": [one]}, {"ids": [one], "reason": ""}, {"ids": [], "reason": "no"}):
        assert call(c, s, REP, "POST", "/api/queue/reject", json=body).status_code == 422, body
    assert call(c, s, REP, "POST", "/api/queue/reject", json={"ids": [one], "reason": "   "}).status_code == 422
    assert call(c, s, REP, "POST", "/api/queue/reject",
                json={"ids": [s.other_touch()], "reason": "not mine"}).status_code == 404
    got = call(c, s, REP, "POST", "/api/queue/reject", json={"ids": [one], "reason": "talked on the phone"})
    assert got.status_code == 200 and got.json() == {"rejected": 1, "ids": [one]}
    t = touch(e, one)
    assert (t.status, t.reason) == (TouchStatus.REJECTED, "talked on the phone")
    assert touch(e, s.other_touch()).status == TouchStatus.PENDING


def test_edit_then_approve(web: tuple[Engine, Seed, TestClient]) -> None:
    e, s, c = web
    check_in = next(i for i in s.pending[REP] if touch(e, i).step == "check-in" and touch(e, i).channel == "email")
    later = (datetime.now(UTC) + timedelta(hours=5)).replace(microsecond=0)
    got = call(c, s, REP, "POST", f"/api/queue/{check_in}/edit",
               json={"subject": "Quick question", "body": "Hi, shall we talk?", "due_at": later.isoformat()})
    assert got.status_code == 200, got.text
    assert got.json()["status"] == TouchStatus.PENDING
    t = touch(e, check_in)
    assert (t.subject_override, t.body_override) == ("Quick question", "Hi, shall we talk?")
    assert t.due_at.replace(tzinfo=UTC) == later
    assert call(c, s, REP, "POST", f"/api/queue/{check_in}/edit", json={"channel": "meeting"}).status_code == 422
    assert call(c, s, REP, "POST", f"/api/queue/{check_in}/edit", json={"due_at": "soon"}).status_code == 422
    assert call(c, s, REP, "POST", f"/api/queue/{s.other_touch()}/edit", json={"subject": "x"}).status_code == 404
    assert call(c, s, MARKETER, "POST", f"/api/queue/{check_in}/edit", json={"subject": "x"}).status_code == 403
    sms = call(c, s, REP, "POST", f"/api/queue/{check_in}/edit", json={"channel": "sms", "approve": True})
    assert sms.status_code == 200 and sms.json()["status"] == TouchStatus.APPROVED and sms.json()["channel"] == "sms"
    assert touch(e, check_in).channel_reason == "set by rep@example.com"
    assert call(c, s, REP, "POST", f"/api/queue/{check_in}/edit", json={"subject": "late"}).status_code == 409


def test_report(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, s, c = web
    got = call(c, s, MARKETER, "GET", "/api/report")
    assert got.status_code == 200
    body = got.json()
    assert list(body) == ["period", "funnel", "conversion", "velocity", "steps", "channels", "history", "queue"]
    assert [f["stage"] for f in body["funnel"]][:2] == ["aware", "interested"]
    assert sum(q["waiting"] for q in body["queue"]) == 8
    mine = call(c, s, REP, "GET", "/api/report").json()  # a rep's report covers their own contacts
    assert [q["owner"] for q in mine["queue"]] in ([], [REP])
    assert call(c, s, REP, "GET", "/api/report?owner=rep2@example.com").json() == mine
    bad = call(c, s, MARKETER, "GET", "/api/report?since=yesterday")
    assert bad.status_code == 422 and "since 'yesterday' is not a date" in bad.text
    # narrowed: the contacts at interested now; nobody has the attribute; a stage nobody named is an error
    there = call(c, s, MARKETER, "GET", "/api/report?stage=interested").json()
    assert [f["now"] for f in there["funnel"] if f["stage"] != "interested"] == [0] * (len(there["funnel"]) - 1)
    assert there["funnel"][1]["now"] > 0
    assert call(c, s, MARKETER, "GET", "/api/report?attr.industry=none").json()["funnel"][0]["reached"] == 0
    assert call(c, s, MARKETER, "GET", "/api/report?stage=nowhere").status_code == 422
    assert c.get("/api/report").status_code == 401


def test_openapi_documents_the_api(web: tuple[Engine, Seed, TestClient]) -> None:
    _e, _s, c = web
    assert c.get("/docs").status_code == 200
    spec = c.get("/openapi.json").json()
    assert {"/api/evidence", "/api/contacts", "/api/queue", "/api/report", "/api/queue/approve"} <= set(spec["paths"])
    assert not any(p.startswith(("/queue", "/contacts", "/login")) for p in spec["paths"])  # pages are not API
    assert any(v.get("scheme") == "bearer" for v in spec["components"]["securitySchemes"].values())
