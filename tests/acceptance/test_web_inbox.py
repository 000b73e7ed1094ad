"""The inbox and the contact page's moves over HTTP: a reply waits for a person, the answer goes out
through the dispatcher and is on the timeline; handled, snoozed, out of office (with the buyer's
automation paused until the return date); a one-off message, pause and resume, handing a contact over."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update
from sqlmodel import col

from outreach.db import session_scope
from outreach.engine import Engine
from outreach.evidence import EvidenceIn
from outreach.learning.learner import ChannelStat
from outreach.models import Contact, Message, ReplyState, Touch, TouchStatus
from tests.support.web import Seed, TestClient, client, seed, sign_in, touch

REP = "rep@example.com"


@pytest.fixture
def web(sqlite_engine: Engine) -> tuple[Engine, Seed, TestClient, str]:
    s = seed(sqlite_engine)
    c = client(sqlite_engine)
    return sqlite_engine, s, c, sign_in(c, REP)


def in_window(zone: str) -> datetime:
    """Next weekday at 11:00 in the buyer's zone: inside every send window of the example project."""
    day = datetime.now(ZoneInfo(zone)) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day.replace(hour=11, minute=0, second=0, microsecond=0).astimezone(UTC)


def sent_touch(e: Engine, touch_id: int, at: datetime) -> None:
    with session_scope(e.db) as s:
        s.execute(update(Touch).where(col(Touch.id) == touch_id).values(status=TouchStatus.APPROVED, due_at=at))
    e.dispatch(at)
    assert touch(e, touch_id).status == TouchStatus.SENT


def reply(e: Engine, contact_id: int, text: str, *, touch_id: int | None = None, kind: str = "email.replied",
          at: datetime | None = None, **data: object) -> int:
    got = e.record([EvidenceIn(kind, at or datetime.now(UTC), "inbound", contact_id=contact_id, touch_id=touch_id,
                               data={"text": text, "subject": "Checking in", **data})])
    return got.recorded[0].id or 0


