"""The channel learner's choice per contact (`ChannelLearner(contact, interaction)` then the pick
over the allowed channels) with population priors on a few attribute groups, versus a floor that
only reads the same contacts' attribute and indexes a dict per contact. Pure Python, no database.
(Was a timed test, tests/integration/test_learning_counts.py; timing belongs here.)"""

from __future__ import annotations

from common import line, parser, ratio, summary, timed

from outreach.learning import learner as learning
from outreach.learning.learner import ChannelLearner, Counts
from outreach.models import Contact
from outreach.project import Project
from tests.support import ROOT

ROUTINE = ["email", "sms"]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=20000, help="contacts to choose for")
    args = p.parse_args()
    n = 2000 if args.quick else args.n
    rules = Project.open(ROOT).rules
    pop = {("all", "", "routine", c): Counts(5000, 600, 3) for c in ROUTINE}
    pop |= {("attr:title", f"t{k}", "routine", c): Counts(900, 90 + 40 * k, 0) for k in range(4) for c in ROUTINE}
    learner = ChannelLearner(rules)
    learner._priors = learning.Priors(pop)
    rows = [Contact(id=i, title=f"t{i % 4}", stage="interested", attributes={}) for i in range(n)]

    def choose() -> int:
        picked = 0
        for row in rows:
            pick = learner(row, "routine")
            picked += pick is not None and pick(ROUTINE) is not None
        return picked

    table = {f"t{k}": k for k in range(4)}
    _, floor = timed(lambda: sum(table[r.title or "t0"] for r in rows))
    picked, took = timed(choose)
    assert picked == n, f"{n - picked} contacts got no channel"
    per_contact_us = took / n * 1e6
    line("learner choice", contacts=n, us_per_contact=per_contact_us, ratio=ratio(took, floor))
    summary("learner", [{"db": "-", "what": "choice", "figure": f"{per_contact_us:.1f} us/contact",
                         "ratio": round(ratio(took, floor), 1)}])


if __name__ == "__main__":
    main()
