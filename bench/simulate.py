"""The default `outreach simulate` run on the example project, per seed, and the targets of issue 6
checked on the averages: learned closes at least 30% of the first_channel -> oracle gap in response
rate over weeks 5-8, beats per_buyer, has no more opt-outs than first_channel; each run of all five
policies finishes in under 2 minutes.

    python bench/simulate.py [--seeds 1 2] [--buyers 10000] [--weeks 8] [--jobs N] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from outreach.project import Project  # noqa: E402
from outreach.simulator.run import gap_closed, simulate, table  # noqa: E402

KEY = "response_rate_weeks_5_8"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--buyers", type=int, default=10_000)
    parser.add_argument("--weeks", type=int, default=8)
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--quick", action="store_true",
                        help="1,000 buyers, 6 weeks, one seed: checks that it runs (the targets are for the default)")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.buyers, args.weeks = args.seeds[:1], 1_000, 6
    project = Project.open(ROOT, migrate=False)
    runs, walls = [], []
    for seed in args.seeds:
        started = time.perf_counter()
        result = simulate(project, buyers=args.buyers, weeks=args.weeks, seed=seed, jobs=args.jobs)
        walls.append(time.perf_counter() - started)
        runs.append(result["policies"])
        print(table(result), f"\nwall time {walls[-1]:.1f}s\n")
    policies = list(runs[0])
    mean = {p: {k: sum(r[p][k] or 0 for r in runs) / len(runs) for k in (KEY, "opt_outs", "on_preferred_share")}
            for p in policies}
    cpu = sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))
    print(f"averaged over seeds {args.seeds}:")
    for p in policies:
        print(f"  {p:<14} weeks 5-8 response {mean[p][KEY]:.2%}  on preferred {mean[p]['on_preferred_share']:.1%}"
              f"  opt-outs {mean[p]['opt_outs']:.1f}")
    closed = gap_closed(mean)
    checks = {
        "learned closes >= 30% of the first_channel -> oracle gap (weeks 5-8)": closed is not None and closed >= 0.3,
        "learned beats per_buyer (weeks 5-8)": mean["learned"][KEY] > mean["per_buyer"][KEY],
        "learned has no more opt-outs than first_channel": mean["learned"]["opt_outs"] <= mean["first_channel"][
            "opt_outs"],
        "every run of all policies under 2 minutes": max(walls) < 120,
    }
    print(f"gap closed: {closed:.1%}" if closed is not None else "gap closed: -")
    print(f"wall time per run: {', '.join(f'{w:.1f}s' for w in walls)}; CPU time, all processes: {cpu:.0f}s")
    for what, ok in checks.items():
        print(f"  [{'ok' if ok else 'MISSED'}] {what}")
    return 0 if args.quick or all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
