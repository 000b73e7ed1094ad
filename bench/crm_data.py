"""A HubSpot contact export imported through the CLI (`contacts import FILE --map hubspot --quiet`, a
subprocess: what a user runs, interpreter start included), then exported back (`contacts export`,
CSV and JSON Lines). The issue's target: 100,000 rows import in under 30 s. The floor is the plain
import of the same rows already in our own columns, in the same run.

    python bench/crm_data.py [--n 100000] [--quick] [--pg]"""

from __future__ import annotations

import csv
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import database, kinds, line, make_project, parser, rate, ratio, summary, workdir

HEADER = ["Record ID", "First Name", "Last Name", "Email", "Phone Number", "Company Name", "Job Title",
          "Contact owner", "Lifecycle Stage", "Create Date", "Unsubscribed from all email", "Associated Company"]


def write_hubspot(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(n):
            out.writerow([str(900_000 + i), f"First{i % 97}", f"Last{i % 89}", f"buyer{i}@company{i % 5000}.example",
                          f"+1 415 {2_000_000 + i % 7_000_000:07d}"[:15], f"Company {i % 5000}", "CTO", "Rita Reyes",
                          "lead", f"2024-{1 + i % 12:02d}-{1 + i % 28:02d} 10:{i % 60:02d}",
                          "true" if i % 13 == 0 else "false", f"Company {i % 5000}"])


def write_ours(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["external_id", "first_name", "last_name", "email", "phone", "company", "title"])
        for i in range(n):
            out.writerow([str(900_000 + i), f"First{i % 97}", f"Last{i % 89}", f"buyer{i}@company{i % 5000}.example",
                          f"+1 415 {2_000_000 + i % 7_000_000:07d}"[:15], f"Company {i % 5000}", "CTO"])


def cli(root: Path, *args: str) -> tuple[float, float]:
    """Seconds and the child's peak RSS (MB) of one `outreach` command."""
    start = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-m", "outreach.cli", *args, "--project", str(root)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SystemExit(f"outreach {' '.join(args)}: {proc.stderr[-2000:]}")
    return time.perf_counter() - start, max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None, help="rows (default 100,000; quick 10,000)")
    args = p.parse_args()
    n = args.n or (10_000 if args.quick else 100_000)
    rows: list[dict[str, Any]] = []
    with workdir() as tmp:
        write_hubspot(tmp / "hubspot.csv", n)
        write_ours(tmp / "ours.csv", n)
        for kind in kinds(args.pg):
            with database(kind, tmp, "crm") as url, database(kind, tmp, "floor") as floor_url:
                root = make_project(tmp / f"{kind}-crm", url)
                floor_root = make_project(tmp / f"{kind}-floor", floor_url)
                seconds, rss = cli(root, "contacts", "import", str(tmp / "hubspot.csv"), "--map", "hubspot", "--quiet")
                floor, _ = cli(floor_root, "contacts", "import", str(tmp / "ours.csv"), "--quiet")
                line(f"{kind} import --map hubspot n={n:,}", seconds=seconds, rows_per_s=rate(n, seconds),
                     floor_s=floor, ratio=ratio(seconds, floor), peak_rss_mb=rss,
                     target="met" if n < 100_000 or seconds < 30 else "MISSED (30 s)")
                rows.append({"db": kind, "what": f"import {n:,} HubSpot rows (CLI)",
                             "figure": f"{seconds:.1f} s", "ratio": ratio(seconds, floor), "extra": f"{rss:.0f} MB"})
                for fmt in ("csv", "jsonl"):
                    out = tmp / f"{kind}.{fmt}"
                    secs, rss = cli(root, "contacts", "export", "--format", fmt, "--out", str(out))
                    line(f"{kind} export {fmt} n={n:,}", seconds=secs, rows_per_s=rate(n, secs), peak_rss_mb=rss)
                    rows.append({"db": kind, "what": f"export {n:,} contacts ({fmt})", "figure": f"{secs:.1f} s",
                                 "ratio": 0.0, "extra": f"{rss:.0f} MB"})
    summary("crm_data", rows)


if __name__ == "__main__":
    main()
