"""/dashboards: a person builds their own dashboards (pick, order, filter, save), opens anyone's by
its link; a rep's covers their own contacts, whoever made it. On tests/support/report_data.py's history
(the funnel per rep worked out there: rep1's contacts A, B, C, F; rep2's D, E)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, Touch, TouchStatus
from outreach.users import add_user
from tests.support.report_data import REP1, REP2, _touch, seed_report
from tests.support.web import client, password_hash, sign_in

ADMIN = "admin@example.com"


@pytest.fixture
def web(sqlite_engine: Engine) -> Any:
    with session_scope(sqlite_engine.db) as s:
        seed_report(s)
        for email, role in [(ADMIN, "admin"), (REP1, "rep"), (REP2, "rep")]:
            user, _ = add_user(s, email, role, None)
            user.password_hash = password_hash()
            s.add(user)
    return client(sqlite_engine)


def section_ids(html: str) -> list[str]:
    return re.findall(r'<section class="panel widget[^"]*" id="w-([a-z]+)"', html)


def test_build_order_filter_share_and_change(web: Any) -> None:
    csrf = sign_in(web, ADMIN)
    assert web.get("/dashboards").status_code == 200
    made = web.post("/dashboards", data={
        "csrf": csrf, "name": "Rep 2 pipeline", "widget": ["queue", "funnel", "steps"],
        "order_queue": "1", "order_funnel": "2", "order_steps": "", "days": "3650",
        "contacts_of": REP2, "stage": "", "playbook": "", "attr": ""}, follow_redirects=False)
    assert made.status_code == 303 and "days: a dashboard covers 1 to" in web.get("/dashboards/new").text
    made = web.post("/dashboards", data={
        "csrf": csrf, "name": "Rep 2 pipeline", "widget": ["queue", "funnel", "steps"],
        "order_queue": "1", "order_funnel": "2", "order_steps": "", "days": "400",
        "contacts_of": REP2, "stage": "", "playbook": "", "attr": ""}, follow_redirects=False)
    link = made.headers["location"]
    assert re.fullmatch(r"/dashboards/\d+", link)
    page = web.get(link).text
    assert section_ids(page) == ["queue", "funnel", "steps"]  # in the order given; unnumbered last
    assert f"the figures of {REP2}'s contacts" in page
    assert f'<code id="share-link">http://testserver{link}</code>' in page
    funnel = page.split('id="w-funnel"')[1].split("</section>")[0]
    # rep2's contacts today: D customer, E interested
    assert [int(n) for n in re.findall(r'<td class="num">(\d+)</td><td class="num">\d+</td>', funnel)] == [
        0, 1, 0, 0, 1]
    # a rep opening the shared link sees the same widgets over their own contacts (A, B evaluating; C, F aware)
    other = client(web.app.state.engine)
    sign_in(other, REP1)
    theirs = other.get(link).text
    assert section_ids(theirs) == ["queue", "funnel", "steps"] and "the figures of your own contacts" in theirs
    funnel = theirs.split('id="w-funnel"')[1].split("</section>")[0]
    assert [int(n) for n in re.findall(r'<td class="num">(\d+)</td><td class="num">\d+</td>', funnel)] == [
        2, 0, 2, 0, 0]
    assert "Made by others" in other.get("/dashboards").text and 'id="edit-dashboard"' not in theirs
    # only its maker changes it
    token = sign_in(other, REP1)
    refused = other.post(link, data={"csrf": token, "name": "mine now", "widget": "funnel"}, follow_redirects=False)
    assert refused.status_code == 303 and "only they change it" in other.get(f"{link}/edit").text
    changed = web.post(link, data={"csrf": csrf, "name": "Retail", "widget": ["history"], "days": "30",
                                   "contacts_of": "", "attr": "industry=retail"}, follow_redirects=False)
    assert changed.headers["location"] == link
    page = web.get(link).text
    assert section_ids(page) == ["history"] and "only industry = retail" in page and "everyone's contacts" in page


def test_a_reps_dashboard_is_about_their_contacts(web: Any) -> None:
    csrf = sign_in(web, REP1)
    made = web.post("/dashboards", data={"csrf": csrf, "name": "Mine", "widget": "funnel", "contacts_of": REP2},
                    follow_redirects=False)
    page = web.get(made.headers["location"]).text
    assert "the figures of your own contacts" in page
    assert "<h1>Mine</h1>" in page and "Mine</a>" in web.get("/dashboards").text
    assert web.get("/dashboards/999").status_code == 404


def test_a_marketer_sets_a_target_and_the_dashboard_flags_it_missed(web: Any) -> None:
    with session_scope(web.app.state.engine.db) as s:
        user, _ = add_user(s, "m@example.com", "marketer", None)
        user.password_hash = password_hash()
    csrf = sign_in(web, "m@example.com")
    bad = web.post("/targets", data={"csrf": csrf, "metric": "conversion", "stage": "aware", "op": ">=",
                                     "threshold": "150%"})
    assert "between 0% and 100%" in bad.text  # the redirect back to /targets shows it
    # at most 0 expired unapproved a week: rep2's T5 expired on 2026-11-10, long before today: met now
    web.post("/targets", data={"csrf": csrf, "metric": "expired_per_rep_week", "op": "<=", "threshold": "0"})
    # at least 1 (per rep, per week) cannot be met by a week with none: missed
    page = web.post("/targets", data={"csrf": csrf, "metric": "expired_per_rep_week", "op": ">=",
                                      "threshold": "1"}).text
    assert "Target set: at least 1 touches expired" in page and page.count('<span class="badge no" id="missed-') == 1
    board = web.get("/dashboard").text
    assert '<section class="panel" id="targets">' in board and board.count('<span class="badge no">missed</span>') == 1
    assert board.count('<span class="badge ok">met</span>') == 1
    # a rep reads targets but does not set them
    token = sign_in(web, REP1)
    assert 'id="target-form"' not in web.get("/targets").text
    refused = web.post("/targets", data={"csrf": token, "metric": "expired_per_rep_week", "op": "<=", "threshold": "1"})
    assert "only admins and marketers set targets" in refused.text


def test_rules_show_each_steps_results_beside_it(web: Any) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with session_scope(web.app.state.engine.db) as s:
        for old in s.execute(select(Touch)).scalars():  # the seeded touches, far out of the last 30 days
            old.sent_at = old.sent_at - timedelta(days=400) if old.sent_at else None
            old.updated_at = old.updated_at - timedelta(days=400)
        a = s.execute(select(col(Contact.id)).where(col(Contact.email) == "a@buyer.example")).scalar_one()
        t = _touch(a, "playbook:aware", "welcome", "nurture", "email", TouchStatus.SENT, now - timedelta(days=1))
        t.dedupe_key = "recent-1"
        s.add(t)
        s.flush()
        s.add(Evidence(contact_id=a, type="email.replied", occurred_at=now - timedelta(hours=2), touch_id=t.id,
                       channel="email", interaction="nurture", dedupe_key="recent-reply"))
        late = _touch(a, "trigger:pricing-follow-up", "pricing-follow-up", "routine", "email", TouchStatus.EXPIRED,
                      now - timedelta(days=2), reason="nobody approved it in time")
        late.dedupe_key = "recent-2"
        s.add(late)
    sign_in(web, ADMIN)
    page = web.get("/rules").text
    welcome = page.split('id="results-step-aware-welcome"')[1].split("</div>")[0]
    assert "<strong>1</strong> sent · 1 answered · 0 moved on · 0 opted out · 0 expired" in welcome
    trigger = page.split('id="results-trigger-pricing-follow-up"')[1].split("</div>")[0]
    assert "<strong>0</strong> sent · 0 answered · 0 moved on · 0 opted out · 1 expired" in trigger
    # rep2 owns none of them: nothing for their contacts
    sign_in(web, REP2)
    theirs = web.get("/rules").text.split('id="results-step-aware-welcome"')[1].split("</div>")[0]
    assert "nothing sent or expired" in theirs
