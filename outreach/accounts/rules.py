"""The `accounts:` section of a rule file -> typed AccountRules. A leaf: the rule reader imports it, so
it imports nothing of the rules itself (stage ids are cross-checked by outreach.checks).

    accounts:
      roles: [economic_buyer, champion, technical_evaluator, user, legal]
      pause: {after: [email.replied, sms.replied, meeting.accepted], for: 3d}
      daily_cap: 2
      experts: {solutions_engineer: sam@example.com}
      stages:
        - stage: evaluating
          when: {members_at_least: {stage: interested, count: 2}}
        - stage: evaluating
          when: {role: economic_buyer, stage: interested}
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from outreach.durations import parse_duration

DEFAULT_ROLES = ("economic_buyer", "champion", "technical_evaluator", "user", "legal")
DEFAULT_PAUSE_AFTER = ("email.replied", "sms.replied", "meeting.accepted")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_EVENT = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError(f"'{v}' is not a name: use lowercase letters, digits and _ (like economic_buyer)")
    return v


def _event(v: str) -> str:
    if not _EVENT.match(v):
        raise ValueError(f"'{v}' is not an event name (like email.replied)")
    return v


def _pause_length(v: Any) -> timedelta:
    delta = v if isinstance(v, timedelta) else parse_duration(v)
    if delta > timedelta(days=365):
        raise ValueError(f"'{v}' is too long for a pause (at most 365d)")
    return delta


Name = Annotated[str, AfterValidator(_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MembersAtLeast(_Strict):
    """At least `count` members (of `role`, when named) have reached `stage` or a later one."""

    stage: Name
    count: int = Field(default=1, ge=1, le=1000)
    role: Name | None = None


class When(_Strict):
    """Either `members_at_least: {stage, count, role}` or the shorthand `role` + `stage` (one member
    of that role has reached the stage)."""

    members_at_least: MembersAtLeast | None = None
    role: Name | None = None
    stage: Name | None = None

    @model_validator(mode="after")
    def _one_form(self) -> When:
        if self.members_at_least is not None and (self.role or self.stage):
            raise ValueError("give either members_at_least or role + stage, not both")
        if self.members_at_least is None and not self.stage:
            raise ValueError("say what holds: members_at_least: {stage: interested, count: 2}, "
                             "or role: economic_buyer with stage: interested")
        return self

    @property
    def need(self) -> MembersAtLeast:
        """Both forms as one: how many members, of which role, at which stage."""
        return self.members_at_least or MembersAtLeast(stage=self.stage or "", count=1, role=self.role)

    def describe(self) -> str:
        need = self.need
        who = f"the {need.role.replace('_', ' ')}" if need.role and need.count == 1 else (
            f"{need.count} {need.role.replace('_', ' ')}s" if need.role else
            "a member" if need.count == 1 else f"{need.count} members")
        return f"{who} reached {need.stage.replace('_', ' ')}"


class AccountStage(_Strict):
    stage: Name
    when: When


class Pause(_Strict):
    """When a member answers (`after`), automated touches to the other members wait `for` this long."""

    after: Annotated[list[Annotated[str, AfterValidator(_event)]],
                     BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = list(DEFAULT_PAUSE_AFTER)
    for_: Annotated[timedelta, BeforeValidator(_pause_length)] = Field(default=timedelta(days=3), alias="for")


def _address(v: str) -> str:
    v = v.strip().lower()
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", v):
        raise ValueError(f"'{v}' is not an email address")
    return v


class Attendees(_Strict):
    """Who a meeting step invites besides its contact: the other members of the account in `roles`,
    and the seller's `experts` (names of the `accounts: experts:` map). The owning rep organizes."""

    roles: Annotated[list[Name], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = []
    experts: Annotated[list[Name], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] = []


Reps = Annotated[list[Annotated[str, AfterValidator(_address)]], Field(min_length=1)]


class Owners(_Strict):
    """Who owns the unowned on import: the next rep of the contact's territory (`by`, a contact
    attribute; `"*"` for any other value) with the fewest accounts; a whole account goes to one rep."""

    by: str | None = None
    round_robin: dict[str, Reps]

    @model_validator(mode="before")
    @classmethod
    def _plain_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("round_robin"), list):  # one pool for everybody
            if data.get("by"):
                raise ValueError("with `by:`, give round_robin as territory: [reps], like {east: [a@x.com]}")
            return {**data, "round_robin": {"*": data["round_robin"]}}
        return data

    def pool(self, territory: str | None) -> list[str]:
        return self.round_robin.get(territory or "", []) or self.round_robin.get("*", [])


class AccountRules(_Strict):
    roles: Annotated[list[Name], Field(min_length=1)] = list(DEFAULT_ROLES)
    owners: Owners | None = None
    # the seller's people a meeting may invite: name (solutions_engineer) -> their user's email
    experts: dict[Name, Annotated[str, AfterValidator(_address)]] = {}
    pause: Pause = Pause()
    daily_cap: int | None = Field(default=None, ge=1)  # automated touches per account per day
    stages: list[AccountStage] = []


def without_section() -> AccountRules:
    """The account rules of a project whose rules have no `accounts:` section: the default roles, and
    no pause and no cap (coordination is something a project turns on)."""
    return AccountRules(pause=Pause.model_validate({"after": [], "for": timedelta(0)}))
