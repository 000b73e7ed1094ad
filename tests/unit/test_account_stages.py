"""The account-stage rules as a table: members' stages and roles -> the account's stage and proof; and
when an account's pause or daily cap holds a touch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from outreach.accounts.derive import Member, account_stage
from outreach.accounts.rules import AccountRules
from outreach.accounts.store import AccountState

STAGES = ["aware", "interested", "evaluating", "deciding", "customer"]
RULES = AccountRules.model_validate({"stages": [
    {"stage": "evaluating", "when": {"members_at_least": {"stage": "interested", "count": 2}}},
    {"stage": "evaluating", "when": {"role": "economic_buyer", "stage": "interested"}},
    {"stage": "deciding", "when": {"members_at_least": {"stage": "evaluating", "count": 2, "role": "champion"}}},
]})


def m(i: int, stage: str, role: str | None = None) -> Member:
    return Member(i, f"p{i}@acme.example", role, stage)


@pytest.mark.parametrize(("current", "members", "expected", "proof_ids"), [
    ("", [], None, []),
    ("", [m(1, "aware"), m(2, "aware")], None, []),
    ("", [m(1, "interested"), m(2, "aware")], None, []),  # one member is not two
    ("", [m(1, "interested"), m(2, "interested")], "evaluating", [1, 2]),
    ("", [m(1, "evaluating"), m(2, "interested"), m(3, "aware")], "evaluating", [1, 2]),  # beyond counts
    ("", [m(1, "interested", "economic_buyer")], "evaluating", [1]),
    ("", [m(1, "interested", "champion")], None, []),  # the role matters
    ("", [m(1, "evaluating", "champion"), m(2, "deciding", "champion")], "deciding", [2, 1]),
    ("", [m(1, "evaluating", "champion"), m(2, "deciding", "user")], "evaluating", [2, 1]),
    ("evaluating", [m(1, "interested"), m(2, "interested")], None, []),  # already there
    ("deciding", [m(1, "aware")], None, []),  # never goes back
])
def test_account_stage(current: str, members: list[Member], expected: str | None, proof_ids: list[int]) -> None:
    got = account_stage(RULES, STAGES, current, members)
    assert (got.stage if got else None) == expected
    assert ([x.id for x in got.members] if got else []) == proof_ids


def test_proof_names_the_rule_and_members() -> None:
    got = account_stage(RULES, STAGES, "", [m(7, "interested", "economic_buyer")])
    assert got is not None
    proof = got.proof("rules/accounts.yaml:9")
    assert proof["rule"] == "the economic buyer reached interested"
    assert proof["members"] == [{"id": 7, "email": "p7@acme.example", "role": "economic_buyer",
                                 "stage": "interested"}]


@pytest.mark.parametrize(("when", "message"), [
    ({"members_at_least": {"stage": "interested"}, "role": "champion"}, "not both"),
    ({"role": "champion"}, "say what holds"),
    ({"members_at_least": {"stage": "interested", "count": 0}}, "greater than or equal to 1"),
])
def test_bad_rules_are_refused(when: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AccountRules.model_validate({"stages": [{"stage": "evaluating", "when": when}]})


NOW = datetime(2026, 3, 2, 15, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.mark.parametrize(("paused_until", "paused_by", "sent", "who", "applies", "until", "why"), [
    (None, None, [], 1, True, None, None),
    (NOW + H, 2, [], 1, True, NOW + H, "another member of Acme answered"),
    (NOW + H, 1, [], 1, True, None, None),  # the member who answered is not held by their own answer
    (NOW + H, 2, [], 1, False, None, None),  # account_pause: ignore, or a rep's approval
    (NOW - H, 2, [], 1, True, None, None),  # the pause is over
    (None, None, [NOW - 3 * H, NOW - 2 * H], 1, True, None, None),  # 2 of 3 sent today
    (None, None, [NOW - 5 * H, NOW - 3 * H, NOW - 2 * H], 1, True, NOW + 19 * H, "3 touch(es) for the day"),
    (None, None, [NOW - 30 * H, NOW - 3 * H, NOW - 2 * H], 1, True, None, None),  # yesterday's do not count
    # a rule that ignores the pause still meets the cap
    (NOW + H, 2, [NOW - 5 * H, NOW - 3 * H, NOW - 2 * H], 1, False, NOW + 19 * H, "3 touch(es) for the day"),
])
def test_account_holds(paused_until: datetime | None, paused_by: int | None, sent: list[datetime], who: int,
                       applies: bool, until: datetime | None, why: str | None) -> None:
    state = AccountState("ACME-1", "Acme", paused_until, paused_by, sent)
    hold = state.hold(who, NOW, cap=3, pause_applies=applies)
    assert (hold.until if hold else None) == until
    assert why is None or (hold is not None and why in hold.reason and hold.reason.startswith("waiting:"))
