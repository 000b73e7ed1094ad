"""Which channel for this contact, interaction type and stage, and why.

Order (SPEC section 6): the channel the contact stated for the interaction type; else what is
learned from responses; else the interaction type's channel order. Only channels that can reach
the contact now and that have a template for the content are candidates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from outreach.policy import Reach, unreachable

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement
    from sqlmodel import Session


@dataclass(frozen=True)
class Pick:
    channel: str | None
    reason: str


# A learner looks at the candidates (best-first default order) and returns a pick, or None
# when it has nothing to say; issue-level learning plugs in here without touching the planner.
Learner = Callable[[Sequence[str]], Pick | None]


class ChannelLearning(Protocol):
    """What the planner consults (outreach.learning.learner.ChannelLearner, the simulator's
    baselines): `prepare` loads what a batch of contacts needs in a few queries; calling it with a
    contact (a Contact, or a row with the same fields) and an interaction type gives the Learner."""

    def prepare(self, session: Session, ids: Sequence[int]) -> None: ...

    def __call__(self, contact: Any, interaction: str) -> Learner | None: ...


@runtime_checkable
class QuietLearning(Protocol):
    """A learner that can say, in SQL, for which contacts it has nothing to say about an interaction
    type: the planner then chooses their channel set-based (one INSERT ... SELECT), not per contact."""

    def quiet(self, session: Session, interaction: str) -> ColumnElement[bool] | None:
        """A condition on `contact` true where the learner would return None, or None if it may speak
        for anyone (then every contact goes through the per-contact path)."""
        ...


def pick_channel(*, order: Sequence[str], reach: Reach, stated: str | None = None,
                 fixed: str | None = None, templates: set[str] | None = None,
                 email_consent: str = "opt_out", learner: Learner | None = None) -> Pick:
    """Pick a channel; `reason` says why (and, with no channel, why none could be used)."""
    if fixed:
        why = unreachable(reach, fixed, email_consent)
        if why:
            return Pick(None, f"the rule fixes {fixed}, but {why}")
        return Pick(fixed, "fixed by the rule")
    blocked: list[str] = []
    candidates: list[str] = []
    for channel in order:
        why = unreachable(reach, channel, email_consent)
        if why is None and templates is not None and channel not in templates:
            why = "no template"
        if why:
            blocked.append(f"{channel}: {why}")
        else:
            candidates.append(channel)
    if not candidates:
        return Pick(None, "no channel can reach the contact (" + "; ".join(blocked) + ")")
    if stated:
        if stated in candidates:
            return Pick(stated, "stated by the contact")
        blocked.insert(0, f"stated {stated} cannot be used")
    if learner is not None:
        learned = learner(candidates)
        if learned is not None and learned.channel in candidates:
            return learned
    skipped = f" ({'; '.join(blocked)})" if blocked else ""
    return Pick(candidates[0], f"default order for the interaction{skipped}")
