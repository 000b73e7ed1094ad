"""The rep's morning digest: once a day, at 8:00 in the rep's own zone, an email with the touches of
their buyers that go stale today unless approved and the replies that wait for them. Sent by the
housekeeping job; the day is claimed in the database first, so two workers never both send it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import or_, select, update
from sqlmodel import Session, col

from channels.base import OutgoingMessage, Provider
from outreach.config import Settings
from outreach.db import rows_changed
from outreach.inbox import Reply, waiting
from outreach.kinds import Channel
from outreach.models import Contact, Touch, TouchStatus, User

log = logging.getLogger(__name__)
HOUR = 8  # local time the digest goes out


@dataclass
class Digest:
    rep: User
    expiring: list[tuple[Touch, Contact]]
    replies: list[Reply]

    @property
    def empty(self) -> bool:
        return not self.expiring and not self.replies


def _zone(user: User, settings: Settings) -> ZoneInfo:
    try:
        return ZoneInfo(user.timezone or settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(settings.timezone)


def build(session: Session, rep: User, now: datetime, day_end: datetime) -> Digest:
    expiring = [(t, c) for t, c in session.execute(
        select(Touch, Contact).join(Contact, col(Contact.id) == col(Touch.contact_id))
        .where(col(Contact.owner) == rep.email, col(Touch.status) == TouchStatus.PENDING,
               or_(col(Touch.approve_by) <= day_end, col(Touch.expires_at) <= day_end))
        .order_by(col(Touch.due_at)).limit(50))]
    return Digest(rep, expiring, waiting(session, now, owner=rep.email, limit=20))


def render(d: Digest, tz: ZoneInfo, public_url: str) -> tuple[str, str]:
    """The subject and text of a digest, times in the rep's zone."""
    base = public_url.rstrip("/")
    lines = [f"Good morning{', ' + d.rep.name if d.rep.name else ''}.", ""]
    if d.expiring:
        lines.append(f"{len(d.expiring)} touch{'es' if len(d.expiring) != 1 else ''} go stale today unless you "
                     f"approve {'them' if len(d.expiring) != 1 else 'it'}:")
        for t, c in d.expiring:
            ends = [x for x in (t.approve_by, t.expires_at) if x is not None]
            deadline = min(x.replace(tzinfo=UTC) if x.tzinfo is None else x for x in ends)
            lines.append(f"  - {c.email or c.phone}: {t.step} by {t.channel or 'no channel'}, "
                         f"until {deadline.astimezone(tz):%H:%M}  {base}/queue/{t.id}")
        lines.append("")
    if d.replies:
        lines.append(f"{len(d.replies)} repl{'ies' if len(d.replies) != 1 else 'y'} wait for you:")
        for r in d.replies:
            lines.append(f"  - {r.contact.email or r.contact.phone} ({r.at.astimezone(tz):%a %H:%M}): "
                         f"{r.text[:120]}")
        lines.append(f"  {base}/inbox")
    subject = f"Today: {len(d.expiring)} to approve, {len(d.replies)} repl{'ies' if len(d.replies) != 1 else 'y'}"
    return subject, "\n".join(lines).rstrip() + "\n"


def send_digests(s: Session, settings: Settings, provider: Provider, now: datetime) -> int:
    """Send each enabled rep whose local time is past 8:00 today's digest, once; returns how many went."""
    sent = 0
    for rep in s.execute(select(User).where(col(User.role) == "rep", col(User.disabled_at).is_(None))).scalars():
        tz = _zone(rep, settings)
        local = now.astimezone(tz)
        today: date = local.date()
        if local.hour < HOUR or rep.digest_on == today:
            continue
        claimed = s.execute(update(User).where(col(User.id) == rep.id, or_(
            col(User.digest_on).is_(None), col(User.digest_on) != today)).values(digest_on=today))
        s.commit()  # the claim holds before anything is sent
        if rows_changed(claimed) != 1:
            continue
        day_end = datetime.combine(today + timedelta(days=1), time(0), tz).astimezone(UTC)
        digest = build(s, rep, now, day_end)
        if digest.empty:
            continue
        subject, text = render(digest, tz, settings.server.public_url)
        try:
            provider.send(OutgoingMessage(touch_id=0, channel=Channel.EMAIL, to_email=rep.email, to_name=rep.name,
                                          from_email=settings.sender.email, from_name=settings.sender.name,
                                          subject=subject, text=text, categories=["digest"]))
            sent += 1
        except Exception:  # a provider failure costs this digest, never the job
            log.exception("the digest for %s could not be sent", rep.email)
    return sent
