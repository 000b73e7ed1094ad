"""A rep's call task in the web queue: the card shows the number as a tel: link and the buyer's time
now, there is no Approve, and recording the outcome with a note closes the task, puts the note on the
buyer's timeline and moves the stage. Another rep's task is not theirs to record."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from outreach import db
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence, Touch, TouchStatus
from outreach.project import Project
from tests.support import make_project
from tests.support.tasks import add_task_steps
from tests.support.web import client, seed, sign_in, touch

REP = "rep@example.com"


@pytest.fixture
def task_engine(tmp_path: Path) -> Iterator[Engine]:
    path = add_task_steps(make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}"))
    yield Engine(Project.open(path))
    db.dispose_all()


def _calls(e: Engine) -> dict[str, int]:
    with session_scope(e.db) as s:
        return {c.first_name or "": t.id or 0 for t, c in s.execute(
            select(Touch, Contact).join(Contact, col(Contact.id) == col(Touch.contact_id))
            .where(col(Touch.step) == "intro-call"))}


def test_recording_a_calls_outcome_on_the_card(task_engine: Engine) -> None:
    e = task_engine
    seed(e)
    c = client(e)
    csrf = sign_in(c, REP)
    calls = _calls(e)
    ada = calls["Ada"]
    page = c.get(f"/queue/{ada}").text
    card = page.split(f'id="touch-{ada}"')[1]
    assert 'href="tel:+14155550101"' in card and "their time now:" in card and "America/Los_Angeles" in card
    assert "which monthly report" in card  # the rep's script from content/interested/intro-call.call.j2
    assert f'action="/queue/{ada}/outcome"' in card and f'action="/queue/{ada}/approve"' not in card
    assert re.search(r'name="outcome" value="voicemail">Left a voicemail<', card)
    assert f'name="ids" value="{ada}"' not in c.get("/queue").text  # not among the touches to approve in bulk

    # approving a task is refused, with words for the rep
    refused = c.post(f"/queue/{ada}/approve", data={"csrf": csrf}, headers={"x-requested-with": "fetch"})
    assert refused.status_code == 409 and "record its outcome" in refused.json()["detail"]
    # another rep's buyer is not this rep's to call
    other = c.post(f"/queue/{calls['Alan']}/outcome", data={"csrf": csrf, "outcome": "connected"})
    assert other.status_code == 404 and touch(e, calls["Alan"]).status == TouchStatus.PENDING
    bad = c.post(f"/queue/{ada}/outcome", data={"csrf": csrf, "outcome": "sent"}, headers={"x-requested-with": "fetch"})
    assert bad.status_code == 422 and touch(e, ada).status == TouchStatus.PENDING

    got = c.post(f"/queue/{ada}/outcome", data={"csrf": csrf, "outcome": "connected",
                                               "note": "Wants the ROI model before Friday"})
    assert got.status_code == 200 and "Recorded touch" in got.text and "connected" in got.text
    assert "stage interested → evaluating" in got.text
    done = touch(e, ada)
    assert done.status == TouchStatus.SENT and done.reason == f"connected, recorded by {REP}"
    assert f'id="touch-{ada}"' not in got.text  # out of the queue
    with session_scope(e.db) as s:
        ev = s.execute(select(Evidence).where(col(Evidence.touch_id) == ada)).scalar_one()
        assert (ev.type, ev.data["note"], ev.data["by"]) == ("call.connected", "Wants the ROI model before Friday", REP)
        contact_id = ev.contact_id
    timeline = c.get(f"/contacts/{contact_id}").text
    assert "Wants the ROI model before Friday" in timeline
    again = c.post(f"/queue/{ada}/outcome", data={"csrf": csrf, "outcome": "voicemail"},
                   headers={"x-requested-with": "fetch"})
    assert again.status_code == 409
