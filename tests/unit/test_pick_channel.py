"""`pick_channel` as one table: a rule's fixed channel, the contact's stated channel, the learner, the
interaction's order, templates, and the reason the rep reads next to the touch (the queue page and
`queue list --json` show `channel_reason` as it is)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from outreach.policy import Reach
from outreach.preferences import Pick, pick_channel

EVERYWHERE = Reach(email="a@x.example", phone="+12125550100", consent_email=True, consent_sms=True)
NO_PHONE = Reach(email="a@x.example", phone=None, consent_email=None, consent_sms=None)
NOWHERE = Reach(email=None, phone=None, consent_email=None, consent_sms=None)
ORDER = ["sms", "email", "meeting"]


def learns(channel: str | None) -> object:
    def learner(candidates: Sequence[str]) -> Pick | None:
        learner.seen = list(candidates)  # type: ignore[attr-defined]
        return None if channel is None else Pick(channel, f"learned: {channel}")
    return learner


# (keyword arguments beyond order, the pick, its reason)
CASES: list[tuple[dict[str, object], str | None, str]] = [
    ({"reach": EVERYWHERE}, "sms", "default order for the interaction"),
    ({"reach": NO_PHONE}, "email", "default order for the interaction (sms: no phone number)"),
    ({"reach": NO_PHONE, "templates": {"meeting"}}, "meeting",
     "default order for the interaction (sms: no phone number; email: no template)"),
    ({"reach": EVERYWHERE, "templates": set()}, None,
     "no channel can reach the contact (sms: no template; email: no template; meeting: no template)"),
    ({"reach": NOWHERE}, None,
     "no channel can reach the contact (sms: no phone number; email: no email address; meeting: no email address)"),
    ({"reach": EVERYWHERE, "stated": "email"}, "email", "stated by the contact"),
    ({"reach": NO_PHONE, "stated": "sms"}, "email",
     "default order for the interaction (stated sms cannot be used; sms: no phone number)"),
    ({"reach": EVERYWHERE, "stated": "email", "templates": {"sms"}}, "sms",
     "default order for the interaction (stated email cannot be used; email: no template; meeting: no template)"),
    ({"reach": EVERYWHERE, "fixed": "email"}, "email", "fixed by the rule"),
    ({"reach": NO_PHONE, "fixed": "sms"}, None, "the rule fixes sms, but no phone number"),
    ({"reach": EVERYWHERE, "fixed": "email", "stated": "sms"}, "email", "fixed by the rule"),  # the rule wins
    ({"reach": EVERYWHERE, "learner": learns("email")}, "email", "learned: email"),
    ({"reach": EVERYWHERE, "learner": learns(None)}, "sms", "default order for the interaction"),
    # a learner that names a channel that cannot be used is not followed
    ({"reach": NO_PHONE, "learner": learns("sms")}, "email",
     "default order for the interaction (sms: no phone number)"),
    ({"reach": EVERYWHERE, "stated": "meeting", "learner": learns("email")}, "meeting", "stated by the contact"),
    # opt-in mode: an unknown consent is no consent
    ({"reach": NO_PHONE, "email_consent": "opt_in"}, None,
     "no channel can reach the contact (sms: no phone number; email: no email opt-in; meeting: no email opt-in)"),
    ({"reach": NO_PHONE, "email_consent": "opt_in", "fixed": "email"}, None,
     "the rule fixes email, but no email opt-in"),
]


@pytest.mark.parametrize(("kwargs", "channel", "reason"), CASES)
def test_pick_and_its_reason(kwargs: dict[str, object], channel: str | None, reason: str) -> None:
    assert pick_channel(order=ORDER, **kwargs) == Pick(channel, reason)  # type: ignore[arg-type]


def test_the_learner_sees_only_the_usable_channels_best_first() -> None:
    learner = learns(None)
    pick_channel(order=ORDER, reach=NO_PHONE, templates={"email", "meeting"}, learner=learner)  # type: ignore[arg-type]
    assert learner.seen == ["email", "meeting"]  # type: ignore[attr-defined]
