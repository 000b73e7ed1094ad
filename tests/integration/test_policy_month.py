"""A month of simulated time over a few hundred contacts in many time zones: every sent touch is
checked against its window, the holidays, the caps and the consent in force when it went out."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from outreach.config import parse_days, parse_hours
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.models import Contact, Touch
from outreach.project import Project
from outreach.testing import FixedClock, RecordingProvider
from tests.support import make_project

ZONES = ["America/Los_Angeles", "America/New_York", "America/Sao_Paulo", "Europe/London", "Europe/Berlin",
         "Asia/Kolkata", "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland", "Pacific/Honolulu", "UTC"]
HOLIDAYS = [{"date": "2026-03-16"}, {"date": "2026-03-10", "timezones": ["Asia/Tokyo"]}]

BUSY_RULES = """version: 1
stages:
  - id: aware
  - id: interested
    reached_by: [email.clicked, sms.replied]
interactions:
  routine:  {channels: [email, sms]}
  reminder: {channels: [sms, email]}
playbooks:
  aware:
""" + "".join(f"""    - id: s{i}
      after: {i // 2}d
      interaction: {"reminder" if i % 2 else "routine"}
      content: busy
""" for i in range(24)) + """  interested:
    - id: thanks
      after: 0d
      interaction: reminder
      content: busy
"""


def busy_project(tmp_path: Path) -> Engine:
    root = make_project(tmp_path / "month", f"sqlite:///{tmp_path / 'month.db'}", **{"policy.holidays": HOLIDAYS})
    for f in (root / "rules").glob("*.yaml"):
        f.unlink()
    (root / "rules" / "busy.yaml").write_text(BUSY_RULES)
    (root / "content" / "busy.email.j2").write_text("{% block subject %}Hi{% endblock %}{% block text %}Hello"
                                                   "{% endblock %}")
    (root / "content" / "busy.sms.j2").write_text("Hello. Reply STOP to opt out.")
    return Engine(Project.open(root))


@pytest.mark.slow
def test_a_month_never_breaks_window_holiday_cap_or_consent(tmp_path: Path) -> None:
    provider = RecordingProvider()
    engine = Engine(busy_project(tmp_path).project, providers=provider.as_providers())
    rnd = random.Random(7)
    clock = FixedClock("2026-03-01 00:00")
    start = clock()
    rows = ["email,phone,timezone,consent_sms,external_id"]
    for i in range(300):
        rows.append(f"c{i}@example.org,+1415555{i:04d},{rnd.choice(ZONES)},{rnd.choice(['yes', 'no', ''])},X{i}")
    (tmp_path / "c.csv").write_text("\n".join(rows) + "\n")
    with session_scope(engine.db) as s:
        import_csv(s, tmp_path / "c.csv", region="US", first_stage="aware", now=start)
        people = {c.id: c for c in s.exec(select(Contact)).all()}
    opted_out_at: dict[tuple[int, str], object] = {}
    while (now := clock()) < start + timedelta(days=30):
        if now.hour % 3 == 0:  # the planner queues; the hourly dispatch is what the month checks
            engine.plan(now)
        engine.dispatch(now)
        if now.hour == 12:  # some buyers opt out of sms, some unsubscribe from email, some click
            for cid in rnd.sample(sorted(people), 6):
                kind = rnd.choice(["sms.opted_out", "email.unsubscribed", "email.clicked"])
                engine.record([EvidenceIn(kind, now, "test", contact_id=cid)], now=now)
                if kind != "email.clicked":
                    opted_out_at.setdefault((cid, kind.split(".")[0]), now)
        clock.advance(timedelta(hours=1))

    with session_scope(engine.db) as s:
        sent = s.exec(select(Touch).where(Touch.status == "sent").order_by(Touch.sent_at)).all()
    assert len(sent) > 1000  # the month was busy enough to test something
    assert sorted(m.touch_id for m in provider.sent) == sorted(t.id for t in sent)  # each handed over once
    policy = engine.settings.policy
    per_contact: dict[int, list[Touch]] = defaultdict(list)
    local_days: dict[bool, set[str]] = {True: set(), False: set()}  # Tokyo or not -> local days with sends
    for t in sent:
        c = people[t.contact_id]
        tz = ZoneInfo(c.timezone or "UTC")
        local = t.sent_at.astimezone(tz)  # type: ignore[union-attr]
        window = policy.send_windows[t.channel]  # type: ignore[index]
        start_min, end_min = parse_hours(window.hours)
        assert local.weekday() in parse_days(window.days), f"touch {t.id} sent on a closed day"
        assert start_min <= local.hour * 60 + local.minute < end_min, f"touch {t.id} sent at {local}"
        assert str(local.date()) != "2026-03-16", f"touch {t.id} sent on a holiday"
        assert not (c.timezone == "Asia/Tokyo" and str(local.date()) == "2026-03-10")
        local_days[c.timezone == "Asia/Tokyo"].add(str(local.date()))
        if t.channel == "sms":
            assert c.consent_sms is True, f"touch {t.id}: sms without opt-in"
        blocked = opted_out_at.get((t.contact_id, "email" if t.channel != "sms" else "sms"))
        # the same tick dispatches before the opt-out arrives, so equal times are fine
        assert blocked is None or t.sent_at <= blocked, f"touch {t.id} sent after an opt-out"  # type: ignore[operator]
        per_contact[t.contact_id].append(t)
    # the holiday checks had something to catch: the caps make Monday to Wednesday the sending days,
    # the Tokyo holiday is a Tuesday; Tokyo buyers were sent to the days around it, others on it
    assert {"2026-03-09", "2026-03-11"} <= local_days[True], sorted(local_days[True])
    assert "2026-03-10" in local_days[False], sorted(local_days[False])
    for cid, ts in per_contact.items():
        tz = ZoneInfo(people[cid].timezone or "UTC")
        days: dict[object, int] = defaultdict(int)
        for t in ts:
            days[t.sent_at.astimezone(tz).date()] += 1  # type: ignore[union-attr]
            week = [u for u in ts if t.sent_at - timedelta(days=7) < u.sent_at <= t.sent_at]  # type: ignore[operator]
            assert len(week) <= 3, f"contact {cid}: {len(week)} touches in 7 days"
            assert sum(1 for u in week if u.channel == "sms") <= 2, f"contact {cid}: sms week cap"
        assert max(days.values()) <= 1, f"contact {cid}: day cap broken"
    # nothing is lost: every touch ends sent, waiting, suppressed, cancelled or expired; none stuck sending
    with session_scope(engine.db) as s:
        stuck = s.exec(select(Touch).where(Touch.status.in_(["sending", "failed", "uncertain"]))).all()  # type: ignore[attr-defined]
    assert stuck == []