def test_a_reply_is_answered_from_the_inbox_and_the_answer_goes_out(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    grace = s.contacts["Grace"]
    first = next(t for t in s.pending[REP] if touch(e, t).contact_id == grace)
    at = in_window("America/New_York")
    sent_touch(e, first, at - timedelta(hours=1))
    e.record([EvidenceIn("email.delivered", at - timedelta(minutes=59), "sendgrid", touch_id=first)])
    rid = reply(e, grace, "Could we talk next week? Tuesday afternoon works for me.", touch_id=first,
                full_text="Could we talk next week?\n\n> On Monday you wrote:\n> Hi Grace")

    page = c.get("/inbox").text
    assert f'id="reply-{rid}"' in page and "Tuesday afternoon works for me." in page
    assert f"touch #{first}" in page and "On Monday you wrote" not in page  # quoted history stays out
    assert 'class="badge stage">interested' in page

    got = c.post(f"/inbox/{rid}/answer", data={"csrf": csrf, "channel": "email", "subject": "Re: Checking in",
                                                "body": "Tuesday 3pm it is."})
    assert "Your answer to grace@cobol.example goes out as touch #" in got.text
    assert f'id="reply-{rid}"' not in got.text  # answered: no longer waiting
    with session_scope(e.db) as db:
        state = db.execute(select(ReplyState).where(col(ReplyState.evidence_id) == rid)).scalar_one()
        answer = db.get(Touch, state.touch_id)
        assert answer is not None and state.status == "answered" and state.actor == REP
        assert (answer.status, answer.rule, answer.evidence_id) == (TouchStatus.APPROVED, "one-off", rid)
    assert e.dispatch(at + timedelta(minutes=5)).sent == 1  # the dispatcher sends it, as any touch
    with session_scope(e.db) as db:
        msg = db.execute(select(Message).where(col(Message.touch_id) == state.touch_id)).scalar_one()
        assert (msg.to, msg.subject, msg.text) == ("grace@cobol.example", "Re: Checking in", "Tuesday 3pm it is.")
        # a person's own answer is no channel choice of the engine's: the learner does not count it
        assert db.execute(select(ChannelStat).where(col(ChannelStat.interaction) == "one-off")).first() is None

    page = c.get(f"/contacts/{grace}").text
    assert f"#{state.touch_id} answer by email" in page and f"sent by {REP}" in page
    assert "Tuesday afternoon works for me." in page  # what the buyer said, on the timeline
    timeline = page.split('class="timeline"')[1].split("</ol>")[0]
    assert "<strong>email.delivered</strong>" not in timeline  # plumbing folded into its touch
    assert "email.delivered" in timeline  # ... as the touch's own badge


def test_handled_snoozed_and_out_of_office(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    ada, linus = s.contacts["Ada"], s.contacts["Linus"]
    one = reply(e, ada, "Not now, thanks.")
    two = reply(e, linus, "Send me the deck.")
    c.post(f"/inbox/{one}/handled", data={"csrf": csrf})
    got = c.post(f"/inbox/{two}/snooze", data={"csrf": csrf, "delay": "1d"})
    assert "Snoozed the reply until" in got.text
    assert f'id="reply-{one}"' not in got.text and f'id="reply-{two}"' not in got.text
    with session_scope(e.db) as db:  # the snooze runs out
        db.execute(update(ReplyState).where(col(ReplyState.evidence_id) == two).values(
            until=datetime.now(UTC) - timedelta(minutes=1)))
    assert f'id="reply-{two}"' in c.get("/inbox").text

    sent = datetime.now(UTC)
    back = (sent + timedelta(days=9)).date()
    ooo = reply(e, ada, f"I am out of the office and back on {back.strftime('%B')} {back.day}. For urgent matters "
                "call Bob.", kind="email.auto_replied", at=sent)
    page = c.get("/inbox").text
    section = page.split('id="out-of-office"')[1]
    assert f'id="away-{ooo}"' in section and back.strftime("%a %d %b %Y") in section and "paused until" in section
    assert f'id="reply-{ooo}"' not in page  # not among the replies that wait for an answer
    with session_scope(e.db) as db:
        contact = db.get(Contact, ada)
        assert contact is not None and contact.paused_until is not None
        assert contact.paused_until.replace(tzinfo=UTC).astimezone(ZoneInfo("America/Los_Angeles")).date() == back
    # an approved automated touch waits for the buyer's return; the rep's own message does not
    auto = next(t for t in s.pending[REP] if touch(e, t).contact_id == ada)
    c.post(f"/queue/{auto}/approve", data={"csrf": csrf})
    c.post(f"/contacts/{ada}/message", data={"csrf": csrf, "channel": "email", "subject": "When you're back",
                                             "body": "Enjoy the break."})
    e.dispatch(in_window("America/Los_Angeles"))
    assert touch(e, auto).status == TouchStatus.APPROVED and "automation paused" in (touch(e, auto).reason or "")
    with session_scope(e.db) as db:
        mine = db.execute(select(Touch).where(col(Touch.rule) == "one-off", col(Touch.contact_id) == ada)).scalar_one()
        assert mine.status == TouchStatus.SENT
    page = c.get(f"/contacts/{ada}").text
    assert 'id="paused"' in page and "out of office until" in page
    assert "Automated touches resumed (1 held touch go out" in c.post(f"/contacts/{ada}/resume",
                                                                      data={"csrf": csrf}).text
    assert touch(e, auto).reason is None and 'id="paused"' not in c.get(f"/contacts/{ada}").text


def test_pause_one_off_limits_and_hand_over(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, csrf = web
    grace = s.contacts["Grace"]
    assert "write a message first" in c.post(f"/contacts/{grace}/message",
                                             data={"csrf": csrf, "channel": "email", "subject": "x"}).text
    assert "needs a subject" in c.post(f"/contacts/{grace}/message",
                                       data={"csrf": csrf, "channel": "email", "body": "hi"}).text
    assert "goes out as touch #" in c.post(f"/contacts/{grace}/message",
                                           data={"csrf": csrf, "channel": "sms", "body": "Running late, 5 min"}).text
    got = c.post(f"/contacts/{grace}/pause", data={"csrf": csrf})
    assert "paused until you resume them" in got.text and "paused by rep@example.com" in got.text
    assert "no user account" in c.post(f"/contacts/{grace}/owner", data={"csrf": csrf,
                                                                         "owner": "nobody@example.com"}).text
    assert "is a marketer" in c.post(f"/contacts/{grace}/owner", data={"csrf": csrf,
                                                                       "owner": "marketer@example.com"}).text
    got = c.post(f"/contacts/{grace}/owner", data={"csrf": csrf, "owner": "rep2@example.com"}, follow_redirects=False)
    assert got.headers["location"] == "/contacts"  # handed over: no longer theirs to see
    assert c.get(f"/contacts/{grace}").status_code == 404
    other = client(e)
    sign_in(other, "marketer@example.com")
    page = other.get(f"/contacts/{grace}").text
    assert "owner rep2@example.com" in page and re.search(r'id="reassign"', page)
    assert 'id="write"' not in page  # marketers do not send


def test_rsvp_is_one_event_with_its_comment(web: tuple[Engine, Seed, TestClient, str]) -> None:
    e, s, c, _csrf = web
    ada = s.contacts["Ada"]
    e.record([EvidenceIn("meeting.declined", datetime.now(UTC), "inbound", contact_id=ada,
                         data={"partstat": "DECLINED", "comment": "Thursday is better for me", "uid": "x"}),
              EvidenceIn("pricing.viewed", datetime.now(UTC), "api", contact_id=ada,
                         data={"page": "/pricing/enterprise"})])
    page = c.get(f"/contacts/{ada}").text
    assert "declined the invite" in page and "Thursday is better for me" in page
    assert "/pricing/enterprise" in page  # the evidence's own data
    assert 'class="card reply"' not in c.get("/inbox").text  # an RSVP is not also a reply
