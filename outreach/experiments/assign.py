"""Who gets which content: the holdout, and each experiment's variant per contact.

Pure decisions (`unit`, `in_holdout`, `fixed_variant`, `thompson`) and the `Allocator` the planner calls
once per batch of rows it is about to write. Assignment is stable: a contact that already has a variant
of an experiment keeps it; a new one gets a hash-chosen variant (fixed) or a Thompson draw from a
generator seeded by the same hash (adaptive), so the same data and seed give the same split."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from outreach.experiments.results import HOLDOUT, SEGMENT_COLUMNS, Counts, Declared, counts, stops
from outreach.experiments.stats import Arm, clearly_worse
from outreach.models import Contact, ExperimentStop, Touch, TouchStatus
from outreach.ruleset import Experiment, Step

HOLDOUT_REASON = "holdout: this contact is in the control group that gets no automated touch"


def unit(*parts: object) -> float:
    """A number in [0, 1) fixed by the parts: the same on every machine and every run."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def in_holdout(contact_id: int, share: float) -> bool:
    return share > 0 and unit("holdout", contact_id) < share


def fixed_variant(exp: Experiment, variants: Sequence[str], contact_id: int) -> str:
    weights = exp.weights if exp.weights and len(exp.weights) == len(variants) else [1.0] * len(variants)
    point = unit(exp.seed, exp.id, contact_id) * sum(weights)
    for variant, w in zip(variants, weights, strict=True):
        point -= w
        if point < 0:
            return variant
    return variants[-1]


def thompson(arms: Sequence[Arm], rng: random.Random) -> str:
    """The variant whose draw from Beta(1 + successes, 1 + failures) is highest."""
    draws = [(rng.betavariate(1 + a.successes, 1 + max(a.n - a.successes, 0)), a.name) for a in arms]
    return max(draws)[1]


def adaptive_choice(arms: Sequence[Arm], rng: random.Random) -> str:
    """Adaptive allocation for one contact: a Thompson draw among the variants not clearly worse."""
    worse = clearly_worse(list(arms))
    return thompson([a for a in arms if a.name not in worse] or arms, rng)


def _as_variant(row: dict[str, Any], step: Step, variant: str | None) -> None:
    """The row sends `variant`'s content, when its cadence says (the planner planned it at the step's
    earliest `after`, with the control's due time): a later cadence is planned now, due later, so the
    contact is assigned at the same moment whatever its variant."""
    content, after = step.arm(variant)
    row["content"] = content
    if after != step.after:
        row["due_at"] = row["due_at"] - step.after + after


@dataclass
class Allocator:
    """One planning run's assignment: stops and adaptive counts are loaded once per experiment."""

    holdout: float = 0.0
    _stops: dict[str, ExperimentStop] | None = None
    _arms: dict[str, dict[str | None, list[Arm]]] = field(default_factory=dict)

    def apply(self, session: Session, stage: str, step: Step, rows: list[dict[str, Any]]) -> None:
        """Fill in each row's experiment, variant and content; a holdout contact's row becomes a
        suppressed touch (so the step is not planned for it again, and the holdout is measured)."""
        exp = step.experiment if step.variants else None
        if exp is not None and self._stopped(session).get(exp.id) is not None:
            promoted = self._stopped(session)[exp.id].promoted
            for row in rows:
                _as_variant(row, step, promoted)
            exp = None
        if exp is not None and exp.start is not None and rows and rows[0]["created_at"].date() < exp.start:
            exp = None  # not started: the first variant, and no contact is assigned yet
        known = self._assigned(session, exp.id, [r["contact_id"] for r in rows]) if exp else {}
        segments = self._segments(session, exp, rows) if exp and exp.allocation == "adaptive" else {}
        for row in rows:
            row.setdefault("experiment_id", None)
            row.setdefault("variant", None)
            cid = row["contact_id"]
            if in_holdout(cid, self.holdout):
                row.update(status=TouchStatus.SUPPRESSED, reason=HOLDOUT_REASON, channel=None,
                           experiment_id=exp.id if exp else None, variant=HOLDOUT if exp else None)
                continue
            if exp is None:
                continue
            variant = known.get(cid)
            if variant is None:
                if exp.allocation == "adaptive":
                    arms = self._adaptive(session, stage, step, exp, segments.get(cid))
                    variant = adaptive_choice(arms, random.Random(unit(exp.seed, exp.id, cid)))
                else:
                    variant = fixed_variant(exp, step.variants, cid)
            _as_variant(row, step, variant)
            row.update(experiment_id=exp.id, variant=variant)

    def _stopped(self, session: Session) -> dict[str, ExperimentStop]:
        if self._stops is None:
            self._stops = stops(session)
        return self._stops

    @staticmethod
    def _assigned(session: Session, exp_id: str, ids: list[int]) -> dict[int, str]:
        """The variants these contacts already have (a contact keeps its variant)."""
        rows = session.execute(select(col(Touch.contact_id), col(Touch.variant)).where(
            col(Touch.experiment_id) == exp_id, col(Touch.contact_id).in_(ids), col(Touch.variant) != HOLDOUT))
        return {cid: v for cid, v in rows.all() if v}

    @staticmethod
    def _segments(session: Session, exp: Experiment, rows: list[dict[str, Any]]) -> dict[int, str | None]:
        column = SEGMENT_COLUMNS.get(exp.segment_by or "")
        if column is None:
            return {}
        ids = [r["contact_id"] for r in rows]
        found = session.execute(select(col(Contact.id), col(column)).where(col(Contact.id).in_(ids))).all()
        return {int(cid): value for cid, value in found}

    def _adaptive(self, session: Session, stage: str, step: Step, exp: Experiment, segment: str | None) -> list[Arm]:
        """What the variants achieved, for a new contact of this segment: per segment when the segment has
        data, else over all contacts."""
        if exp.id not in self._arms:
            declared = Declared(exp.id, stage, step.id, exp.metric, exp.within, exp.allocation, step.variants,
                                exp.min_sample, exp.segment_by)
            by: dict[str | None, dict[str, Counts]] = {}
            total: dict[str, Counts] = {}
            for (variant, seg), c in counts(session, declared, segment=exp.segment_by is not None).items():
                if variant == HOLDOUT or variant not in step.variants:
                    continue
                by.setdefault(seg, {})[variant] = c
                t = total.setdefault(variant, Counts())
                t.contacts += c.contacts
                t.successes += c.successes
            tables: dict[str | None, list[Arm]] = {}
            for key, table in [*by.items(), ("*", total)]:
                tables[key] = [Arm(v, table.get(v, Counts()).contacts, table.get(v, Counts()).successes)
                               for v in step.variants]
            self._arms[exp.id] = tables
        arms_of = self._arms[exp.id]
        chosen: list[Arm] = (arms_of.get(segment) if exp.segment_by else None) or arms_of["*"]
        return chosen
