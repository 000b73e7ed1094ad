"""Targets on metrics (performance, not analytics: are we hitting what we set?). An admin or a
marketer sets one, say "at least 25% of the contacts entering interested move on within 30 days" or
"at most 10 touches expire unapproved per rep per week"; each week it is met, missed, or has too few
cases to read; a missed one is flagged on the dashboard and in a daily email to its owner."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlmodel import Session, col

from channels.base import OutgoingMessage, Provider
from outreach.analytics import activity, funnel, paths
from outreach.analytics.model import Filters
from outreach.config import Settings
from outreach.db import rows_changed
from outreach.errors import InvalidInput, NotFound
from outreach.kinds import Channel
from outreach.models import Target, User
from outreach.ruleset import Ruleset

log = logging.getLogger(__name__)
METRICS = {"conversion": "conversion from a stage to the next",
           "expired_per_rep_week": "touches expired unapproved per rep per week"}
OPS = {">=": "at least", "<=": "at most"}
WEEKS = 8  # how far back the page shows each target


@dataclass(frozen=True)
class Point:
    """A target's metric over the period ending on `end`: its value (None: nothing to measure), the
    cases behind it, and met (None: too few cases to read)."""

    end: date
    value: float | None
    cases: int
    met: bool | None
    who: str | None = None  # expired_per_rep_week: the rep with the most


def describe(t: Target, rules: Ruleset) -> str:
    """The target in words."""
    whose = f" ({t.contacts_of}'s contacts)" if t.contacts_of else ""
    if t.metric == "conversion":
        stage = t.stage or ""
        ids = rules.stage_ids
        nxt = ids[ids.index(stage) + 1] if stage in ids and ids.index(stage) + 1 < len(ids) else "the next stage"
        return (f"{OPS[t.op]} {t.threshold * 100:g}% of the contacts entering {stage} move on to {nxt} "
                f"within {t.within_days} days{whose}")
    return f"{OPS[t.op]} {t.threshold:g} touches expired unapproved per rep per week{whose}"


def add(session: Session, rules: Ruleset, user: User, metric: str, op: str, threshold: str, stage: str | None = None,
        within_days: int = 30, contacts_of: str | None = None) -> Target:
    """A new target of `user`'s; bad input raises InvalidInput naming the field."""
    if user.role not in ("admin", "marketer"):
        raise InvalidInput("only admins and marketers set targets")
    if metric not in METRICS:
        raise InvalidInput(f"metric: '{metric}' is none of {', '.join(METRICS)}")
    if op not in OPS:
        raise InvalidInput(f"comparison: '{op}' is neither >= nor <=")
    text = threshold.strip().rstrip("%")
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"target: '{threshold}' is not a number") from None
    if metric == "conversion":
        if stage not in rules.stage_ids[:-1]:
            raise InvalidInput(f"stage: '{stage or ''}' is not a stage a contact can move on from "
                               f"({', '.join(rules.stage_ids[:-1])})")
        value = value / 100 if threshold.strip().endswith("%") or value > 1 else value
        if not 0 <= value <= 1:
            raise InvalidInput(f"target: a conversion is between 0% and 100%, not {threshold}")
        if not 1 <= within_days <= 366:
            raise InvalidInput(f"within: 1 to 366 days, not {within_days}")
    elif value < 0:
        raise InvalidInput(f"target: a count is not negative ({threshold})")
    t = Target(owner=user.email, metric=metric, op=op, threshold=value,
               stage=stage if metric == "conversion" else None, within_days=within_days,
               contacts_of=(contacts_of or "").strip().lower() or None)
    session.add(t)
    session.flush()
    return t


def remove(session: Session, user: User, target_id: int) -> None:
    t = session.get(Target, target_id)
    if t is None:
        raise NotFound(f"no target {target_id}")
    if t.owner != user.email and user.role != "admin":
        raise InvalidInput(f"target {target_id} is {t.owner}'s: only they or an admin remove it")
    session.delete(t)


