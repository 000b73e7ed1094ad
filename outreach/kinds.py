"""The fixed vocabularies the tables hold as text: touch statuses, channels, the providers' events.

A leaf module: anything may import it. The columns stay text; a StrEnum member is a str, so it
is stored, compared and serialized as its value.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

StageId = NewType("StageId", str)  # a stage of the user's rules: any id the rules name


class TouchStatus(StrEnum):
    """A touch's status (SPEC section 10); the column holds the text value."""

    PENDING = "pending_approval"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    SUPPRESSED = "suppressed"
    UNCERTAIN = "uncertain"


class Channel(StrEnum):
    """A channel a touch goes out on; the columns hold the text value."""

    EMAIL = "email"
    SMS = "sms"
    MEETING = "meeting"
    # tasks: done by the rep by hand, never sent to a provider; the rep records the outcome
    CALL = "call"
    SOCIAL = "social"


TASK_CHANNELS = (Channel.CALL, Channel.SOCIAL)
# what a rep may record of a task; each becomes evidence `<channel>.<outcome>` (call.connected, ...)
TASK_OUTCOMES: dict[str, tuple[str, ...]] = {
    Channel.CALL: ("connected", "voicemail", "no_answer"),
    Channel.SOCIAL: ("sent", "replied", "no_answer"),
}


# a buyer's calendar proposed another time for an invite (iTIP COUNTER): outreach.counters
COUNTERED = "meeting.countered"


class EvidenceType(StrEnum):
    """The events providers' reports are normalized to (SPEC section 9). Websites and CRMs may
    post any other dotted name, so evidence types are `str` wherever they are stored or accepted."""

    EMAIL_DELIVERED = "email.delivered"
    EMAIL_OPENED = "email.opened"
    EMAIL_CLICKED = "email.clicked"
    EMAIL_REPLIED = "email.replied"
    EMAIL_BOUNCED = "email.bounced"
    EMAIL_COMPLAINED = "email.complained"
    EMAIL_UNSUBSCRIBED = "email.unsubscribed"
    SMS_DELIVERED = "sms.delivered"
    SMS_FAILED = "sms.failed"
    SMS_REPLIED = "sms.replied"
    SMS_OPTED_OUT = "sms.opted_out"
    SMS_OPTED_IN = "sms.opted_in"
    MEETING_ACCEPTED = "meeting.accepted"
    MEETING_DECLINED = "meeting.declined"
    MEETING_TENTATIVE = "meeting.tentative"


class OutboundEvent(StrEnum):
    """What the engine tells other systems through outbound webhooks (SPEC section 11)."""

    STAGE_CHANGED = "stage.changed"
    EMAIL_REPLIED = "email.replied"
    SMS_REPLIED = "sms.replied"
    MEETING_ACCEPTED = "meeting.accepted"
    CONTACT_OPTED_OUT = "contact.opted_out"
    EXPERIMENT_CONCLUDED = "experiment.concluded"
