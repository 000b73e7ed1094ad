"""The rep's morning digest on SQLite and PostgreSQL: once a day after 8:00 in the rep's zone, what
goes stale today and the replies that wait; nothing before 8:00, nothing twice, nothing for an empty day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select, update
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Channel, Contact, Touch, TouchStatus, User
from outreach.project import Project
from outreach.testing import RecordingProvider
from tests.support.web import seed


def test_each_rep_gets_one_digest_at_their_eight(project_path: Path) -> None:
    mail = RecordingProvider()
    e = Engine(Project.open(project_path), providers={Channel.EMAIL: mail, Channel.SMS: mail, Channel.MEETING: mail})
    data = seed(e)
    with session_scope(e.db) as s:
        s.execute(update(User).where(col(User.email) == "rep@example.com").values(timezone="Asia/Tokyo", name="Rita"))
    e.record([EvidenceIn("email.replied", datetime.now(UTC), "inbound", contact_id=data.contacts["Grace"],
                         data={"text": "Tuesday works"})])
    tokyo = ZoneInfo("Asia/Tokyo")
    today = datetime.now(tokyo).replace(hour=7, minute=30, second=0, microsecond=0)
    e.send_digests(today.astimezone(UTC))  # 7:30 in Tokyo: too early for rita (rep2, in UTC, may get theirs)
    assert all(m.to_email != "rep@example.com" for m in mail.sent)
    day_end = (today.replace(hour=0, minute=0) + timedelta(days=1)).astimezone(UTC)
    with session_scope(e.db) as s:
        stale = s.execute(select(func.count()).select_from(Touch)
                          .join(Contact, col(Contact.id) == col(Touch.contact_id))
                          .where(col(Contact.owner) == "rep@example.com", col(Touch.status) == TouchStatus.PENDING,
                                 or_(col(Touch.approve_by) <= day_end, col(Touch.expires_at) <= day_end))).scalar_one()
    sent = e.send_digests((today + timedelta(hours=1)).astimezone(UTC))  # 8:30 in Tokyo
    mine = [m for m in mail.sent if m.to_email == "rep@example.com"]
    assert len(mine) == 1 and sent >= 1
    assert mine[0].subject == f"Today: {stale} to approve, 1 reply"
    assert "Good morning, Rita." in mine[0].text and "Tuesday works" in mine[0].text and "/inbox" in mine[0].text
    e.send_digests((today + timedelta(hours=3)).astimezone(UTC))
    assert len([m for m in mail.sent if m.to_email == "rep@example.com"]) == 1  # once a day
