"""/dashboard over HTTP on tests/support/report_data.py's history: the widgets with their tables, the
filters in the query string, a rep held to their own contacts, and each widget's CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.users import add_user
from tests.support.report_data import REP1, REP2, SINCE, UNTIL, seed_report
from tests.support.web import client, password_hash, sign_in

PERIOD = {"since": SINCE, "until": UNTIL}


@pytest.fixture
def web(sqlite_engine: Engine) -> Any:
    with session_scope(sqlite_engine.db) as s:
        seed_report(s)
        for email, role in [("admin@example.com", "admin"), (REP1, "rep"), (REP2, "rep")]:
            user, _ = add_user(s, email, role, None)
            user.password_hash = password_hash()
            s.add(user)
    return client(sqlite_engine)


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_manager_sees_everyone_or_picks_a_rep(web: Any) -> None:
    sign_in(web, "admin@example.com")
    page = web.get("/dashboard", params=PERIOD)
    assert page.status_code == 200
    html = page.text
    for title in ("Buying funnel", "Conversion", "Stages over time", "Days in each stage",
                  "Answered per interaction and channel", "Results per step", "Approval queue",
                  "Deliverability per week"):
        assert f">{title}</h2>" in html
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in html and 'data-chart="history"' in html
    assert f'<option value="{REP1}"' in html and "Everyone's contacts." in html
    assert "too few to read" in html and "from the stage changes known now" in html  # no snapshot kept yet
    funnel = rows(web.get("/dashboard.csv", params={"widget": "funnel", **PERIOD}).text)
    assert [int(r["reached"]) for r in funnel] == [5, 4, 3, 1, 1]
    one = rows(web.get("/dashboard.csv", params={"widget": "funnel", "owner": REP2, **PERIOD}).text)
    assert [int(r["now"]) for r in one] == [0, 1, 0, 0, 1]
    weeks = rows(web.get("/dashboard.csv", params={"widget": "deliverability", **PERIOD}).text)
    assert [(w["week"], w["channel"], w["delivered"]) for w in weeks] == [
        ("2026-10-26", "email", "1"), ("2026-11-02", "email", "0"), ("2026-11-02", "sms", "1")]
    conv = web.get("/dashboard.csv", params={"widget": "conversion", **PERIOD})
    assert conv.headers["content-disposition"] == f'attachment; filename="conversion-{SINCE}-{UNTIL}.csv"'
    assert rows(conv.text)[0] == {"from": "aware", "to": "interested", "entered": "3", "advanced": "2",
                                  "rate": "0.6667", "low": "0.2077", "high": "0.9385", "too_few_to_read": "yes"}
    # the page's CSV links carry its filters
    picked = web.get("/dashboard", params={"owner": REP2, **PERIOD}).text
    assert f"/dashboard.csv?widget=steps&amp;since={SINCE}&amp;until={UNTIL}&amp;owner=rep2%40example.com" in picked


def test_a_rep_sees_their_own_contacts_only(web: Any) -> None:
    sign_in(web, REP1)
    html = web.get("/dashboard", params={**PERIOD, "owner": REP2}).text
    assert "The figures of your own contacts." in html and '<select name="owner">' not in html
    queue = rows(web.get("/dashboard.csv", params={"widget": "queue", "owner": REP2, **PERIOD}).text)
    assert queue == [{"owner": REP1, "waiting": "1", "expired": "0"}]


def test_bad_filters_say_what_is_wrong(web: Any) -> None:
    sign_in(web, "admin@example.com")
    bad = web.get("/dashboard", params={"since": "2026-02-30"})
    assert bad.status_code == 422 and "is not a date" in bad.text
    assert web.get("/dashboard", params={"owner": "nobody@example.com"}).status_code == 422
    assert web.get("/dashboard.csv", params={"widget": "nothing"}).status_code == 404


def test_stage_playbook_and_attribute_narrow_every_widget(web: Any) -> None:
    sign_in(web, "admin@example.com")
    page = web.get("/dashboard", params={**PERIOD, "playbook": "playbook:interested"}).text
    assert '<option value="playbook:interested" selected>' in page and "Only touched by playbook:interested." in page
    assert "&amp;playbook=playbook%3Ainterested" in page  # the CSV links carry it
    steps = rows(web.get("/dashboard.csv", params={"widget": "steps", "playbook": "interested", **PERIOD}).text)
    assert [(r["rule"], r["sent"], r["expired"]) for r in steps] == [("playbook:interested", "1", "1")]
    there = rows(web.get("/dashboard.csv", params={"widget": "funnel", "stage": "evaluating", **PERIOD}).text)
    assert [int(r["now"]) for r in there] == [0, 0, 2, 0, 0]
    # nobody has the attribute: an empty funnel, from the query string's attr.NAME and the form's attr=NAME=value
    for q in ({"attr.industry": "retail"}, {"attr": "industry=retail"}):
        none = rows(web.get("/dashboard.csv", params={"widget": "funnel", **q, **PERIOD}).text)
        assert [int(r["reached"]) for r in none] == [0, 0, 0, 0, 0]
    assert web.get("/dashboard", params={"stage": "nowhere"}).status_code == 422
    assert web.get("/dashboard", params={"attr": "industry"}).status_code == 422
