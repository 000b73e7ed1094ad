"""Shaping engine data for the pages: a touch's message as the buyer will see it, a contact's
timeline, and the rules as readable playbooks. Presentation only: the decisions stay in the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from outreach.content import available_channels, sms_segments
from outreach.engine import Engine
from outreach.errors import RenderError
from outreach.kinds import Channel
from outreach.meetings import RESCHEDULE_STEP
from outreach.messages import render_touch
from outreach.models import Contact, Touch
from outreach.one_off import ONE_OFF
from outreach.ruleset import Ruleset
from outreach.templating import RenderTimeout
from outreach.web.render import to_utc


@dataclass
class Preview:
    """What the buyer would get: email subject and text, SMS text and segments, or a meeting's title,
    time and description. `error` says why it cannot be rendered (the touch would fail)."""

    channel: str
    subject: str | None = None
    text: str = ""
    segments: int = 0
    starts_at: datetime | None = None
    minutes: int | None = None
    has_html: bool = False
    error: str | None = None


def preview(engine: Engine, touch: Touch, contact: Contact, overran: dict[str, str] | None = None) -> Preview:
    """`overran`, shared by the cards of one page: the content that already ran past its render time
    limit, with its error. It is not rendered again for the next buyer, or a page of 50 touches of one
    runaway template would take 50 times that limit."""
    channel = touch.channel or ""
    out = Preview(channel=channel)
    if not channel:
        out.error = touch.reason or "no channel can reach this buyer"
        return out
    key = f"{touch.content}.{channel}"
    if overran is not None and touch.content and key in overran:
        out.error = overran[key]
        return out
    try:
        if channel == Channel.MEETING:
            # the invite itself, so the time shown is the slot the buyer's calendar will show
            msg = engine.build(touch, contact, engine.project.rules)
            out.subject, out.text, out.minutes = msg.subject, msg.text, touch.meeting_minutes or 30
            out.starts_at = _dtstart(msg.calendar)
        else:
            rendered = render_touch(engine.settings, engine.project.content_dir, touch, contact,
                                    engine.sender_of(contact), engine.committee_of(contact))
            out.subject, out.text, out.has_html = rendered.subject, rendered.text, bool(rendered.html)
            if channel == Channel.SMS:
                out.segments = sms_segments(rendered.text)
    except (RenderError, ValueError) as exc:
        out.error = str(exc)
        if overran is not None and touch.content and isinstance(exc.__cause__ or exc, RenderTimeout):
            overran[key] = out.error
    return out


def _dtstart(calendar: str | None) -> datetime | None:
    if not calendar:
        return None
    from icalendar import Calendar

    for event in Calendar.from_ical(calendar).walk("VEVENT"):
        start = event.get("dtstart")
        if start is not None and isinstance(start.dt, datetime):
            return to_utc(start.dt)
    return None


def edit_channels(engine: Engine, touch: Touch) -> list[str]:
    """The channels a rep may switch a touch to: its interaction's, that have a template."""
    inter = engine.project.rules.interactions.get(touch.interaction)
    have = available_channels(engine.project.content_dir, touch.content)
    return [c for c in (inter.channels if inter else []) if c in have or c == touch.channel]


@dataclass
class Event:
    at: datetime | None
    kind: str  # evidence | stage | touch | owner
    title: str
    detail: str = ""
    status: str | None = None
    children: list[dict[str, Any]] = field(default_factory=list)
    link: str | None = None
    said: str | None = None  # the buyer's own words: a reply's new text, an SMS body, an RSVP's comment
    facts: list[tuple[str, str]] = field(default_factory=list)  # what the evidence carried (page, form)


# Provider plumbing: what happened to our message on its way, not a step the buyer took. Shown on
# the touch it belongs to, never as a line of its own.
PLUMBING = ("email.delivered", "sms.delivered", "email.soft_bounced", "email.read_receipt")
# Data keys that are transport detail, not something a person wants to read on the timeline.
_QUIET = {"text", "full_text", "body", "comment", "spf", "dkim", "from", "uid", "partstat", "subject",
          "keyword", "note", "by", "raw", "headers", "message_sid", "sg_event_id", "sg_message_id",
          "auto_reply_reason", "recipients"}
_RSVP = {"meeting.accepted": "accepted the invite", "meeting.declined": "declined the invite",
         "meeting.tentative": "said maybe to the invite", "meeting.countered": "proposed another time"}
# a rep's task done (outreach.tasks): what happened, in words
_TASKS = {"call.connected": "talked on the phone", "call.voicemail": "got a voicemail",
          "call.no_answer": "did not pick up the phone", "social.sent": "got a social message",
          "social.replied": "answered a social message", "social.no_answer": "did not answer a social message"}


def plumbing(kind: str) -> bool:
    return kind in PLUMBING or kind.startswith("provider.")


def said(kind: str, data: dict[str, Any]) -> str | None:
    """What the buyer wrote, for a reply, an SMS or an RSVP's comment (quoted history already stripped)."""
    if kind in _RSVP:
        text = data.get("comment")
    elif kind in ("sms.replied", "sms.opted_out", "sms.opted_in"):
        text = data.get("body")
    elif kind in ("email.replied", "email.auto_replied"):
        text = data.get("text")
    else:
        return None
    return str(text).strip()[:2000] or None if text else None


def facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The evidence's own data worth reading (which pricing page, which form), as short label/value pairs."""
    out = []
    for k, v in data.items():
        if k in _QUIET or v is None or v == "" or isinstance(v, dict | list):
            continue
        out.append((k.replace("_", " "), str(v)[:200]))
    return out[:8]


def timeline(detail: dict[str, Any]) -> list[Event]:
    """Evidence with its source, stage changes with the evidence that proved them, and touches with
    their statuses and the provider events that answer them; newest first."""
    def t(text: str | None) -> datetime | None:
        return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00"))) if text else None

    by_touch: dict[int, list[dict[str, Any]]] = {}
    events: list[Event] = []
    # a stage change before the evidence that proved it: newest first, equal times keep this order
    for ch in detail["stage_changes"]:
        events.append(Event(t(ch["at"]), "stage", f"{ch['from'] or 'start'} → {ch['to']}",
                            f"proved by {ch['proof']}" if ch["proof"] else "no single piece of evidence"))
    for e in detail["evidence"]:
        if e["touch_id"]:
            by_touch.setdefault(e["touch_id"], []).append(e)
            if plumbing(e["type"]):
                continue  # folded into its touch
        data = e.get("data") if isinstance(e.get("data"), dict) else {}
        note = data.get("note")
        who = f"by {data['by']}" if data.get("by") else f"from {e['source']}"
        events.append(Event(t(e["occurred_at"]), "evidence", _RSVP.get(e["type"]) or _TASKS.get(e["type"], e["type"]),
                            who + (f" · on {e['channel']}" if e["channel"] else "")
                            + (f" · answers touch #{e['touch_id']}" if e["touch_id"] else "")
                            + (f" · “{note}”" if note else ""), said=said(e["type"], data), facts=facts(data)))
    for oc in detail.get("owner_changes", []):
        how = {"rule": "assigned by the owner rules", "claimed": f"claimed by {oc['actor']}"}.get(
            oc["how"], f"{oc['how']} by {oc['actor']}")
        events.append(Event(t(oc["at"]), "owner", f"owner: {oc['to']}",
                            how + (f" (was {oc['from']})" if oc["from"] else "")))
    for tc in detail["touches"]:
        when = t(tc["sent_at"]) or t(tc["due_at"])
        if tc["rule"] == ONE_OFF:  # a person's own message: who wrote it, not a rule
            title = f"#{tc['id']} {'answer' if tc['step'] == 'answer' else 'message'} by {tc['channel']}"
            line = f"written and {tc['channel_reason'].replace('set by', 'sent by')}"
            if tc["step"] == RESCHEDULE_STEP:  # the buyer's counter-proposal accepted (outreach.counters)
                title = f"#{tc['id']} the invite moved to the time the buyer proposed"
                line = "the buyer's calendar gets the invite at its new time"
        else:
            title = f"#{tc['id']} {tc['step']} · {tc['interaction']} by {tc['channel'] or '—'}"
            line = tc["rule"]
        events.append(Event(when, "touch", title, line + (f" · {tc['reason']}" if tc["reason"] else ""), tc["status"],
                            [{"type": e["type"], "at": e["occurred_at"]} for e in by_touch.get(tc["id"], [])],
                            link=f"/queue/{tc['id']}"))
    floor = datetime.min.replace(tzinfo=UTC)
    events.sort(key=lambda ev: ev.at or floor, reverse=True)
    return events


def _span(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    if seconds == 0:
        return "at once"
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds}s"


def playbooks(rules: Ruleset, dry: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage in order: how it is reached, and its steps as a timeline with the dry-run counts."""
    counts = {s["rule"]: s for s in dry.get("steps", [])}
    out = []
    for stage in rules.stages:
        reached = []
        for c in stage.reached_by:
            text = c.event if c.count == 1 else f"{c.event} {c.count} times"
            reached.append(text + (f" within {_span(c.within)}" if c.within else ""))
        steps = []
        for st in sorted(rules.playbooks.get(stage.id, []), key=lambda s: s.after):
            key = f"playbook:{stage.id}/{st.id}"
            steps.append({
                "id": st.id, "when": "on entry" if not st.after else f"after {_span(st.after)}",
                "interaction": st.interaction, "content": st.content, "approval": st.approval,
                "channel": st.channel or " / ".join(rules.interactions[st.interaction].channels)
                if st.interaction in rules.interactions else st.channel,
                "fixed": st.channel is not None, "skip_if": st.skip_if,
                "meeting": _span(st.meeting.duration) if st.meeting else None,
                "where": "{}:{}".format(*rules.where.get(("step", stage.id, st.id, ""), ("rules/", 0))),
                "dry": counts.get(key, {}).get("contacts", 0), "examples": counts.get(key, {}).get("examples", []),
            })
        out.append({"id": stage.id, "reached_by": reached, "steps": steps})
    return out


def triggers(rules: Ruleset) -> list[dict[str, Any]]:
    return [{"id": tr.id, "on": tr.on, "if": tr.if_, "interaction": tr.interaction, "content": tr.content,
             "approval": tr.approval, "channel": tr.channel, "within": _span(tr.within) if tr.within else None,
             "after": _span(tr.after) if tr.after else None,
             "where": "{}:{}".format(*rules.where.get(("trigger", tr.id, ""), ("rules/", 0)))}
            for tr in rules.triggers]
