"""A failure in channel learning never costs the evidence that triggered it, and a provider or API
client never gets a 500 for it (issue 12, finding 2)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.models import Contact, Evidence
from tests.support.web import bearer, client, seed


def test_evidence_is_recorded_when_learning_fails(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    s, c = seed(engine), client(engine)

    def broken(*_args: object) -> None:
        raise ValueError("math domain error")

    monkeypatch.setattr("outreach.engine.count_evidence", broken)
    body = {"contact": {"email": "ada@analytical.example"}, "type": "pricing.viewed",
            "occurred_at": datetime.now(UTC).isoformat(), "id": "learning-broken"}
    got = c.post("/api/evidence", json=body, headers=bearer(s, "admin@example.com"))
    assert got.status_code == 201, got.text
    assert got.json()["stage_changes"] == [{"from": "interested", "to": "evaluating"}]
    with session_scope(engine.db) as db:
        assert db.execute(select(func.count()).select_from(Evidence).where(
            col(Evidence.dedupe_key).endswith(":learning-broken"))).scalar_one() == 1
        assert db.get(Contact, s.contacts["Ada"]).stage == "evaluating"  # type: ignore[union-attr]
