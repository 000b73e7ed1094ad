"""One widget of the report as CSV (the dashboard's download per widget): its rows as the JSON has
them, and for rates whether they are from too few cases to read."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

from outreach.analytics.model import DeliverabilityRow, Report
from outreach.errors import NotFound

WIDGETS = ("funnel", "conversion", "history", "velocity", "channels", "steps", "queue", "deliverability")
_CASES = {"conversion": "entered", "channels": "sent", "velocity": "n"}  # the count each rate rests on


def widget_csv(report: Report, widget: str, min_cases: int,
               deliverability: Sequence[DeliverabilityRow] = ()) -> str:
    if widget not in WIDGETS:
        raise NotFound(f"no widget '{widget}' (there are {', '.join(WIDGETS)})")
    rows: Sequence[Mapping[str, object]] = (
        deliverability if widget == "deliverability" else report[widget])  # type: ignore[literal-required]
    out = io.StringIO()
    if not rows:
        return ""
    fields = list(rows[0])
    cases = _CASES.get(widget)
    writer = csv.DictWriter(out, fieldnames=[*fields, "too_few_to_read"] if cases else fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        line = dict(row)
        if cases:
            n = row[cases]
            line["too_few_to_read"] = "yes" if isinstance(n, int) and n < min_cases else "no"
        writer.writerow(line)
    return out.getvalue()
