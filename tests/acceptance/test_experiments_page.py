"""The /experiments page: the table and verdict in words for everyone signed in; the stop and promote
form for marketers and admins only, which updates the rules file like the CLI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert

from outreach import db
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact
from outreach.project import Project
from tests.support import at, make_project
from tests.support.web import client, seed, sign_in

STEP = "      content: aware/case-study\n"


def test_watch_then_stop_and_promote_on_the_page(tmp_path: Path) -> None:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'x.db'}", **{"policy.holdout": 0.05})
    rules = root / "rules" / "nurture.yaml"
    rules.write_text(rules.read_text().replace(STEP, "      content: [aware/case-study, aware/roi]\n"
                                               "      experiment: {id: case-vs-roi, metric: response}\n"))
    engine = Engine(Project.open(root))
    tokens = seed(engine).tokens
    with session_scope(engine.db) as s:
        s.execute(insert(Contact), [{"email": f"b{i}@example.org", "stage": "aware", "attributes": {},
                                     "stage_entered_at": at("2026-03-02 09:00")} for i in range(120)])
    engine.plan(at("2026-03-02 09:00") + timedelta(days=5))
    c = client(engine)
    [api] = c.get("/api/experiments", headers={"Authorization": f"Bearer {tokens['rep@example.com']}"}).json()
    assert (api["id"], api["verdict"], [v["content"] for v in api["variants"]]) == \
        ("case-vs-roi", "too_early", ["aware/case-study", "aware/roi"])

    sign_in(c, "rep@example.com")
    page = c.get("/experiments")
    assert page.status_code == 200
    assert "case-vs-roi" in page.text and "replied or accepted a meeting" in page.text
    assert "Not enough data yet" in page.text and "aware/roi" in page.text and "holdout (no touch)" in page.text
    assert "Stop experiment" not in page.text
    csrf = sign_in(c, "rep@example.com")
    assert c.post("/experiments/case-vs-roi/stop", data={"csrf": csrf, "promote": "aware/roi", "write": "on"},
                  follow_redirects=False).status_code == 403

    c = client(engine)
    csrf = sign_in(c, "marketer@example.com")
    assert "Stop experiment" in c.get("/experiments").text
    answer = c.post("/experiments/case-vs-roi/stop", data={"csrf": csrf, "promote": "aware/roi", "write": "on"})
    assert answer.status_code == 200
    assert "Stopped case-vs-roi: everyone now gets aware/roi" in answer.text and "was updated" in answer.text
    assert "content: aware/roi\n" in rules.read_text() and "experiment:" not in rules.read_text()
    assert "stopped: aware/roi promoted" in answer.text and "Stop experiment" not in answer.text
    db.dispose_all()
