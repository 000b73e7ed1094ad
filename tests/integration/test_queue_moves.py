"""The approval queue through outreach.queue's own functions on SQLite: what a rep lists, which moves a
touch takes and what they write, edits and snoozes against the touch's deadline, and the refusals a
rep reads (the CLI and the web app print these texts as they are)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, SQLModel

from outreach import queue
from outreach.db import dispose_all, make_engine, session_scope
from outreach.errors import InvalidInput, InvalidTransition, NotFound
from outreach.models import Contact, Touch, TouchStatus
from outreach.queue import (
    SNOOZED,
    approve_all,
    edit,
    get_touch,
    latest_due,
    list_touches,
    pending_by_owner,
    touch_json,
    transition,
)
from tests.support import at

NOW = at("2026-03-02 10:00")


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'q.db'}")
    SQLModel.metadata.create_all(engine)
    yield engine
    dispose_all()


def _contact(s: Session, email: str, owner: str | None = None, phone: str | None = None) -> int:
    c = Contact(email=email, owner=owner, phone=phone, stage="aware")
    s.add(c)
    s.flush()
    assert c.id is not None
    return c.id


def _touch(s: Session, contact_id: int, status: str = TouchStatus.PENDING, *, due: datetime = NOW,
           channel: str | None = "email", reason: str | None = None, **extra: Any) -> int:
    t = Touch(contact_id=contact_id, dedupe_key=f"k{contact_id}-{due.isoformat()}-{status}-{channel}-{reason}",
              stage="aware", rule="playbook:aware", step="intro", interaction="intro", content="intro",
              channel=channel, status=status, reason=reason, due_at=due, **extra)
    s.add(t)
    s.flush()
    assert t.id is not None
    return t.id


def _status(db: Engine, touch_id: int) -> tuple[str, str | None]:
    with session_scope(db) as s:
        t = s.get_one(Touch, touch_id)
        return t.status, t.reason


# --- the moves: what each writes ----------------------------------------------------------------------

def test_approve_clears_the_reason_and_stamps_the_time(db: Engine) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), reason="snoozed by rep@x.example")
    later = NOW + timedelta(minutes=5)
    with session_scope(db) as s:
        (moved,) = transition(s, "approve", [tid], later)
        assert (moved.status, moved.reason) == ("approved", None)  # the caller sees what was written
    with session_scope(db) as s:
        t = s.get_one(Touch, tid)
        assert (t.status, t.reason, t.updated_at.replace(tzinfo=None)) == ("approved", None, later.replace(tzinfo=None))


def test_a_touch_named_twice_is_moved_once(db: Engine) -> None:
    """`queue approve 5 5`: one approval, not a refusal saying the touch changed meanwhile."""
    with session_scope(db) as s:
        cid = _contact(s, "a@x.example")
        first, second = _touch(s, cid), _touch(s, cid, due=NOW + timedelta(hours=1))
    with session_scope(db) as s:
        moved = transition(s, "approve", [first, second, first], NOW)
        assert [t.id for t in moved] == [first, second]
    assert _status(db, first) == _status(db, second) == ("approved", None)


@pytest.mark.parametrize("given, kept", [("  not this buyer  ", "not this buyer"), ("wrong tone", "wrong tone")])
def test_reject_keeps_the_reps_reason_trimmed(db: Engine, given: str, kept: str) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), TouchStatus.APPROVED)
    with session_scope(db) as s:
        transition(s, "reject", [tid], NOW, reason=given)
    assert _status(db, tid) == ("rejected", kept)


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_without_a_reason_is_refused_and_changes_nothing(db: Engine, reason: str | None) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"))
    with pytest.raises(InvalidInput, match=r"^a rejection needs a reason$"), session_scope(db) as s:
        transition(s, "reject", [tid], NOW, reason=reason)
    assert _status(db, tid) == ("pending_approval", None)


def test_resend_makes_an_uncertain_touch_due_now(db: Engine) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), TouchStatus.UNCERTAIN, due=NOW - timedelta(days=1),
                     reason="the provider may or may not have accepted it")
    with session_scope(db) as s:
        transition(s, "resend", [tid], NOW)
    with session_scope(db) as s:
        t = s.get_one(Touch, tid)
        assert (t.status, t.reason) == ("approved", "resent by a person after an uncertain send")
        assert t.due_at.replace(tzinfo=None) == NOW.replace(tzinfo=None)  # the dispatcher takes it at once


@pytest.mark.parametrize("reason, kept", [(None, "dropped by a person after an uncertain send"),
                                          ("the buyer got it", "the buyer got it")])
def test_drop_cancels_an_uncertain_touch_with_a_reason(db: Engine, reason: str | None, kept: str) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), TouchStatus.UNCERTAIN)
    with session_scope(db) as s:
        transition(s, "drop", [tid], NOW, reason=reason)
    assert _status(db, tid) == ("cancelled", kept)


@pytest.mark.parametrize("move", ["approve", "reject", "resend", "drop"])
@pytest.mark.parametrize("status", ["sending", "sent", "failed", "expired", "suppressed"])
def test_a_touch_past_the_queue_takes_no_move(db: Engine, move: str, status: str) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), status)
    with pytest.raises(InvalidTransition, match=f"cannot {move}: {tid} is {status}"), session_scope(db) as s:
        transition(s, move, [tid], NOW, reason="because")
    assert _status(db, tid) == (status, None)


def test_one_refused_touch_refuses_the_batch_and_names_only_it(db: Engine) -> None:
    with session_scope(db) as s:
        cid = _contact(s, "a@x.example")
        ok = _touch(s, cid, due=NOW)
        sent = _touch(s, cid, TouchStatus.SENT, due=NOW + timedelta(hours=1))
        gone = _touch(s, cid, TouchStatus.REJECTED, due=NOW + timedelta(hours=2))
    with pytest.raises(InvalidTransition) as refused, session_scope(db) as s:
        transition(s, "approve", [ok, sent], NOW)
    assert str(refused.value) == f"cannot approve: {sent} is sent"
    with pytest.raises(InvalidTransition) as refused, session_scope(db) as s:
        transition(s, "approve", [sent, ok, gone], NOW)
    assert str(refused.value) == f"cannot approve: {sent} is sent; {gone} is rejected"  # each named, in order
    assert _status(db, ok) == ("pending_approval", None)


@pytest.mark.parametrize("move, status", [("approve", TouchStatus.PENDING), ("resend", TouchStatus.UNCERTAIN)])
@pytest.mark.parametrize("channel", ["call", "social"])
def test_a_task_is_never_handed_to_the_dispatcher(db: Engine, move: str, status: str, channel: str) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example", phone="+12125550100"), status, channel=channel)
    with pytest.raises(InvalidTransition, match=f"{tid} is a {channel} for a person to make"), session_scope(db) as s:
        transition(s, move, [tid], NOW)
    assert _status(db, tid)[0] == status


@pytest.mark.parametrize("move, status", [("reject", TouchStatus.PENDING), ("drop", TouchStatus.UNCERTAIN)])
def test_a_task_may_still_be_rejected_or_dropped(db: Engine, move: str, status: str) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), status, channel="call")
    with session_scope(db) as s:
        transition(s, move, [tid], NOW, reason="not needed")
    assert _status(db, tid)[0] in ("rejected", "cancelled")


def test_a_touch_a_worker_claimed_meanwhile_is_left_alone(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"))
    load = queue._load

    def read_then_lose_the_race(session: Session, ids: Sequence[int], owner: str | None) -> list[Touch]:
        touches = load(session, ids, owner)  # the rep's session read it pending ...
        with db.begin() as other:  # ... and a worker claims it before the rep's approval lands
            other.execute(text("UPDATE touch SET status = 'sending' WHERE id = :id"), {"id": tid})
        return touches

    monkeypatch.setattr(queue, "_load", read_then_lose_the_race)
    with pytest.raises(InvalidTransition, match="changed status meanwhile; list the queue again"), \
            session_scope(db) as s:
        transition(s, "approve", [tid], NOW)
    assert _status(db, tid) == ("sending", None)


def test_moves_on_touches_that_do_not_exist_or_another_rep_owns(db: Engine) -> None:
    with session_scope(db) as s:
        mine = _touch(s, _contact(s, "a@x.example", owner="ann@vendor.example"))
        theirs = _touch(s, _contact(s, "b@x.example", owner="bob@vendor.example"))
    with pytest.raises(NotFound, match=r"^no touch 998, 999$"), session_scope(db) as s:
        transition(s, "approve", [998, mine, 999], NOW)
    with pytest.raises(NotFound, match=rf"^no touch {theirs} owned by Ann@Vendor.example$"), session_scope(db) as s:
        transition(s, "approve", [mine, theirs], NOW, owner="Ann@Vendor.example")
    with session_scope(db) as s:  # the owner is matched whatever its case
        transition(s, "approve", [mine], NOW, owner="ANN@vendor.example")
    assert _status(db, mine)[0] == "approved"
    assert _status(db, theirs)[0] == "pending_approval"


# --- approve --all -------------------------------------------------------------------------------------

def test_approve_all_takes_every_pending_message_but_no_task(db: Engine) -> None:
    with session_scope(db) as s:
        ann = _contact(s, "a@x.example", owner="ann@vendor.example")
        bob = _contact(s, "b@x.example", owner="bob@vendor.example")
        email = _touch(s, ann, reason="snoozed by ann@vendor.example")
        unchosen = _touch(s, ann, channel=None, due=NOW + timedelta(hours=1))  # channel decided at send time
        call = _touch(s, ann, channel="call", due=NOW + timedelta(hours=2))
        social = _touch(s, ann, channel="social", due=NOW + timedelta(hours=3))
        rejected = _touch(s, ann, TouchStatus.REJECTED, reason="no")
        bobs = _touch(s, bob)
    with session_scope(db) as s:
        assert approve_all(s, NOW, owner="ANN@vendor.example") == 2
    assert [_status(db, t) for t in (email, unchosen, call, social, rejected, bobs)] == [
        ("approved", None), ("approved", None), ("pending_approval", None), ("pending_approval", None),
        ("rejected", "no"), ("pending_approval", None)]
    with session_scope(db) as s:  # when it was approved: the queue's audit of who did what when
        assert s.get_one(Touch, email).updated_at.replace(tzinfo=None) == NOW.replace(tzinfo=None)
    with session_scope(db) as s:
        assert approve_all(s, NOW) == 1  # nobody named: everybody's, and only what is still pending
    assert _status(db, bobs)[0] == "approved"


def test_pending_by_owner_counts_what_waits_per_rep(db: Engine) -> None:
    with session_scope(db) as s:
        ann = _contact(s, "a@x.example", owner="ann@vendor.example")
        nobody = _contact(s, "n@x.example")
        _touch(s, ann)
        _touch(s, ann, due=NOW + timedelta(hours=1))
        _touch(s, ann, TouchStatus.APPROVED)
        _touch(s, nobody)
    with session_scope(db) as s:
        assert pending_by_owner(s) == {"ann@vendor.example": 2, None: 1}


# --- listing -------------------------------------------------------------------------------------------

def test_list_filters_and_orders_oldest_due_first(db: Engine) -> None:
    with session_scope(db) as s:
        ann = _contact(s, "a@x.example", owner="ann@vendor.example")
        bob = _contact(s, "b@x.example", owner="bob@vendor.example")
        late = _touch(s, ann, due=NOW + timedelta(hours=2))
        early = _touch(s, ann, due=NOW)
        tie = _touch(s, bob, due=NOW)  # same due time: the older id first
        held = _touch(s, bob, TouchStatus.APPROVED, reason="waiting: send window opens 09:00")
        odd = _touch(s, bob, TouchStatus.APPROVED, reason="waitingX", due=NOW + timedelta(hours=3))
    with session_scope(db) as s:
        def ids(**kw: object) -> list[int | None]:
            return [t.id for t, _ in list_touches(s, **kw)]  # type: ignore[arg-type]

        assert ids() == [early, tie, held, late, odd]
        assert ids(status="pending_approval") == [early, tie, late]
        assert ids(owner="ANN@vendor.example") == [early, late]
        assert ids(contact_id=bob) == [tie, held, odd]
        assert ids(limit=2) == [early, tie]
        assert ids(reason_prefix="waiting:") == [held]
        assert ids(reason_prefix="waiting_") == []  # the prefix is text, not a LIKE pattern
        assert ids(contact_id=0) == []  # 0 is a contact id like any other, not "any contact"
        (t, c), = list_touches(s, status="approved", reason_prefix="waiting:")
        assert (t.id, c.email) == (held, "b@x.example")


def test_an_unknown_status_is_refused_with_the_choices(db: Engine) -> None:
    with pytest.raises(InvalidInput, match=r"unknown status 'pending' \(one of: pending_approval, approved, "
                                           r"sending, sent, .*uncertain\)"), session_scope(db) as s:
        list_touches(s, status="pending")


def test_snoozed_touches_leave_the_queue_until_due(db: Engine) -> None:
    with session_scope(db) as s:
        cid = _contact(s, "a@x.example")
        plain = _touch(s, cid)
        asleep = _touch(s, cid, due=NOW + timedelta(days=1), reason=SNOOZED + "ann")
        woken = _touch(s, cid, due=NOW - timedelta(hours=1), reason=SNOOZED + "ann")
        held = _touch(s, cid, due=NOW + timedelta(days=2), reason="waiting: cap reached")
        ahead = _touch(s, cid, due=NOW + timedelta(hours=3))  # due later, never snoozed: in the queue
        ends_now = _touch(s, cid, due=NOW, reason=SNOOZED + "bob")  # a snooze ends at its time
    with session_scope(db) as s:
        awake = [t.id for t, _ in list_touches(s, awake_at=NOW)]
        sleeping = [t.id for t, _ in list_touches(s, snoozed_at=NOW)]
    assert awake == [woken, plain, ends_now, ahead, held]
    assert sleeping == [asleep]


def test_get_touch_gives_the_touch_and_its_contact(db: Engine) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example", owner="ann@vendor.example"))
    with session_scope(db) as s:
        t, c = get_touch(s, tid, owner="ann@vendor.example")
        assert (t.id, c.email) == (tid, "a@x.example")
        with pytest.raises(NotFound, match=f"no touch {tid} owned by bob@vendor.example"):
            get_touch(s, tid, owner="bob@vendor.example")
        with pytest.raises(NotFound, match="no touch 404"):
            get_touch(s, 404)


# --- the JSON a script reads ---------------------------------------------------------------------------

def test_touch_json_shapes_per_channel(db: Engine) -> None:
    with session_scope(db) as s:
        cid = _contact(s, "a@x.example", phone="+12125550100")
        email = _touch(s, cid, TouchStatus.SENT, sent_at=NOW, provider_message_id="m1")
        call = _touch(s, cid, channel="call", due=NOW + timedelta(hours=1))
        meeting = _touch(s, cid, channel="meeting", due=NOW + timedelta(hours=2), meeting_start=NOW,
                         meeting_end=NOW + timedelta(minutes=30))
    with session_scope(db) as s:
        by_id = {t.id: touch_json(t, c, "rep@vendor.example") for t, c in list_touches(s)}
    assert by_id[email]["sent_at"] == "2026-03-02T10:00:00Z" or by_id[email]["sent_at"] == "2026-03-02T10:00:00"
    assert by_id[email]["due_at"].startswith("2026-03-02T10:00:00")
    assert {k: by_id[email][k] for k in ("id", "status", "provider_message_id", "from_email", "contact")} == {
        "id": email, "status": "sent", "provider_message_id": "m1", "from_email": "rep@vendor.example",
        "contact": {"id": cid, "email": "a@x.example", "external_id": None}}
    assert "task" not in by_id[email] and "meeting_start" not in by_id[email]
    assert by_id[call]["task"] == {"phone": "+12125550100"} and "meeting_start" not in by_id[call]
    assert by_id[call]["sent_at"] is None
    assert by_id[meeting]["meeting_start"].startswith("2026-03-02T10:00:00")
    assert by_id[meeting]["meeting_end"].startswith("2026-03-02T10:30:00")
    assert "task" not in by_id[meeting]


SPEC_TOUCH = {"id", "status", "reason", "contact", "stage", "rule", "step", "interaction", "channel",
              "channel_reason", "due_at", "sent_at", "provider_message_id"}


def test_touch_json_has_the_specs_fields_with_their_values() -> None:
    """The SPEC's touch shape (section "JSON shapes"), plus who it goes out from; scripts read these."""
    t = Touch(id=7, contact_id=1, dedupe_key="k", stage="aware", rule="playbook:aware", step="welcome",
              interaction="nurture", content="c", channel="email", channel_reason="default order",
              status="failed", reason="bounced", due_at=NOW, provider_message_id="m7")
    out = touch_json(t, Contact(id=1, email="a@x.example", external_id="crm-1"), "rep@vendor.example")
    assert set(out) == SPEC_TOUCH | {"from_email"}
    assert {k: v for k, v in out.items() if k not in ("due_at", "sent_at")} == {
        "id": 7, "status": "failed", "reason": "bounced",
        "contact": {"id": 1, "email": "a@x.example", "external_id": "crm-1"},
        "stage": "aware", "rule": "playbook:aware", "step": "welcome", "interaction": "nurture",
        "channel": "email", "channel_reason": "default order", "provider_message_id": "m7",
        "from_email": "rep@vendor.example"}


