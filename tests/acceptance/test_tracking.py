"""`/c/{token}` (an email link through the engine) and `/t.js` + `/t/v` (page views from the
marketer's site): the click recorded once, the visitor known by a signed expiring token in the site's
own storage, page views recorded for the pages `tracking.pages` names; forged and expired tokens
change nothing and never redirect anywhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlmodel import col

from outreach import db
from outreach.contacts import import_csv
from outreach.context import template_context
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, Touch
from outreach.project import Project
from tests.support import at, make_project
from tests.support.web import TestClient, client


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Engine, TestClient, int, int]]:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 't.db'}", **{
        "server.public_url": "https://engine.example"})
    engine = Engine(Project.open(root))
    people = tmp_path / "p.csv"
    people.write_text("email\nada@example.org\n")
    with session_scope(engine.db) as s:
        import_csv(s, people, region="US", first_stage="aware", now=at("2026-03-02 09:00"))
        touch = Touch(contact_id=1, dedupe_key="t", stage="aware", rule="playbook:aware", step="welcome",
                      interaction="nurture", content="aware/welcome", channel="email", due_at=at("2026-03-02 09:00"))
        s.add(touch)
        s.flush()
        tid = touch.id or 0
    yield engine, client(engine), 1, tid
    db.dispose_all()


def evidence(engine: Engine) -> list[tuple[str, str, dict[str, object]]]:
    with session_scope(engine.db) as s:
        rows = s.execute(select(Evidence).order_by(col(Evidence.id))).scalars()
        return [(e.type, e.source, dict(e.data)) for e in rows]


def test_a_click_is_recorded_once_and_the_visitor_is_known_on_the_site(
        site: tuple[Engine, TestClient, int, int]) -> None:
    engine, c, cid, tid = site
    with session_scope(engine.db) as s:
        contact, touch = s.get(Contact, cid), s.get(Touch, tid)
        assert contact is not None and touch is not None
        make_link = template_context(engine.settings, touch, contact)["links"]["click"]
        link = make_link("https://www.example.com/pricing?plan=pro")
    assert link.startswith("https://engine.example/c/")
    path = urlsplit(link).path
    first = c.get(path, follow_redirects=False)
    assert first.status_code == 302 and first.headers["referrer-policy"] == "no-referrer"
    target = urlsplit(first.headers["location"])
    assert (target.netloc, target.path) == ("www.example.com", "/pricing")
    query = parse_qs(target.query)
    assert query["plan"] == ["pro"] and query["oid"]
    assert c.get(path, follow_redirects=False).status_code == 302  # a second click (or a link scanner)
    assert evidence(engine) == [("email.clicked", "click", {"url": "https://www.example.com/pricing?plan=pro"})]

    js = c.get("/t.js")
    assert js.headers["content-type"].startswith("application/javascript")
    assert '"https://engine.example"' in js.text and js.headers["cross-origin-resource-policy"] == "cross-origin"
    oid = query["oid"][0]
    for page in ("/pricing", "/pricing", "/about"):  # a reload is no second visit; /about is not named
        got = c.post("/t/v", content=json.dumps({"t": oid, "p": page}), headers={"content-type": "text/plain"})
        assert got.status_code == 204
    assert [e[0] for e in evidence(engine)] == ["email.clicked", "pricing.viewed"]
    assert evidence(engine)[1][1:] == ("site", {"page": "/pricing"})


def signed_40_days_ago(secret: str, purpose: str, value: object, monkeypatch: pytest.MonkeyPatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(TimestampSigner, "get_timestamp", lambda _self: int(time.time()) - 40 * 86400)
        return str(URLSafeTimedSerializer(secret, salt=f"outreach.{purpose}").dumps(value))


def test_forged_and_expired_tokens_change_nothing(site: tuple[Engine, TestClient, int, int],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    engine, c, cid, tid = site
    secret = engine.settings.server.secret_key
    stale_visitor = signed_40_days_ago(secret, "visitor", cid, monkeypatch)
    forged_visitor = URLSafeTimedSerializer("another secret", salt="outreach.visitor").dumps(cid)
    for token in (stale_visitor, forged_visitor, "garbage"):
        got = c.post("/t/v", content=json.dumps({"t": token, "p": "/pricing"}))
        assert got.status_code == 204
    assert c.post("/t/v", content=b"not json").status_code == 204
    forged = URLSafeTimedSerializer("another secret", salt="outreach.click").dumps([tid, cid, "https://evil.example/"])
    old = signed_40_days_ago(secret, "click", [tid, cid, "https://www.example.com/"], monkeypatch)
    for token in (forged, "garbage"):
        assert c.get(f"/c/{token}", follow_redirects=False).status_code == 404
    # 90 days for a link by default: a 40-day-old one still works, a 40-day-old visitor token does not
    assert c.get(f"/c/{old}", follow_redirects=False).status_code == 302
    assert [e[0] for e in evidence(engine)] == ["email.clicked"]
