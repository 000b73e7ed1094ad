"""A rep claims an unowned contact on its page (a POST with the session's CSRF token): the contact is
theirs, the timeline says who claimed it, and a second claim (or one without the token) changes nothing."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import select

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, OwnerChange
from tests.support.web import client, csrf_of, seed, sign_in


def _owner(engine: Engine, cid: int) -> str | None:
    with session_scope(engine.db) as s:
        return s.get_one(Contact, cid).owner


def test_a_rep_claims_an_unowned_contact(sqlite_engine: Engine) -> None:
    data = seed(sqlite_engine)
    margaret = data.contacts["Margaret"]  # nobody owns her
    c: TestClient = client(sqlite_engine)
    sign_in(c, "rep@example.com")
    page = c.get(f"/contacts/{margaret}")
    assert page.status_code == 200 and "Claim this contact" in page.text
    assert c.post(f"/contacts/{margaret}/claim", data={}, follow_redirects=False).status_code == 403  # no CSRF
    assert _owner(sqlite_engine, margaret) is None

    answer = c.post(f"/contacts/{margaret}/claim", data={"csrf": csrf_of(page.text)}, follow_redirects=True)
    assert answer.status_code == 200 and "This contact is yours now" in answer.text
    assert _owner(sqlite_engine, margaret) == "rep@example.com"
    assert "owner: rep@example.com" in answer.text and "claimed by rep@example.com" in answer.text
    assert "Claim this contact" not in answer.text

    other = client(sqlite_engine)  # another rep comes too late: she is not theirs to see any more
    sign_in(other, "rep2@example.com")
    assert other.get(f"/contacts/{margaret}").status_code == 404
    with session_scope(sqlite_engine.db) as s:
        assert [(o.to_owner, o.how) for o in s.exec(select(OwnerChange)).all()] == [("rep@example.com", "claimed")]