def test_times_in_json_are_utc_with_a_z() -> None:
    t = Touch(contact_id=1, dedupe_key="k", stage="s", rule="r", step="s", interaction="i", content="c",
              channel="email", due_at=NOW, sent_at=NOW + timedelta(seconds=1))
    out = touch_json(t, Contact(id=1, email="a@x.example"))
    assert (out["due_at"], out["sent_at"]) == ("2026-03-02T10:00:00Z", "2026-03-02T10:00:01Z")


# --- edits and snoozes ---------------------------------------------------------------------------------

@pytest.mark.parametrize("approve_by, expires_at, latest", [
    (None, None, None),
    (NOW + timedelta(days=2), None, NOW + timedelta(days=2)),
    (None, NOW + timedelta(days=3), NOW + timedelta(days=3)),
    (NOW + timedelta(days=2), NOW + timedelta(days=3), NOW + timedelta(days=2)),  # the earlier of the two
    (NOW + timedelta(days=4), NOW + timedelta(days=3), NOW + timedelta(days=3)),
    ((NOW + timedelta(days=2)).replace(tzinfo=None), None, NOW + timedelta(days=2)),  # SQLite's naive UTC
    # a deadline given with another offset keeps its instant (10:00 at +02:00 is 08:00 UTC)
    ((NOW + timedelta(days=2)).astimezone(timezone(timedelta(hours=2))), None, NOW + timedelta(days=2)),
])
def test_latest_due_is_the_nearer_deadline(approve_by: datetime | None, expires_at: datetime | None,
                                           latest: datetime | None) -> None:
    t = Touch(contact_id=1, dedupe_key="k", stage="s", rule="r", step="s", interaction="i", content="c",
              due_at=NOW, approve_by=approve_by, expires_at=expires_at)
    assert latest_due(t) == latest