def _met(t: Target, value: float) -> bool:
    return value >= t.threshold if t.op == ">=" else value <= t.threshold


def point(session: Session, rules: Ruleset, t: Target, end: date, min_cases: int, owner: str | None = None) -> Point:
    """The target's metric over the period that ends on the UTC day `end`. `owner`: a rep looking at it
    sees their own contacts."""
    who = owner or t.contacts_of
    if t.metric == "conversion":
        f = Filters(end - timedelta(days=t.within_days - 1), end, who)
        conv, _ = paths.moves(session, rules.stage_ids, f) if paths.refreshed(session, rules.stage_ids) else \
            funnel.moves(session, rules.stage_ids, f, funnel.timeline(rules.stage_ids, who, active_since=f.start))
        row = next((c for c in conv if c["from"] == t.stage), None)
        if row is None or not row["entered"]:
            return Point(end, None, 0, None)
        enough = row["entered"] >= min_cases
        return Point(end, row["rate"], row["entered"], _met(t, row["rate"]) if enough else None)
    rows = activity.queue(session, Filters(end - timedelta(days=6), end, who))
    worst = max(rows, key=lambda r: r["expired"], default=None)
    value = float(worst["expired"]) if worst else 0.0
    return Point(end, value, int(sum(r["expired"] for r in rows)), _met(t, value),
                 worst["owner"] if worst and worst["expired"] else None)


def history(session: Session, rules: Ruleset, t: Target, today: date, min_cases: int, owner: str | None = None,
            weeks: int = WEEKS) -> list[Point]:
    """The target each week, oldest first: the periods end today, a week before, and so on."""
    return [point(session, rules, t, today - timedelta(days=7 * k), min_cases, owner) for k in reversed(range(weeks))]


def listed(session: Session) -> list[Target]:
    return list(session.execute(select(Target).order_by(col(Target.id))).scalars())


def send_target_digests(s: Session, settings: Settings, rules: Ruleset, provider: Provider, now: datetime) -> int:
    """Once per UTC day, each target owner gets an email listing their targets missed as of today (none
    missed: no email). The day is claimed in the database first, so two workers never both send it."""
    today = now.astimezone(UTC).date()
    disabled = select(col(User.email)).where(col(User.disabled_at).is_not(None))
    owners = sorted(set(s.execute(select(col(Target.owner)).where(
        or_(col(Target.notified_on).is_(None), col(Target.notified_on) != today),
        col(Target.owner).not_in(disabled))).scalars()))  # a disabled user gets no email
    sent = 0
    for owner in owners:
        claimed = s.execute(update(Target).where(col(Target.owner) == owner, or_(
            col(Target.notified_on).is_(None), col(Target.notified_on) != today)).values(notified_on=today))
        s.commit()  # the claim holds before anything is sent
        if rows_changed(claimed) < 1:
            continue
        missed = [(t, p) for t in s.execute(select(Target).where(col(Target.owner) == owner)).scalars()
                  if (p := point(s, rules, t, today, settings.report.min_cases)).met is False]
        if not missed:
            continue
        base = settings.server.public_url.rstrip("/")
        lines = [f"{len(missed)} of your targets missed as of {today} (UTC):", ""]
        for t, p in missed:
            shown = f"{(p.value or 0) * 100:.1f}% of {p.cases}" if t.metric == "conversion" else \
                f"{p.value or 0:g}" + (f" ({p.who})" if p.who else "")
            lines.append(f"  - {describe(t, rules)}: now {shown}")
        lines += ["", f"  {base}/targets"]
        try:
            provider.send(OutgoingMessage(touch_id=0, channel=Channel.EMAIL, to_email=owner, to_name=None,
                                          from_email=settings.sender.email, from_name=settings.sender.name,
                                          subject=f"Targets missed: {len(missed)}", text="\n".join(lines) + "\n",
                                          categories=["digest"]))
            sent += 1
        except Exception:  # a provider failure costs this email, never the job
            log.exception("the target digest for %s could not be sent", owner)
    return sent
