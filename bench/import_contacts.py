"""Contacts import: `import_csv` on a generated CSV versus raw executemany INSERTs of the same rows.

Each (database, size) runs in a child process so that its peak RSS is its own: streaming shows as
the same growth over the baseline at N/10 and at N. The smaller size is also imported a second
time (every row then updates an existing contact)."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

from common import (
    database,
    insert_sql,
    kinds,
    line,
    open_engine,
    parser,
    peak_rss_mb,
    rate,
    ratio,
    raw,
    sql_time,
    summary,
    timed,
    workdir,
)

from outreach.contacts import COLUMNS, import_csv
from outreach.db import session_scope

FIRST = ["Ada", "Grace", "Alan", "Katherine", "Linus", "Margaret", "Edsger", "Barbara"]
LAST = ["King", "Hopper", "Turing", "Johnson", "Torvalds", "Hamilton", "Dijkstra", "Liskov"]
TITLES = ["CTO", "VP Engineering", "Head of Analytics", "CFO", "Director of Operations"]
ZONES = ["America/Los_Angeles", "America/New_York", "Europe/London", "America/Chicago", "Europe/Helsinki"]
INDUSTRIES = ["software", "finance", "aerospace", "retail"]
ROLES = ["champion", "user", "economic_buyer", None]


def contact_rows(n: int) -> Iterator[dict[str, Any]]:
    """The fields import_csv ends up with for row i (phones already E.164, so the CSV round-trips)."""
    for i in range(n):
        yield {"email": f"buyer{i}@company{i % 5000}.example", "phone": f"+1415{2_000_000 + i % 7_000_000:07d}",
               "first_name": FIRST[i % 8], "last_name": LAST[i // 8 % 8], "company": f"Company {i % 5000}",
               "title": TITLES[i % 5], "timezone": ZONES[i % 5], "owner": f"rep{i % 20}@example.com",
               "external_id": f"CRM-{i:08d}", "consent_email": i % 10 != 0, "consent_sms": i % 3 == 0,
               "account_id": f"company{i % 5000}.example", "role": ROLES[i % 4],
               "attributes": {"industry": INDUSTRIES[i % 4]}}


def write_csv(path: Path, n: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow([*COLUMNS, "industry"])
        for r in contact_rows(n):
            out.writerow([*("yes" if r[c] is True else "no" if r[c] is False else r[c] or "" for c in COLUMNS),
                          r["attributes"]["industry"]])


def child(kind: str, n: int, path: Path, reimport: bool) -> dict[str, float]:
    """Import `path` into a fresh database, then the floor into another; figures as JSON."""
    out: dict[str, float] = {}
    with workdir() as tmp, database(kind, tmp, "import") as url, database(kind, tmp, "floor") as floor_url:
        engine = open_engine(tmp / "proj", url)
        region, stage = engine.settings.default_region, engine.project.rules.first_stage
        now = datetime.now(UTC)
        out["rss_before_mb"] = peak_rss_mb()

        def run() -> Any:
            with session_scope(engine.db) as s:
                return import_csv(s, path, region=region, first_stage=stage, now=now)

        result, out["import_s"] = timed(run)
        out["rss_peak_mb"] = peak_rss_mb()
        assert result.created == n and not result.rejected, (result.created, result.rejected[:3])
        if reimport:
            again, out["reimport_s"] = timed(run)
            assert again.updated == n, again.updated
        floor = open_engine(tmp / "floorproj", floor_url)
        conn, ph = raw(floor)
        cols = [*COLUMNS, "attributes", "stage", "stage_entered_at", "stage_entry", "created_at"]
        sql, at = insert_sql("contact", cols, ph), sql_time(floor, now)

        def insert_floor() -> None:
            rows = (tuple([*(r[c] for c in COLUMNS), json.dumps(r["attributes"]), stage, at, 1, at])
                    for r in contact_rows(n))
            cur = conn.cursor()
            while batch := list(islice(rows, 1000)):
                cur.executemany(sql, batch)
            conn.commit()

        _, out["floor_s"] = timed(insert_floor)
        conn.close()
    return out


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--n", type=int, default=None, help="contacts in the larger file (default 200,000; quick 20,000)")
    p.add_argument("--child", nargs=4, metavar=("KIND", "N", "CSV", "REIMPORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        kind, n, path, again = args.child
        print(json.dumps(child(kind, int(n), Path(path), again == "1")))
        return
    big = args.n or (20_000 if args.quick else 200_000)
    sizes = [big // 10, big]
    rows: list[dict[str, Any]] = []
    with workdir() as tmp:
        for n in sizes:
            write_csv(tmp / f"contacts-{n}.csv", n)
        for kind in kinds(args.pg):
            for n in sizes:
                cmd = [sys.executable, __file__, "--child", kind, str(n), str(tmp / f"contacts-{n}.csv"),
                       "1" if n == sizes[0] else "0"]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode:
                    raise SystemExit(proc.stderr)
                f = json.loads(proc.stdout.strip().splitlines()[-1])
                growth = f["rss_peak_mb"] - f["rss_before_mb"]
                line(f"{kind} import_csv n={n:,}", seconds=f["import_s"], rows_per_s=rate(n, f["import_s"]),
                     floor_s=f["floor_s"], floor_rows_per_s=rate(n, f["floor_s"]),
                     ratio=ratio(f["import_s"], f["floor_s"]), rss_base_mb=f["rss_before_mb"],
                     rss_peak_mb=f["rss_peak_mb"], rss_growth_mb=growth)
                rows.append({"db": kind, "what": f"import {n:,} rows",
                             "figure": f"{rate(n, f['import_s']):,.0f} rows/s",
                             "ratio": ratio(f["import_s"], f["floor_s"]), "extra": f"RSS +{growth:.0f} MB"})
                if "reimport_s" in f:
                    line(f"{kind} re-import n={n:,} (updates)", seconds=f["reimport_s"],
                         rows_per_s=rate(n, f["reimport_s"]), ratio=ratio(f["reimport_s"], f["floor_s"]))
                    rows.append({"db": kind, "what": f"re-import {n:,} rows (all updates)",
                                 "figure": f"{rate(n, f['reimport_s']):,.0f} rows/s",
                                 "ratio": ratio(f["reimport_s"], f["floor_s"]), "extra": ""})
    summary("import_contacts", rows)


if __name__ == "__main__":
    main()
