"""The simulator: a small market run through the real engine, where learning must beat the
first-channel and per-buyer baselines; and `outreach simulate --json`'s shape."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from outreach import db
from outreach.cli import app
from outreach.project import Project
from outreach.simulator.run import simulate
from tests.support import make_project

# Rules that touch every buyer on the types with a channel choice three times a week for four weeks,
# so that a small market has something to learn from (the example rules touch most buyers only
# with nurture email, whose channel is fixed).
RULES = """\
version: 1
stages:
  - id: aware
  - id: interested
    reached_by: [demo.requested]
  - id: customer
    reached_by: [contract.signed]
interactions:
  strategic: {channels: [meeting, email]}
  routine:   {channels: [email, sms]}
  reminder:  {channels: [sms, email]}
learning:
  similar_by: [title]
  explore: 0.05
playbooks:
""" + "".join(
    f"  {stage}:\n" + "".join(
        f"    - {{id: {kind}-{week}, after: {7 * week + day}d, interaction: {kind}, content: {content}}}\n"
        for week in range(4) for day, kind, content in (
            (0, "routine", "interested/check-in"), (2, "reminder", "interested/webinar-reminder"),
            (4, "strategic", "evaluating/strategy-session")))
    for stage in ("aware", "interested"))


def small_project(tmp_path: Path) -> Project:
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}", migrated=False)
    (root / "rules" / "nurture.yaml").write_text(RULES)
    return Project.open(root, migrate=False)


def test_learning_beats_first_channel_and_per_buyer_on_a_small_market(tmp_path: Path) -> None:
    result = simulate(small_project(tmp_path), buyers=500, weeks=5, seed=1,
                      policies=("learned", "first_channel", "per_buyer"), jobs=3)
    db.dispose_all()
    f = result["policies"]
    assert f["learned"]["touches"] > 2000  # the market was really worked
    assert f["learned"]["response_rate"] > f["first_channel"]["response_rate"] + 0.01
    assert f["learned"]["response_rate"] > f["per_buyer"]["response_rate"] + 0.01
    assert f["learned"]["on_preferred_share"] > f["first_channel"]["on_preferred_share"] + 0.05


def test_the_command_prints_every_policy_as_json(tmp_path: Path) -> None:
    # no database file to begin with: the simulation must not make one
    root = make_project(tmp_path / "proj", f"sqlite:///{tmp_path / 'outreach.db'}", migrated=False)
    out = CliRunner().invoke(app, ["simulate", "--buyers", "40", "--weeks", "1", "--seed", "3", "--jobs", "1",
                                   "--json", "--project", str(root)])
    db.dispose_all()
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["market"]["buyers"] == 40 and data["market"]["seed"] == 3 and len(data["market"]["personas"]) == 4
    assert set(data["policies"]) == {"learned", "first_channel", "per_buyer", "informed", "oracle"}
    for figures in data["policies"].values():
        assert {"response_rate", "response_rate_weeks_5_8", "on_preferred_share", "opt_outs",
                "stage_advances_per_100_touches"} <= set(figures)
        assert figures["touches"] > 0 and figures["response_rate_weeks_5_8"] is None  # one week only
    assert not (tmp_path / "outreach.db").exists()  # the project's own database is left alone
    bad = CliRunner().invoke(app, ["simulate", "--buyers", "0", "--project", str(root)])
    assert bad.exit_code == 2
