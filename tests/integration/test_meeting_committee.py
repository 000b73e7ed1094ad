"""A meeting with a buying committee, through the sandbox with the real SendGrid SDK (SQLite): the
champion asks for a proposal call; the invite also names the economic buyer and the technical
evaluator (by role), the owning rep as organizer and a solutions engineer from `accounts: experts:`,
all in their own time zones; it goes to the three buyers in one message; each RSVP that comes back
through Inbound Parse is the evidence of the person who sent it, and the account stage sees them all."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar, Event, vCalAddress
from sqlmodel import select

from channels.base import NormalizedEvent
from channels.sendgrid_inbound import parse_inbound
from outreach.accounts.store import refresh_stages
from outreach.config import Settings
from outreach.contacts import import_csv
from outreach.db import session_scope
from outreach.engine import Engine
from outreach.inbound import inbound_evidence
from outreach.models import Account, Contact, Evidence, Touch, UnattributedEvent
from outreach.project import Project
from outreach.sandbox.server import Sandbox
from outreach.users import add_user
from tests.support import ALWAYS, at, make_project

MONDAY = at("2026-03-02 15:00")
CSV = """email,first_name,account_id,account_name,role,owner,timezone,consent_email
champ@acme.example,Chad,ACME-1,Acme Corp,champion,rita@example.com,America/New_York,
cfo@acme.example,Carla,ACME-1,,economic_buyer,rita@example.com,Europe/London,
tech@acme.example,Tess,ACME-1,,technical_evaluator,rita@example.com,America/Chicago,
uma@acme.example,Uma,ACME-1,,user,rita@example.com,America/New_York,
bea@beta.example,Bea,BETA-1,Beta Ltd,champion,otto@example.com,Europe/London,
eve@acme.example,Eve,ACME-1,,economic_buyer,rita@example.com,Europe/London,no
"""
ZONES = {"champ@acme.example": "America/New_York", "cfo@acme.example": "Europe/London",
         "tech@acme.example": "America/Chicago", "rita@example.com": "America/Denver",
         "sam@example.com": "America/Los_Angeles"}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


def _rsvp(settings: Settings, uid: str, who: str, partstat: str) -> NormalizedEvent:
    """`who` answers the invite from their calendar: an Inbound Parse post with the METHOD:REPLY."""
    event = Event.new(uid=uid, sequence=0, stamp=MONDAY, summary="Proposal call",
                      attendees=[vCalAddress.new(who, partstat=partstat)])
    ics = Calendar.new(method="REPLY", prodid="-//test//EN", subcomponents=[event]).to_ical()
    mail = parse_inbound({"headers": f"From: {who}\nSubject: Accepted\n".encode(), "from": who.encode(),
                          "to": b"reply@in.example.com", "subject": b"Accepted", "text": b"",
                          "SPF": b"pass", "dkim": f"{{@{who.split('@')[1]} : pass}}".encode(),
                          "attachment-info": json.dumps({"attachment1": {"filename": "invite.ics",
                                                                         "type": "text/calendar"}}).encode()},
                         {"attachment1": ics})
    [item] = inbound_evidence(settings, mail, MONDAY)
    return item


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_a_committee_meeting_and_each_rsvp(tmp_path: Path, database: str, sandbox: Sandbox) -> None:
    root = make_project(tmp_path / "proj", database, **{
        "providers.email": "sendgrid", "sendgrid.api_base": sandbox.url, "sendgrid.api_key": "SG.test-key",
        "sendgrid.webhook_public_key": sandbox.public_key,
        "policy.send_windows": {"email": ALWAYS, "sms": ALWAYS, "meeting": {"days": "mon-fri",
                                                                           "hours": "09:00-17:00"}}})
    accounts = root / "rules" / "accounts.yaml"
    accounts.write_text(accounts.read_text().replace(
        "  daily_cap: 3 ", "  experts: {solutions_engineer: Sam@Example.com}\n #"))
    nurture = root / "rules" / "nurture.yaml"
    nurture.write_text(nurture.read_text().replace(
        "    approval: rep\n    content: deciding/proposal-call\n    meeting: {duration: 30m}",
        "    content: deciding/proposal-call\n    meeting:\n      duration: 45m\n      attendees: "
        "{roles: [economic_buyer, technical_evaluator], experts: [solutions_engineer]}"))
    (tmp_path / "people.csv").write_text(CSV)
    engine = Engine(Project.open(root))
    rules = engine.project.rules
    with session_scope(engine.db) as s:
        add_user(s, "rita@example.com", "rep", None, name="Rita Reyes", timezone=ZONES["rita@example.com"])
        add_user(s, "sam@example.com", "rep", None, name="Sam Solis", timezone=ZONES["sam@example.com"])
        add_user(s, "otto@example.com", "rep", None, name="Otto Ortiz", timezone="Europe/London")
        result = import_csv(s, tmp_path / "people.csv", region="US", first_stage="aware", now=MONDAY,
                            roles=rules.accounts.roles)
        refresh_stages(s, rules.accounts, rules.stage_ids, result.account_ids, MONDAY, rules.account_rule_at)
    engine.record([NormalizedEvent("proposal.requested", MONDAY, "api", email="champ@acme.example")], MONDAY)
    engine.plan(MONDAY + timedelta(hours=2))
    engine.dispatch(MONDAY + timedelta(hours=2))

    invites = [m for m in sandbox.messages("email") if m["request"].get("attachments")]
    assert len(invites) == 1
    request = invites[0]["request"]
    assert [a["email"] for a in request["personalizations"][0]["to"]] == [
        "champ@acme.example", "cfo@acme.example", "tech@acme.example"]  # the buyers only, uma is a user,
    # and eve (an economic buyer too) opted out of email: an invite is mail
    assert (request["from"]["email"], request["from"]["name"]) == ("rita@example.com", "Rita Reyes")
    event = next(iter(Calendar.from_ical(request["content"][-1]["value"]).walk("VEVENT")))
    attendees = {str(a).removeprefix("mailto:"): (str(a.params["ROLE"]), str(a.params["RSVP"]))
                 for a in event["ATTENDEE"]}
    assert attendees == {"champ@acme.example": ("REQ-PARTICIPANT", "TRUE"),
                         "cfo@acme.example": ("REQ-PARTICIPANT", "TRUE"),
                         "tech@acme.example": ("REQ-PARTICIPANT", "TRUE"),
                         "rita@example.com": ("CHAIR", "FALSE"), "sam@example.com": ("REQ-PARTICIPANT", "FALSE")}
    assert str(event["ORGANIZER"].params["CN"]) == "Rita Reyes"  # the owning rep organizes
    start: datetime = event["DTSTART"].dt
    end: datetime = event["DTEND"].dt
    for who, zone in ZONES.items():  # inside 9-17 on a weekday for all five, each in their own zone
        a, b = start.astimezone(ZoneInfo(zone)), end.astimezone(ZoneInfo(zone))
        assert a.weekday() < 5 and a.hour >= 9 and (b.hour, b.minute) <= (17, 0), (who, a, b)
    # London and Los Angeles share no hour until the US moves its clocks (8 March)
    assert start == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)

    uid = str(event["UID"])
    answers = [("cfo@acme.example", "ACCEPTED"), ("CHAMP@acme.example", "ACCEPTED"),
               ("tech@acme.example", "DECLINED"), ("uma@acme.example", "ACCEPTED")]
    engine.record([_rsvp(engine.settings, uid, who, partstat) for who, partstat in answers],
                  MONDAY + timedelta(hours=3))
    with session_scope(engine.db) as s:
        got = {(email, kind) for email, kind in s.execute(
            select(Contact.email, Evidence.type).join(Evidence, Evidence.contact_id == Contact.id)
            .where(Evidence.type.startswith("meeting.")))}  # type: ignore[attr-defined]
        assert got == {("cfo@acme.example", "meeting.accepted"), ("champ@acme.example", "meeting.accepted"),
                       ("tech@acme.example", "meeting.declined")}
        stray = s.exec(select(UnattributedEvent)).all()  # uma was not invited: her answer proves nothing
        assert [u.email for u in stray] == ["uma@acme.example"]
        stages = {c.email: c.stage for c in s.exec(select(Contact)).all()}
        assert stages["cfo@acme.example"] == "evaluating"  # by her own acceptance
        assert stages["champ@acme.example"] == "deciding"  # the proposal request had moved him on already
        account = s.exec(select(Account).where(Account.id == "ACME-1")).one()
        assert account.stage == "deciding"  # two members at evaluating, each by their own RSVP
        assert {m["email"] for m in account.stage_proof["members"]} == {"cfo@acme.example", "champ@acme.example"}

    # the economic buyer asks for a call of her own: it may not overlap the one she was invited to
    later = MONDAY + timedelta(hours=4)
    engine.record([NormalizedEvent("proposal.requested", later, "api", email="cfo@acme.example")], later)
    with session_scope(engine.db) as s:
        touch = s.exec(select(Touch).join(Contact, Contact.id == Touch.contact_id).where(  # type: ignore[arg-type]
            Contact.email == "cfo@acme.example", Touch.rule == "trigger:proposal-call")).one()
        assert touch.meeting_start is not None and touch.meeting_attendees is not None
        assert {a["email"] for a in touch.meeting_attendees} == {"tech@acme.example", "rita@example.com",
                                                                "sam@example.com"}
        assert touch.meeting_start.replace(tzinfo=UTC) >= end  # after the first call, not over it

    # another account's call with the same expert (another rep, another buyer): Sam is not booked twice
    engine.record([NormalizedEvent("proposal.requested", later, "api", email="bea@beta.example")], later)
    with session_scope(engine.db) as s:
        sams = sorted((t.meeting_start, t.meeting_end) for t in s.exec(select(Touch)).all()
                      if any(a["email"] == "sam@example.com" for a in t.meeting_attendees or []))
    assert len(sams) == 3
    assert all(a_end <= b_start for (_a, a_end), (b_start, _b) in pairwise(sams)), sams