def test_a_send_time_may_reach_the_deadline_but_not_pass_it(db: Engine) -> None:
    deadline = NOW + timedelta(days=2)
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), approve_by=deadline)
    with pytest.raises(InvalidInput, match=f"touch {tid} can wait until 2026-03-04T10:00:00Z at the latest"), \
            session_scope(db) as s:
        edit(s, tid, NOW, due_at=deadline + timedelta(seconds=1))
    with session_scope(db) as s:
        edit(s, tid, NOW, due_at=deadline)
    with session_scope(db) as s:
        assert s.get_one(Touch, tid).due_at.replace(tzinfo=None) == deadline.replace(tzinfo=None)


def test_only_a_pending_touch_is_edited(db: Engine) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), TouchStatus.APPROVED)
    with pytest.raises(InvalidTransition, match=f"touch {tid} is approved: only pending touches can be edited"), \
            session_scope(db) as s:
        edit(s, tid, NOW, subject="new")


def test_an_edit_changes_the_words_and_the_channel(db: Engine) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), subject_override="old", body_override="old body")
    later = NOW + timedelta(minutes=1)
    with session_scope(db) as s:
        edit(s, tid, later, subject="Hello", body="", channel="sms", allowed_channels=("email", "sms"),
             actor="ann@vendor.example")
    with session_scope(db) as s:
        t = s.get_one(Touch, tid)
        assert (t.subject_override, t.body_override) == ("Hello", None)  # an empty body: back to the template
        assert (t.channel, t.channel_reason, t.channel_fixed) == ("sms", "set by ann@vendor.example", True)
        assert t.updated_at.replace(tzinfo=None) == later.replace(tzinfo=None)
        assert t.reason is None  # an edit is no snooze: the touch stays in the queue
    with session_scope(db) as s:
        edit(s, tid, later, body="Dear Ada")
    with session_scope(db) as s:
        assert s.get_one(Touch, tid).body_override == "Dear Ada"
        edit(s, tid, later, body="")  # and back to the template
    with session_scope(db) as s:
        edit(s, tid, later, subject="", channel="email", allowed_channels=("email", "sms"))
    with session_scope(db) as s:
        t = s.get_one(Touch, tid)
        assert (t.subject_override, t.body_override, t.channel_reason) == (None, None, "set by a person")


