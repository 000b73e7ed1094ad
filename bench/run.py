"""Run every benchmark (each in its own process), echo its figures, then print one summary table.

    python bench/run.py [--quick] [--pg] [--only plan,webhook]"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCHES = ["import_contacts", "plan", "dispatch", "webhook", "twilio_status", "accounts"]
HERE = Path(__file__).resolve().parent
SUMMARY = "SUMMARY "


def run(name: str, flags: list[str]) -> tuple[list[dict[str, Any]], float, int]:
    """Stream one benchmark's output; its summary rows, wall seconds and exit code."""
    print(f"== {name} {' '.join(flags)}", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(HERE / f"{name}.py"), *flags], stdout=subprocess.PIPE, text=True)
    rows: list[dict[str, Any]] = []
    assert proc.stdout is not None
    for text in proc.stdout:
        if text.startswith(SUMMARY):
            rows = json.loads(text[len(SUMMARY):])["rows"]
        else:
            print(text, end="", flush=True)
    code = proc.wait()
    return rows, time.perf_counter() - start, code


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
    args = p.parse_args()
    names = [n for n in args.only.split(",") if n] or BENCHES
    unknown = set(names) - set(BENCHES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    flags = [f for f, on in (("--quick", args.quick), ("--pg", args.pg)) if on]
    collected: list[tuple[str, dict[str, Any]]] = []
    failed = []
    for name in names:
        rows, seconds, code = run(name, flags)
        print(f"   ({seconds:.0f} s)\n", flush=True)
        collected += [(name, r) for r in rows]
        if code:
            failed.append(name)
    print("x floor: time over the floor measured in the same run (1.0 = as fast as the raw database or HTTP)\n")
    print(table(collected))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
