"""Run every benchmark (each in its own process), echo its figures, then print one summary table.

    python bench/run.py [--quick] [--pg] [--only plan,webhook] [--json]

With `--json` the benchmarks' own lines go to stderr and stdout is one JSON document (for scripts):
the machine, the flags, and every row with its figure as text, as a number and its unit, and its ratio."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHES = ["import_contacts", "plan", "dispatch", "webhook", "twilio_status", "accounts", "learner"]
HERE = Path(__file__).resolve().parent
SUMMARY = "SUMMARY "


FIGURE = re.compile(r"^\s*([-+]?[\d,]*\.?\d+)\s*(.*)$")


def run(name: str, flags: list[str], echo: Any) -> tuple[list[dict[str, Any]], float, int]:
    """Stream one benchmark's output to `echo`; its summary rows, wall seconds and exit code."""
    print(f"== {name} {' '.join(flags)}", file=echo, flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py"), *flags], stdout=subprocess.PIPE, text=True)
    rows: list[dict[str, Any]] = []
    assert proc.stdout is not None
    for text in proc.stdout:
        if text.startswith(SUMMARY):
            rows = json.loads(text[len(SUMMARY):])["rows"]
        else:
            print(text, end="", file=echo, flush=True)
    code = proc.wait()
    return rows, time.perf_counter() - start, code


def numeric(row: dict[str, Any]) -> dict[str, Any]:
    """The row with its figure also as a number and a unit ("13,166 touches/s" -> 13166.0, "touches/s")."""
    found = FIGURE.match(str(row["figure"]))
    value, unit = (float(found.group(1).replace(",", "")), found.group(2)) if found else (None, "")
    return {**row, "value": value, "unit": unit}


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "sqlite": sqlite3.sqlite_version, "load_average": list(os.getloadavg())}


def table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    head = ("bench", "db", "what", "figure", "x floor", "")
    body = [(bench, r["db"], r["what"], r["figure"], f"{r['ratio']:.1f}", r.get("extra", "")) for bench, r in rows]
    widths = [max(len(str(x[i])) for x in [head, *body]) for i in range(len(head))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(x, widths, strict=True)).rstrip() for x in [head, *body]]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def main() -> None:
    p = argparse.ArgumentParser(description="Run the outreach benchmarks and print a summary table.")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run, not figures to quote")
    p.add_argument("--pg", action="store_true", help="also on PostgreSQL (OUTREACH_TEST_PG, default 127.0.0.1:5432)")
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHES)}")
    p.add_argument("--json", action="store_true", help="stdout: one JSON document of every figure and ratio")
    args = p.parse_args()
    echo = sys.stderr if args.json else sys.stdout
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    names = [n for n in args.only.split(",") if n] or BENCHES
    unknown = set(names) - set(BENCHES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    flags = [f for f, on in (("--quick", args.quick), ("--pg", args.pg)) if on]
    collected: list[tuple[str, dict[str, Any]]] = []
    failed = []
    for name in names:
        rows, seconds, code = run(name, flags, echo)
        print(f"   ({seconds:.0f} s)\n", file=echo, flush=True)
        collected += [(name, r) for r in rows]
        if code:
            failed.append(name)
    if args.json:
        print(json.dumps({"started": started, "machine": machine(), "quick": args.quick, "pg": args.pg,
                          "rows": [{"bench": bench, **numeric(r)} for bench, r in collected], "failed": failed},
                         indent=2))
    else:
        print("x floor: time over the floor measured in the same run (1.0 = as fast as the raw database or HTTP)\n")
        print(table(collected))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