def test_an_edit_to_the_same_channel_keeps_how_it_was_chosen(db: Engine) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), channel_reason="best rate", channel_fixed=False)
    with session_scope(db) as s:
        edit(s, tid, NOW, channel="email", allowed_channels=())  # the same channel needs no permission
    with session_scope(db) as s:
        t = s.get_one(Touch, tid)
        assert (t.channel, t.channel_reason, t.channel_fixed) == ("email", "best rate", False)


def test_a_channel_the_step_does_not_allow_is_refused(db: Engine) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"))
    with pytest.raises(InvalidInput, match=r"channel sms is not allowed for intro \(allowed: email, meeting\)"), \
            session_scope(db) as s:
        edit(s, tid, NOW, channel="sms", allowed_channels=("email", "meeting"))
    with session_scope(db) as s:
        assert s.get_one(Touch, tid).channel == "email"


@pytest.mark.parametrize("change, keeps_slot", [
    ({}, True),
    ({"subject": "Agenda"}, True),
    ({"due_at": NOW}, True),  # the same time: the invite stands
    ({"due_at": NOW + timedelta(hours=1)}, False),
    ({"channel": "email"}, False),
])
@pytest.mark.parametrize("sequence, next_sequence", [(0, 1), (2, 3)])
def test_a_meeting_that_moves_gives_up_its_slot(db: Engine, change: dict[str, object], keeps_slot: bool,
                                                 sequence: int, next_sequence: int) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), channel="meeting", meeting_start=NOW + timedelta(days=1),
                     meeting_end=NOW + timedelta(days=1, minutes=30), meeting_sequence=sequence)
    with session_scope(db) as s:
        edit(s, tid, NOW, allowed_channels=("email", "meeting"), **change)  # type: ignore[arg-type]
    with session_scope(db) as s:
        t = s.get_one(Touch, tid)
        if keeps_slot:
            assert t.meeting_start is not None and t.meeting_end is not None and t.meeting_sequence == sequence
        else:  # the engine books a new slot; the invite keeps its UID with a higher SEQUENCE
            assert (t.meeting_start, t.meeting_end, t.meeting_sequence) == (None, None, next_sequence)


@pytest.mark.parametrize("reason, actor, after", [
    (None, "ann@vendor.example", SNOOZED + "ann@vendor.example"),
    (None, None, SNOOZED + "a person"),
    (SNOOZED + "bob@vendor.example", "ann@vendor.example", SNOOZED + "ann@vendor.example"),
    ("waiting: cap reached", "ann@vendor.example", "waiting: cap reached"),  # why it cannot go stays
])
def test_a_snooze_marks_who_put_it_off(db: Engine, reason: str | None, actor: str | None, after: str) -> None:
    with session_scope(db) as s:
        tid = _touch(s, _contact(s, "a@x.example"), reason=reason)
    with session_scope(db) as s:
        edit(s, tid, NOW, due_at=NOW + timedelta(days=1), snooze=True, actor=actor)
    assert _status(db, tid) == ("pending_approval", after)
    with session_scope(db) as s:
        edit(s, tid, NOW, due_at=NOW + timedelta(days=1), actor=actor)  # a plain move leaves the reason
    assert _status(db, tid) == ("pending_approval", after)
