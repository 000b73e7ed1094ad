"""A small hand-made history for the report's tests, whose every figure is worked out by hand in
tests/integration/test_report.py. Stages: aware 0, interested 1, evaluating 2, deciding 3, customer 4.

    A  rep1  created 10-20 10:00 aware; interested 11-02 10:00; evaluating 11-05 22:00
    B  rep1  created 11-01 00:00 aware; evaluating 11-03 23:59:59 (skips interested; the last second of a UTC day)
    C  rep1  created 11-02 12:00 aware; stays
    D  rep2  created 10-25 12:00 aware; interested 11-06 09:00; then evidence arrives that proves
             customer on 11-04 12:00 (a stage corrected after the fact: the later row is dated earlier)
    E  rep2  created 11-09 00:30 (still 11-08 in New York) aware; interested 11-10 23:00
    F  rep1  created 11-12, after the period: in no figure of 11-01..11-10
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from outreach.models import Contact, Evidence, StageChange, Touch, TouchStatus
from tests.support import at

SINCE, UNTIL = "2026-11-01", "2026-11-10"
REP1, REP2 = "rep1@example.com", "rep2@example.com"


def _touch(cid: int, rule: str, step: str, interaction: str, channel: str, status: str, when: datetime,
           reason: str | None = None) -> Touch:
    return Touch(contact_id=cid, dedupe_key=f"{cid}:{rule}:{step}", stage="aware", rule=rule, step=step,
                 interaction=interaction, content="aware/welcome", channel=channel, status=status, due_at=when,
                 sent_at=when if status == TouchStatus.SENT else None, reason=reason, created_at=when, updated_at=when)


def seed_report(s: Session) -> dict[str, int]:
    people = {"A": ("10-20 10:00", REP1), "B": ("11-01 00:00", REP1), "C": ("11-02 12:00", REP1),
              "D": ("10-25 12:00", REP2), "E": ("11-09 00:30", REP2), "F": ("11-12 08:00", REP1)}
    ids: dict[str, int] = {}
    for name, (created, owner) in people.items():
        c = Contact(email=f"{name.lower()}@buyer.example", first_name=name, owner=owner, stage="aware",
                    created_at=at(f"2026-{created}"), stage_entered_at=at(f"2026-{created}"),
                    timezone="America/New_York")
        s.add(c)
        s.flush()
        assert c.id is not None
        ids[name] = c.id
    moves = [("A", "aware", "interested", "11-02 10:00"), ("A", "interested", "evaluating", "11-05 22:00"),
             ("B", "aware", "evaluating", "11-03 23:59:59"), ("D", "aware", "interested", "11-06 09:00"),
             ("D", "interested", "customer", "11-04 12:00"), ("E", "aware", "interested", "11-10 23:00")]
    final: dict[str, str] = {}
    for name, frm, to, when in moves:  # in the order they were recorded
        s.add(StageChange(contact_id=ids[name], from_stage=frm, to_stage=to, at=at(f"2026-{when}")))
        s.flush()
        final[name] = to
    for name, stage in final.items():
        c = s.get(Contact, ids[name])
        assert c is not None
        c.stage = stage
        s.add(c)
    sent, a, c_, d, e = TouchStatus.SENT, ids["A"], ids["C"], ids["D"], ids["E"]
    touches = {
        "T1": _touch(a, "playbook:aware", "welcome", "nurture", "email", sent, at("2026-11-01 09:00")),
        "T2": _touch(c_, "playbook:aware", "welcome", "nurture", "email", sent, at("2026-11-02 13:00")),
        "T3": _touch(ids["B"], "playbook:aware", "case-study", "nurture", "email", sent, at("2026-10-30 09:00")),
        "T4": _touch(d, "playbook:interested", "check-in", "routine", "sms", sent, at("2026-11-06 10:00")),
        "T5": _touch(e, "playbook:interested", "check-in", "routine", "email", TouchStatus.EXPIRED,
                     at("2026-11-10 12:00"), reason="nobody approved it in time"),
        "T6": _touch(c_, "playbook:interested", "check-in", "routine", "email", TouchStatus.PENDING,
                     at("2026-11-09 12:00")),
        "T7": _touch(a, "trigger:pricing-follow-up", "pricing-follow-up", "routine", "email", sent,
                     at("2026-11-03 08:00")),
    }
    for t in touches.values():
        s.add(t)
    s.flush()
    for key, kind, when in [("T1", "email.opened", "11-01 10:00"), ("T1", "email.clicked", "11-01 10:05"),
                            ("T1", "email.replied", "11-01 11:00"), ("T2", "email.unsubscribed", "11-02 14:00"),
                            ("T4", "sms.replied", "11-06 10:30"), ("T1", "email.delivered", "11-01 09:01"),
                            ("T4", "sms.delivered", "11-06 10:01"), ("T7", "email.bounced", "11-03 08:01")]:
        t = touches[key]
        assert t.id is not None
        s.add(Evidence(contact_id=t.contact_id, type=kind, occurred_at=at(f"2026-{when}"), touch_id=t.id,
                       channel=t.channel, interaction=t.interaction, dedupe_key=f"{key}:{kind}"))
    s.flush()
    return ids
